//! The record of a run: every operation a simulated user issued, what it asked for, what the
//! server answered and when. Pure data; the checker reads it, the driver fills it.

use serde::Serialize;

/// A simulated user, numbered by the driver.
pub type UserId = u32;

/// A comment id (the numeric value of the API's string ids).
pub type Id = u64;

/// How a comment looked in a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeenState {
    Published,
    Pending,
    Deleted,
}

/// One comment as one read returned it. `revision` is the edit count the driver wrote into the
/// text (`None` for a tombstone or a text without the marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub id: Id,
    pub parent_id: Option<Id>,
    pub state: SeenState,
    pub revision: Option<u32>,
}

/// What an operation asked for, and for reads what came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpKind {
    /// A POST. `id` is the comment the server acknowledged (none when it failed or timed out).
    Create {
        thread: String,
        parent_id: Option<Id>,
        idempotency_key: Option<String>,
        id: Option<Id>,
    },
    /// A thread read. `complete`: every comment of the thread fitted in the page.
    Read {
        thread: String,
        observed: Vec<Observed>,
        complete: bool,
    },
    /// A PATCH that set the comment's text to `revision`.
    Edit {
        thread: String,
        comment: Id,
        revision: u32,
    },
    Delete {
        thread: String,
        comment: Id,
    },
}

/// How the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer.
    Ok,
    /// An answer that says the operation did not happen (4xx other than 429, or a 5xx).
    Failed { status: u16 },
    /// 429 Too Many Requests.
    RateLimited,
    /// No answer (timeout, connection lost): it may or may not have happened.
    Unknown,
}

/// One request and its answer. Times are milliseconds since the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    pub user: UserId,
    pub kind: OpKind,
    pub outcome: Outcome,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The `Afterword-Served-By` answer, verbatim.
    pub served_by: Option<String>,
}

impl Operation {
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    pub fn thread(&self) -> &str {
        match &self.kind {
            OpKind::Create { thread, .. }
            | OpKind::Read { thread, .. }
            | OpKind::Edit { thread, .. }
            | OpKind::Delete { thread, .. } => thread,
        }
    }

    pub fn latency_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// Every operation of one strategy's run, bounded: past `operations_max` further operations
/// are counted as dropped, not kept.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub operations: Vec<Operation>,
    pub operations_max: usize,
    pub dropped: u64,
}

impl History {
    pub fn new(operations_max: usize) -> Self {
        History { operations: Vec::new(), operations_max, dropped: 0 }
    }

    /// Records `operation`; false (and counted as dropped) once the history is full.
    pub fn push(&mut self, operation: Operation) -> bool {
        if self.operations.len() >= self.operations_max {
            self.dropped += 1;
            return false;
        }
        self.operations.push(operation);
        true
    }

    pub fn is_full(&self) -> bool {
        self.operations.len() >= self.operations_max
    }

    /// Every acknowledged comment: (id, who wrote it, when it was acknowledged).
    pub fn acknowledged(&self) -> impl Iterator<Item = (Id, &Operation)> {
        self.operations.iter().filter(|op| op.ok()).filter_map(|op| match op.kind {
            OpKind::Create { id: Some(id), .. } => Some((id, op)),
            _ => None,
        })
    }
}

/// The revision marker the driver ends every text with: `[rev:N]`.
pub fn revision_marker(revision: u32) -> String {
    format!("[rev:{revision}]")
}

/// The revision named by the last marker in `text` (raw or rendered HTML), if any.
pub fn parse_revision(text: &str) -> Option<u32> {
    let start = text.rfind("[rev:")? + "[rev:".len();
    let rest = &text[start..];
    let end = rest.find(']')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_markers_round_trip_through_html() {
        assert_eq!(parse_revision(&format!("<p>hello {}</p>", revision_marker(3))), Some(3));
        assert_eq!(parse_revision("<p>[rev:1] then [rev:12]</p>"), Some(12));
        for bad in ["", "[rev:]", "[rev:x]", "[rev:4", "no marker"] {
            assert_eq!(parse_revision(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_history_drops_and_counts() {
        let mut history = History::new(1);
        let op = Operation {
            user: 1,
            kind: OpKind::Delete { thread: "/t".into(), comment: 1 },
            outcome: Outcome::Ok,
            start_ms: 0,
            end_ms: 1,
            served_by: None,
        };
        assert!(history.push(op.clone()));
        assert!(!history.push(op));
        assert_eq!((history.operations.len(), history.dropped), (1, 1));
    }
}
