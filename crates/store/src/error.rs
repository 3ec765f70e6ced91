//! Store errors, chosen by what the caller can do about them.

use model::{Denied, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("comment not found")]
    NotFound,
    /// Input that only the database can judge (a parent in another thread, say).
    #[error("invalid input: {0}")]
    Invalid(FieldError),
    #[error("not allowed: {0}")]
    Denied(Denied),
    #[error("the idempotency key was used with a different request body")]
    IdempotencyMismatch,
    /// Overloaded or temporarily unreachable; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken database: logged, never shown to clients.
    #[error("store failure: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Internal(error.to_string()),
        }
    }
}
