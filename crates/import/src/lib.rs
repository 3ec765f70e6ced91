//! Afterword importers: streaming parsers that turn export files into plain records, without a database.
//!
//! Each reader is an iterator of `Result<Record, ImportError>`. A `Skipped` error names one
//! unusable record (and whether it was a thread or a comment) and iteration goes on;
//! `Malformed` and `Io` are fatal and end the iteration. Records are handed out one at a time,
//! so memory stays bounded by the record being built, itself bounded by `ReadLimits`.
//!
//! Formats: `disqus` (Disqus XML), `wxr` (WordPress WXR 1.0–1.2), `reddit` (a discussion as
//! JSON lines). `gzip::sniff` decompresses any of them when the bytes are gzip.

pub mod disqus;
pub mod error;
pub mod gzip;
mod limits;
mod lines;
pub mod record;
pub mod reddit;
pub mod wxr;
mod xml;

pub use disqus::DisqusReader;
pub use error::ImportError;
pub use limits::ReadLimits;
pub use record::{CommentRecord, ImportedState, Record, RecordKind, ThreadRecord};
pub use reddit::RedditReader;
pub use wxr::WxrReader;
