//! Helpers shared by the importer tests: reading sample data and tallying what a reader yields.

#![allow(dead_code)]

use std::collections::HashMap;

use import::{CommentRecord, ImportError, Record, RecordKind, ThreadRecord};

/// The crate's directory as `cargo test` reports it when the test runs, not when it was
/// compiled: a build cache shared between checkouts in different places (CI's) may hold a
/// test binary compiled in another one.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from)
}

/// `shared/data/`, beside the project.
pub fn data_dir() -> std::path::PathBuf {
    manifest_dir().join("../../../shared/data")
}

/// A sample file's bytes; a missing file fails the test, it is never a reason to skip.
pub fn sample(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|error| panic!("sample data {} is missing or unreadable: {error}", path.display()))
}

/// Everything one reader produced, sorted by kind.
#[derive(Debug, Default)]
pub struct Tally {
    pub threads: Vec<ThreadRecord>,
    pub comments: Vec<CommentRecord>,
    /// `(kind, what, reason)` of every skipped record.
    pub skipped: Vec<(RecordKind, String, String)>,
    pub fatal: Option<ImportError>,
}

pub fn tally(records: impl Iterator<Item = Result<Record, ImportError>>) -> Tally {
    let mut out = Tally::default();
    for item in records {
        assert!(out.fatal.is_none(), "the reader went on after a fatal error");
        match item {
            Ok(Record::Thread(thread)) => out.threads.push(thread),
            Ok(Record::Comment(comment)) => out.comments.push(comment),
            Err(ImportError::Skipped { kind, what, reason }) => out.skipped.push((kind, what, reason)),
            Err(fatal) => out.fatal = Some(fatal),
        }
    }
    out
}

impl Tally {
    pub fn comment(&self, source_id: &str) -> &CommentRecord {
        let found = self.comments.iter().find(|c| c.source_id == source_id);
        found.unwrap_or_else(|| panic!("no comment {source_id} in {:?}", self.comments))
    }

    pub fn reasons(&self) -> Vec<&str> {
        self.skipped.iter().map(|(_, _, reason)| reason.as_str()).collect()
    }

    /// Malformed's line and message; panics on anything else.
    pub fn malformed(&self) -> (u64, &str) {
        match &self.fatal {
            Some(ImportError::Malformed { line, message }) => (*line, message.as_str()),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}

/// Longest chain of parent links above any comment (a top-level comment has depth 0).
pub fn max_reply_depth(comments: &[CommentRecord]) -> usize {
    let parents: HashMap<&str, &str> =
        comments.iter().filter_map(|c| Some((c.source_id.as_str(), c.parent_source_id.as_deref()?))).collect();
    let depth_of = |source_id: &str| {
        let mut id = source_id;
        let mut depth = 0;
        while let Some(parent) = parents.get(id) {
            id = parent;
            depth += 1;
            assert!(depth <= parents.len(), "parent links above {source_id} form a cycle");
        }
        depth
    };
    comments.iter().map(|c| depth_of(&c.source_id)).max().unwrap_or(0)
}

/// How many comments reply directly to each comment.
pub fn reply_counts(comments: &[CommentRecord]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for parent in comments.iter().filter_map(|c| c.parent_source_id.as_deref()) {
        *counts.entry(parent).or_default() += 1;
    }
    counts
}
