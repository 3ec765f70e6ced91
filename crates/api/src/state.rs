//! Shared state of one app server: the store, config, signer, id generator, clock, metrics.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use model::{Clock, CommentId, FieldLimits, IdError, SessionId, SessionSigner};
use store::Store;

use crate::cache::ReadCache;
use crate::config::{ApiConfig, SiteConfig};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::hit_path::HitPath;
use crate::ids::{IdSource, Ids};
use crate::rate_limit::WriteLimiter;

/// How often id generation retries when 4096 ids were taken in one millisecond.
const ID_RETRIES_MAX: u32 = 50;
/// A clock that stepped back at most this far is waited for instead of refused.
const CLOCK_BACKWARDS_WAIT_MS_MAX: i64 = 100;

#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub config: ApiConfig,
    pub signer: SessionSigner,
    pub ids: Ids,
    pub clock: Arc<dyn Clock>,
    pub metrics: Option<PrometheusHandle>,
    pub draining: AtomicBool,
    pub write_limiter: WriteLimiter,
    /// Anonymous thread lists, already serialised (issue 4).
    pub read_cache: ReadCache,
    /// A hit's CORS headers and metrics, made once.
    pub hit_path: HitPath,
}

impl AppState {
    /// `ids`: a generator already resumed after the store's highest id, or a node-id lease
    /// (`IdSource`). `config.sites` must not be empty (the binary puts the default site there).
    pub fn new(
        store: Arc<dyn Store>,
        mut config: ApiConfig,
        signer: SessionSigner,
        ids: impl Into<IdSource>,
        clock: Arc<dyn Clock>,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        if config.sites.is_empty() {
            config.sites.push(SiteConfig::default_site());
        }
        let inner = Inner {
            write_limiter: WriteLimiter::new(&config.rate_limits),
            read_cache: ReadCache::new(&config.limits),
            hit_path: HitPath::new(&config),
            store,
            config,
            signer,
            ids: Ids::new(ids.into()),
            clock,
            metrics,
            draining: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// `Afterword-Served-By`, on servers that allow strategy overrides.
    pub(crate) fn show_served_by(&self, headers: &mut axum::http::HeaderMap, served_by: model::ServedBy) {
        if self.inner.config.allow_strategy_override {
            crate::reply::set_served_by(headers, served_by);
        }
    }

    /// What a read may use: the request's position, strategy and last write, and now.
    pub(crate) fn read_options(&self, context: &RequestContext) -> store::ReadOptions {
        context.read_options(self.inner.clock.now().timestamp_millis())
    }

    /// From now on `/readyz` fails, so a load balancer stops sending new requests.
    pub fn begin_draining(&self) {
        self.inner.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The named site, or the first configured one when the request names none.
    pub(crate) fn site(&self, name: Option<&str>) -> Result<&SiteConfig, ApiError> {
        let sites = &self.inner.config.sites;
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            None => sites.first().ok_or(ApiError::Internal { detail: "no site configured".into() }),
            Some(name) => sites
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| ApiError::bad_field("site", format!("no site named {name:?}"))),
        }
    }

    pub(crate) fn field_limits(&self, site: &SiteConfig) -> FieldLimits {
        let limits = &self.inner.config.limits;
        limits.field_limits(site.text_chars_max.unwrap_or(limits.text_chars_max))
    }

    /// The caller's session, or a new one for a first-time writer.
    pub(crate) fn session_for_write(&self, context: &RequestContext) -> SessionId {
        context.session.unwrap_or_else(|| SessionId(rand::random::<u128>()))
    }

    pub(crate) fn sign_session(&self, session: SessionId) -> String {
        self.inner.signer.sign(session, self.inner.clock.now().timestamp())
    }

    /// A fresh comment id; waits out a millisecond whose 4096 ids are used up.
    pub(crate) async fn next_id(&self) -> Result<CommentId, ApiError> {
        for _ in 0..ID_RETRIES_MAX {
            let outcome = self.inner.ids.next_id(|| self.inner.clock.now().timestamp_millis());
            match outcome {
                Ok(id) => return Ok(id),
                Err(IdError::SequenceExhausted) => tokio::time::sleep(Duration::from_millis(1)).await,
                // A small step back (NTP slewing) is waited out; a large one is refused.
                Err(IdError::ClockBackwards { behind_ms }) if behind_ms <= CLOCK_BACKWARDS_WAIT_MS_MAX => {
                    tokio::time::sleep(Duration::from_millis(behind_ms.unsigned_abs())).await
                }
                Err(other) => return Err(ApiError::Unavailable { detail: format!("cannot generate ids: {other}") }),
            }
        }
        Err(ApiError::Unavailable { detail: "id sequence exhausted".into() })
    }
}
