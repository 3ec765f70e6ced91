//! The importers' error type, its variants chosen by what the caller can do next.

use std::io;

use crate::record::RecordKind;

/// What went wrong while reading an export.
///
/// `Skipped` is per record: log it and keep iterating. `Malformed` and `Io` are fatal: the
/// reader yields one of them and then ends.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be parsed any further.
    #[error("malformed export at line {line}: {message}")]
    Malformed { line: u64, message: String },
    /// One record is unusable, e.g. `kind = Comment`, `what = "post dsq:id=123"`,
    /// `reason = "missing <createdAt>"`.
    #[error("skipped {what}: {reason}")]
    Skipped { kind: RecordKind, what: String, reason: String },
    /// The underlying reader failed (a gzip stream that does not decompress lands here too).
    #[error("cannot read the export: {0}")]
    Io(#[from] io::Error),
}

impl ImportError {
    /// Whether the reader stops after this error (it does for everything but `Skipped`).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, ImportError::Skipped { .. })
    }
}
