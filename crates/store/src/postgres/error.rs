//! PostgreSQL and pool errors mapped onto `StoreError` by what the caller can do about them.

use deadpool_postgres::PoolError;
use model::FieldError;
use tokio_postgres::error::SqlState;

use crate::StoreError;

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(code) = error.code() else {
            // No SQLSTATE: the connection broke, timed out or could not be made.
            return StoreError::Unavailable(error.to_string());
        };
        let detail = error.as_db_error().map_or_else(|| error.to_string(), |db| db.message().to_owned());
        if *code == SqlState::FOREIGN_KEY_VIOLATION {
            // The only foreign keys a client can point at are parents (checked first, so this
            // is a parent deleted concurrently) and threads.
            return StoreError::Invalid(FieldError::new("parent_id", "no such comment"));
        }
        if is_retryable(code) {
            return StoreError::Unavailable(format!("{}: {detail}", code.code()));
        }
        StoreError::Internal(format!("{}: {detail}", code.code()))
    }
}

/// Conditions a later attempt may not meet: lost connections, shutdowns, overload, lock
/// conflicts, and unique violations (the conflicting writes are all retried with fresh ids or
/// find the winner's row on the next attempt).
fn is_retryable(code: &SqlState) -> bool {
    let class = &code.code()[..2];
    // 08: connection exception; 53: insufficient resources; 57: operator intervention
    // (shutdown, statement timeout); 40: transaction rollback (serialization, deadlock).
    matches!(class, "08" | "53" | "57" | "40")
        || *code == SqlState::UNIQUE_VIOLATION
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
}

impl From<PoolError> for StoreError {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Backend(error) => error.into(),
            PoolError::Timeout(_) => StoreError::Unavailable("no database connection free in time".into()),
            PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
            other => StoreError::Internal(format!("connection pool: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classes() {
        for code in [
            SqlState::CONNECTION_FAILURE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::QUERY_CANCELED,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::UNIQUE_VIOLATION,
        ] {
            assert!(is_retryable(&code), "{code:?}");
        }
        for code in [SqlState::SYNTAX_ERROR, SqlState::UNDEFINED_TABLE, SqlState::CHECK_VIOLATION] {
            assert!(!is_retryable(&code), "{code:?}");
        }
    }
}
