//! Connection pools: one for the primary and one per replica; the router (`router.rs`)
//! chooses among the replicas per read.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::PostgresConfig;
use crate::StoreError;

pub struct Pools {
    pub primary: Pool,
    /// One per configured replica, in order; the router chooses among them.
    pub replicas: Vec<Pool>,
}

impl Pools {
    /// Builds the pools; no connection is made until one is needed.
    pub fn new(config: &PostgresConfig) -> Result<Self, StoreError> {
        let primary = build_pool(&config.url, config)?;
        let replicas = config.replica_urls.iter().map(|url| build_pool(url, config)).collect::<Result<_, _>>()?;
        Ok(Self { primary, replicas })
    }

    /// A connection to the primary (writes, and reads until routing arrives).
    pub async fn primary(&self) -> Result<Object, StoreError> {
        Ok(self.primary.get().await?)
    }
}

/// One pool; every session it opens commits synchronously (a write's position is read after
/// COMMIT and must not be below the commit record; see DESIGN "position token") and bounds
/// statement and idle-in-transaction time.
fn build_pool(url: &str, config: &PostgresConfig) -> Result<Pool, StoreError> {
    let mut pg = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL {}: {e}", redact(url))))?;
    pg.application_name("afterword");
    pg.connect_timeout(Duration::from_millis(config.connect_timeout_ms));
    pg.options(format!(
        "-c synchronous_commit=on -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        config.statement_timeout_ms, config.idle_in_transaction_timeout_ms
    ));
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(config.connections_max.max(1))
        .wait_timeout(Some(Duration::from_millis(config.connection_wait_ms_max)))
        .create_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .recycle_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://ann:s3cret@db:5432/x"), "postgres://ann:***@db:5432/x");
        assert_eq!(redact("postgres://ann@db/x"), "postgres://ann@db/x");
        assert_eq!(redact("host=db user=ann"), "host=db user=ann");
    }
}
