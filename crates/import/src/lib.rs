//! Afterword importers: streaming parsers that turn export files into plain records, without a database.
//!
//! Each reader is an iterator of `Result<Record, ImportError>`. A `Skipped` error names one
//! unusable record and iteration goes on; `Malformed` and `Io` are fatal and end the iteration.
//! Records are handed out one at a time, so memory stays bounded by the record being built.

pub mod disqus;
pub mod error;
mod lines;
pub mod record;

pub use disqus::DisqusReader;
pub use error::ImportError;
pub use record::{CommentRecord, ImportedState, Record, ThreadRecord};
