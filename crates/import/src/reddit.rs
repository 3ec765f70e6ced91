//! Streaming reader for a reddit discussion as JSON lines: the post (kind `t3`), which becomes
//! the thread, then its comments (kind `t1`), one JSON object per line.
//!
//! Rules:
//!
//! - A post's key comes from its `permalink` (else its `url`); a link post's `url` is kept as
//!   an alias. Its source id is its `name` (`t3_n49rw`), else `t3_` + `id`.
//! - A comment belongs to the post named by `link_id` (else by a `t3_` `parent_id`). A
//!   `parent_id` of `t1_…` makes it a reply to that comment, `t3_…` a top-level comment.
//! - Bodies are Markdown (`body_html` is ignored: the text is rendered by Afterword's one
//!   renderer and sanitiser). An author of `[deleted]` is anonymous.
//! - A body of `[deleted]` or `[removed]` makes a deleted comment, stored as a tombstone:
//!   shown while replies hang from it, invisible otherwise. The reader cannot know whether
//!   later lines reply to it, and a later export may add replies, so it is never dropped.
//! - `edited`, when it is a Unix time after `created_utc`, is the comment's edit time; reddit
//!   writes `true` or `false` when it does not know.
//! - Lines that repeat an id are passed on; the store collapses them (the first one wins).
//! - Blank lines are ignored. A line that is not a JSON object is skipped with its line
//!   number, except that a first line that is not JSON means the file is not JSON lines at
//!   all (`Malformed`), and so does a last line cut off without a newline (truncated).
//! - A line longer than `line_bytes_max`, or a body longer than `field_bytes_max`, is skipped.

use std::io::{self, BufRead};

use chrono::{DateTime, Utc};
use model::TextFormat;
use serde::Deserialize;

use crate::error::ImportError;
use crate::limits::ReadLimits;
use crate::record::{CommentRecord, ImportedState, Record, RecordKind, ThreadRecord};
use crate::xml::non_empty;

/// What reddit writes in place of a body that was deleted by its author or removed by a moderator.
const DELETED_BODIES: &[&str] = &["[deleted]", "[removed]"];
/// What reddit writes in place of an author who deleted their account.
const DELETED_AUTHOR: &str = "[deleted]";

/// One line as reddit's API writes it; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Line {
    kind: Option<String>,
    name: Option<String>,
    id: Option<String>,
    // Posts.
    title: Option<String>,
    permalink: Option<String>,
    url: Option<String>,
    // Comments.
    parent_id: Option<String>,
    link_id: Option<String>,
    author: Option<String>,
    body: Option<String>,
    created_utc: Option<f64>,
    edited: serde_json::Value,
}

/// Reads JSON lines and yields the post as a thread and its comments, in file order.
pub struct RedditReader<R: BufRead> {
    input: R,
    line_no: u64,
    /// Whether a JSON object has been read yet (the first one decides the file is JSON lines).
    seen_object: bool,
    limits: ReadLimits,
    line: Vec<u8>,
    done: bool,
}

/// One physical line, read under the cap.
enum RawLine {
    /// The line's bytes (without the newline) and whether a newline ended it.
    Complete {
        newline: bool,
    },
    /// Longer than the cap; the rest was read and dropped.
    TooLong,
    End,
}

impl<R: BufRead> RedditReader<R> {
    /// A reader with the default limits.
    pub fn new(input: R) -> Self {
        Self::with_limits(input, ReadLimits::default())
    }

    pub fn with_limits(input: R, limits: ReadLimits) -> Self {
        RedditReader { input, line_no: 0, seen_object: false, limits, line: Vec::new(), done: false }
    }

    /// Reads the next line into `self.line`, keeping at most `line_bytes_max` bytes of it.
    fn read_line(&mut self) -> io::Result<RawLine> {
        self.line.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok(match (any, too_long) {
                    (false, _) => RawLine::End,
                    (true, true) => RawLine::TooLong,
                    (true, false) => RawLine::Complete { newline: false },
                });
            }
            any = true;
            let (chunk, newline) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            if !too_long && self.line.len() + chunk.len() <= self.limits.line_bytes_max {
                self.line.extend_from_slice(chunk);
            } else {
                too_long = true;
                self.line.clear();
            }
            let used = chunk.len() + usize::from(newline);
            self.input.consume(used);
            if newline {
                return Ok(if too_long { RawLine::TooLong } else { RawLine::Complete { newline: true } });
            }
        }
    }

    fn malformed(&self, message: impl Into<String>) -> ImportError {
        ImportError::Malformed { line: self.line_no, message: message.into() }
    }

    fn skipped(&self, reason: String) -> ImportError {
        ImportError::Skipped { kind: RecordKind::Comment, what: format!("line {}", self.line_no), reason }
    }

    /// The next item, or `None` at the end; blank lines give `Some(None)`.
    fn next_item(&mut self) -> Result<Option<Option<Result<Record, ImportError>>>, ImportError> {
        let raw = self.read_line()?;
        self.line_no += 1;
        let newline = match raw {
            RawLine::End => return Ok(None),
            RawLine::TooLong => {
                let max = self.limits.line_bytes_max;
                return Ok(Some(Some(Err(self.skipped(format!("the line is longer than {max} bytes"))))));
            }
            RawLine::Complete { newline } => newline,
        };
        if self.line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some(None));
        }
        let parsed: Result<Line, _> = serde_json::from_slice(&self.line);
        match parsed {
            Ok(line) => {
                self.seen_object = true;
                Ok(Some(Some(self.record(line))))
            }
            Err(error) if !self.seen_object => {
                Err(self.malformed(format!("not a JSON object ({error}): this is not a JSON lines export")))
            }
            Err(error) if !newline && error.is_eof() => {
                Err(self.malformed("the file ends inside a JSON line (truncated?)"))
            }
            Err(error) => Ok(Some(Some(Err(self.skipped(format!("not a valid JSON record: {error}")))))),
        }
    }

    fn record(&self, line: Line) -> Result<Record, ImportError> {
        let kind = line.kind.clone().or_else(|| line.name.as_deref().and_then(|n| n.get(..2)).map(str::to_owned));
        match kind.as_deref() {
            Some("t3") => Ok(Record::Thread(self.thread(line)?)),
            Some("t1") => Ok(Record::Comment(self.comment(line)?)),
            other => {
                let what = describe(&line, "record", self.line_no);
                let reason = match other {
                    Some(kind) => format!("kind {kind:?} is neither a post (t3) nor a comment (t1)"),
                    None => "no kind: neither a post (t3) nor a comment (t1)".to_owned(),
                };
                Err(ImportError::Skipped { kind: RecordKind::Comment, what, reason })
            }
        }
    }

    fn thread(&self, line: Line) -> Result<ThreadRecord, ImportError> {
        let what = describe(&line, "post", self.line_no);
        let skipped =
            |reason: &str| ImportError::Skipped { kind: RecordKind::Thread, what: what.clone(), reason: reason.into() };
        let source_id = full_name(&line, "t3_").ok_or_else(|| skipped("missing name and id"))?;
        let permalink = non_empty(line.permalink);
        let url = non_empty(line.url);
        let (url, aliases) = match (permalink, url) {
            (Some(permalink), url) => (Some(permalink.clone()), url.into_iter().filter(|u| *u != permalink).collect()),
            (None, url) => (url, Vec::new()),
        };
        if url.is_none() {
            return Err(skipped("missing permalink and url"));
        }
        let title = non_empty(line.title).filter(|t| t.len() <= self.limits.field_bytes_max);
        Ok(ThreadRecord { source_id, url, aliases, title, created_at: line.created_utc.and_then(unix_time) })
    }

    fn comment(&self, line: Line) -> Result<CommentRecord, ImportError> {
        let what = describe(&line, "comment", self.line_no);
        let skipped = |reason: String| ImportError::Skipped { kind: RecordKind::Comment, what: what.clone(), reason };
        let source_id = full_name(&line, "t1_").ok_or_else(|| skipped("missing name and id".into()))?;
        let parent = non_empty(line.parent_id);
        let thread = non_empty(line.link_id).or_else(|| parent.clone().filter(|p| p.starts_with("t3_")));
        let thread_source_id = thread.ok_or_else(|| skipped("missing link_id".into()))?;
        let created_at = line.created_utc.and_then(unix_time).ok_or_else(|| skipped("missing created_utc".into()))?;
        let body = line.body.unwrap_or_default();
        if body.len() > self.limits.field_bytes_max {
            return Err(skipped(format!("the body is longer than {} bytes", self.limits.field_bytes_max)));
        }
        let deleted = DELETED_BODIES.contains(&body.trim());
        Ok(CommentRecord {
            source_id,
            thread_source_id,
            parent_source_id: parent.filter(|p| p.starts_with("t1_")),
            text: if deleted { String::new() } else { body },
            text_format: TextFormat::Markdown,
            author: non_empty(line.author).filter(|a| a != DELETED_AUTHOR),
            email: None,
            website: None,
            remote_addr: None,
            created_at,
            edited_at: edited_time(&line.edited, created_at),
            state: if deleted { ImportedState::Deleted } else { ImportedState::Published },
        })
    }
}

impl<R: BufRead> Iterator for RedditReader<R> {
    type Item = Result<Record, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.next_item() {
                Ok(Some(Some(item))) => return Some(item),
                Ok(Some(None)) => {}
                Ok(None) => self.done = true,
                Err(fatal) => {
                    self.done = true;
                    return Some(Err(fatal));
                }
            }
        }
        None
    }
}

/// `name` (`t1_abc`), else the prefix and `id`.
fn full_name(line: &Line, prefix: &str) -> Option<String> {
    non_empty(line.name.clone()).or_else(|| non_empty(line.id.clone()).map(|id| format!("{prefix}{id}")))
}

fn describe(line: &Line, noun: &str, line_no: u64) -> String {
    match non_empty(line.name.clone()).or_else(|| non_empty(line.id.clone())) {
        Some(name) => format!("{noun} {name}"),
        None => format!("{noun} at line {line_no}"),
    }
}

fn unix_time(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
}

/// A Unix time not before the comment itself; `true`, `false` and small numbers say nothing.
fn edited_time(edited: &serde_json::Value, created_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    edited.as_f64().and_then(unix_time).filter(|t| *t >= created_at)
}
