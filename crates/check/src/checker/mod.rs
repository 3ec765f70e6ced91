//! The history checker: pure, no IO. Given every operation of a run (and, for lost writes, the
//! final sets of ids on each database node) it finds each broken guarantee, with its evidence.
//!
//! Each user is judged on what it knew: its own acknowledged writes, edits and deletes, and
//! what its earlier reads returned. A user's operations are sequential, so "earlier" is the
//! order of their start times.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::history::{History, Id, Observed, OpKind, Operation, SeenState, UserId};

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The user's own acknowledged comment was missing from its later read.
    ReadYourWrites,
    /// A comment the user had seen was missing from its later read (and nobody deleted it).
    MonotonicRead,
    /// A read showed a reply without its parent.
    CausalReply,
    /// A comment the user saw deleted (or deleted itself) showed up published again.
    Resurrection,
    /// The user saw an older text after a newer one (its own edit, or one it had read).
    EditReverted,
    /// Retried POSTs with one `Idempotency-Key` made more than one comment.
    Duplicate,
    /// An acknowledged comment is missing from a database node after the run.
    LostWrite,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 7] = [
        ViolationKind::ReadYourWrites,
        ViolationKind::MonotonicRead,
        ViolationKind::CausalReply,
        ViolationKind::Resurrection,
        ViolationKind::EditReverted,
        ViolationKind::Duplicate,
        ViolationKind::LostWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::ReadYourWrites => "read-your-writes",
            ViolationKind::MonotonicRead => "monotonic-reads",
            ViolationKind::CausalReply => "causal-replies",
            ViolationKind::Resurrection => "resurrection",
            ViolationKind::EditReverted => "edit-reverted",
            ViolationKind::Duplicate => "duplicate",
            ViolationKind::LostWrite => "lost-write",
        }
    }
}

/// One broken guarantee and its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub user: UserId,
    pub thread: String,
    pub comment: Id,
    /// When the write the user relied on was acknowledged (or the comment first seen).
    pub acknowledged_at_ms: Option<u64>,
    /// When the read that broke the guarantee started.
    pub read_at_ms: Option<u64>,
    pub served_by: Option<String>,
    pub detail: String,
}

/// How long a user's own comment stayed invisible to it: acknowledgement → the start of the
/// first read that showed it (`None`: never shown again during the run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staleness {
    pub user: UserId,
    pub comment: Id,
    pub acknowledged_at_ms: u64,
    pub first_visible_ms: Option<u64>,
    /// The start of the last read that missed it.
    pub last_missing_ms: u64,
}

impl Staleness {
    /// Acknowledgement → first visible; when never visible, → the last read that missed it.
    pub fn ms(&self) -> u64 {
        self.first_visible_ms.unwrap_or(self.last_missing_ms).saturating_sub(self.acknowledged_at_ms)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    pub violations: Vec<Violation>,
    pub staleness: Vec<Staleness>,
}

impl Findings {
    pub fn count(&self, kind: ViolationKind) -> usize {
        self.violations.iter().filter(|v| v.kind == kind).count()
    }
}

/// The comments on each database node after the run, by node name (`primary`, `replica-1`..).
pub type FinalSets = BTreeMap<String, BTreeSet<Id>>;

/// Every violation in `history` (lost writes need `finals`: pass `None` without a cluster).
pub fn check(history: &History, finals: Option<&FinalSets>) -> Findings {
    let deletes_started = deletes_started(history);
    let mut findings = Findings::default();
    for (user, operations) in by_user(history) {
        let mut judge = UserJudge::new(user, &deletes_started);
        for operation in operations {
            judge.apply(operation, &mut findings.violations);
        }
        findings.staleness.extend(judge.staleness.into_values());
    }
    findings.violations.extend(duplicates(history));
    if let Some(finals) = finals {
        findings.violations.extend(lost_writes(history, finals));
    }
    findings.violations.sort_by_key(|v| (v.kind, v.read_at_ms, v.user, v.comment));
    findings.staleness.sort_by_key(|s| (s.acknowledged_at_ms, s.user, s.comment));
    findings
}

/// Each user's operations in the order they started.
fn by_user(history: &History) -> BTreeMap<UserId, Vec<&Operation>> {
    let mut users: BTreeMap<UserId, Vec<&Operation>> = BTreeMap::new();
    for operation in &history.operations {
        users.entry(operation.user).or_default().push(operation);
    }
    for operations in users.values_mut() {
        operations.sort_by_key(|op| (op.start_ms, op.end_ms));
    }
    users
}

/// For each comment, when the first delete of it was sent (whatever the answer): after that
/// it may legitimately vanish from anybody's reads.
fn deletes_started(history: &History) -> HashMap<Id, u64> {
    let mut started: HashMap<Id, u64> = HashMap::new();
    for operation in &history.operations {
        if let OpKind::Delete { comment, .. } = operation.kind {
            let at = started.entry(comment).or_insert(operation.start_ms);
            *at = (*at).min(operation.start_ms);
        }
    }
    started
}

/// What one user knows about one comment.
#[derive(Debug, Clone)]
struct Known {
    thread: String,
    /// Acknowledgement of its own create, or the end of the read that first showed it.
    since_ms: u64,
    own: bool,
    /// It saw it deleted, or deleted it itself.
    deleted: bool,
    revision: Option<u32>,
}

/// Replays one user's operations, judging each read by what the user knew before it.
struct UserJudge<'a> {
    user: UserId,
    known: HashMap<Id, Known>,
    deletes_started: &'a HashMap<Id, u64>,
    staleness: BTreeMap<Id, Staleness>,
}

impl<'a> UserJudge<'a> {
    fn new(user: UserId, deletes_started: &'a HashMap<Id, u64>) -> Self {
        UserJudge { user, known: HashMap::new(), deletes_started, staleness: BTreeMap::new() }
    }

    fn apply(&mut self, operation: &Operation, violations: &mut Vec<Violation>) {
        if !operation.ok() {
            return;
        }
        match &operation.kind {
            OpKind::Create { thread, id: Some(id), .. } => {
                let known = Known {
                    thread: thread.clone(),
                    since_ms: operation.end_ms,
                    own: true,
                    deleted: false,
                    revision: Some(0),
                };
                self.known.insert(*id, known);
            }
            OpKind::Create { id: None, .. } => {}
            OpKind::Edit { comment, revision, .. } => {
                if let Some(known) = self.known.get_mut(comment) {
                    known.revision = known.revision.max(Some(*revision));
                }
            }
            OpKind::Delete { comment, .. } => {
                if let Some(known) = self.known.get_mut(comment) {
                    known.deleted = true;
                }
            }
            OpKind::Read { thread, observed, complete } => {
                self.judge_read(operation, thread, observed, *complete, violations);
                self.learn(operation, thread, observed);
            }
        }
    }

    fn judge_read(
        &mut self,
        read: &Operation,
        thread: &str,
        observed: &[Observed],
        complete: bool,
        violations: &mut Vec<Violation>,
    ) {
        let got: HashMap<Id, &Observed> = observed.iter().map(|o| (o.id, o)).collect();
        if complete {
            self.judge_missing(read, thread, &got, violations);
            for comment in observed {
                let orphan = comment.parent_id.filter(|parent| !got.contains_key(parent));
                if let Some(parent) = orphan {
                    let detail = format!("reply shown without its parent {parent}");
                    violations.push(self.violation(ViolationKind::CausalReply, read, thread, comment.id, None, detail));
                }
            }
        }
        self.judge_shown(read, thread, observed, violations);
        for (id, staleness) in self.staleness.iter_mut() {
            if staleness.first_visible_ms.is_none() && got.contains_key(id) {
                staleness.first_visible_ms = Some(read.start_ms);
            }
        }
    }

    /// Read-your-writes and monotonic reads: what the user knew of must be there.
    fn judge_missing(
        &mut self,
        read: &Operation,
        thread: &str,
        got: &HashMap<Id, &Observed>,
        out: &mut Vec<Violation>,
    ) {
        let mut missing: Vec<(Id, Known)> = self
            .known
            .iter()
            .filter(|(id, known)| known.thread == thread && !known.deleted && !got.contains_key(id))
            .map(|(id, known)| (*id, known.clone()))
            .collect();
        missing.sort_by_key(|(id, _)| *id);
        for (id, known) in missing {
            let deleted_meanwhile = self.deletes_started.get(&id).is_some_and(|at| *at <= read.end_ms);
            if known.own && !deleted_meanwhile {
                let detail = "own acknowledged comment missing".to_owned();
                let kind = ViolationKind::ReadYourWrites;
                out.push(self.violation(kind, read, thread, id, Some(known.since_ms), detail));
                self.note_stale(id, known.since_ms, read.start_ms);
            } else if !known.own && !deleted_meanwhile {
                let detail = "a comment seen before vanished".to_owned();
                let kind = ViolationKind::MonotonicRead;
                out.push(self.violation(kind, read, thread, id, Some(known.since_ms), detail));
            }
        }
    }

    /// Resurrection and reverted edits: what the read showed must not be older than what the
    /// user knew.
    fn judge_shown(&self, read: &Operation, thread: &str, observed: &[Observed], out: &mut Vec<Violation>) {
        for comment in observed {
            let Some(known) = self.known.get(&comment.id) else { continue };
            let since = Some(known.since_ms);
            if known.deleted && comment.state != SeenState::Deleted {
                let detail = "shown again after it was deleted".to_owned();
                out.push(self.violation(ViolationKind::Resurrection, read, thread, comment.id, since, detail));
            }
            let older = comment.state != SeenState::Deleted && comment.revision < known.revision;
            if let (true, Some(shown), Some(newest)) = (older, comment.revision, known.revision) {
                let detail = format!("revision {shown} shown after revision {newest}");
                out.push(self.violation(ViolationKind::EditReverted, read, thread, comment.id, since, detail));
            }
        }
    }

    /// What the read taught the user.
    fn learn(&mut self, read: &Operation, thread: &str, observed: &[Observed]) {
        for comment in observed {
            let known = self.known.entry(comment.id).or_insert_with(|| Known {
                thread: thread.to_owned(),
                since_ms: read.end_ms,
                own: false,
                deleted: false,
                revision: None,
            });
            known.deleted |= comment.state == SeenState::Deleted;
            known.revision = known.revision.max(comment.revision);
        }
    }

    fn note_stale(&mut self, id: Id, acknowledged_at_ms: u64, read_ms: u64) {
        let user = self.user;
        let entry = self.staleness.entry(id).or_insert(Staleness {
            user,
            comment: id,
            acknowledged_at_ms,
            first_visible_ms: None,
            last_missing_ms: read_ms,
        });
        entry.last_missing_ms = entry.last_missing_ms.max(read_ms);
    }

    fn violation(
        &self,
        kind: ViolationKind,
        read: &Operation,
        thread: &str,
        comment: Id,
        acknowledged_at_ms: Option<u64>,
        detail: String,
    ) -> Violation {
        Violation {
            kind,
            user: self.user,
            thread: thread.to_owned(),
            comment,
            acknowledged_at_ms,
            read_at_ms: Some(read.start_ms),
            served_by: read.served_by.clone(),
            detail,
        }
    }
}

/// POSTs that share an `Idempotency-Key` (and a user: keys are scoped to a session) but were
/// acknowledged with different ids: one violation per extra comment.
pub fn duplicates(history: &History) -> Vec<Violation> {
    let mut by_key: BTreeMap<(UserId, &str), Vec<&Operation>> = BTreeMap::new();
    for operation in history.operations.iter().filter(|op| op.ok()) {
        if let OpKind::Create { idempotency_key: Some(key), id: Some(_), .. } = &operation.kind {
            by_key.entry((operation.user, key.as_str())).or_default().push(operation);
        }
    }
    let mut violations = Vec::new();
    for ((user, key), attempts) in by_key {
        let mut ids = BTreeSet::new();
        for attempt in attempts {
            let OpKind::Create { id: Some(id), .. } = attempt.kind else { continue };
            if ids.insert(id) && ids.len() > 1 {
                let first = ids.iter().next().copied().unwrap_or(id);
                violations.push(Violation {
                    kind: ViolationKind::Duplicate,
                    user,
                    thread: attempt.thread().to_owned(),
                    comment: id,
                    acknowledged_at_ms: Some(attempt.end_ms),
                    read_at_ms: None,
                    served_by: None,
                    detail: format!("Idempotency-Key {key} made {first} and {id}"),
                });
            }
        }
    }
    violations
}

/// Every acknowledged comment missing from a node's final set.
pub fn lost_writes(history: &History, finals: &FinalSets) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut reported = HashSet::new();
    for (id, create) in history.acknowledged() {
        for (node, ids) in finals {
            if !ids.contains(&id) && reported.insert((id, node.clone())) {
                violations.push(Violation {
                    kind: ViolationKind::LostWrite,
                    user: create.user,
                    thread: create.thread().to_owned(),
                    comment: id,
                    acknowledged_at_ms: Some(create.end_ms),
                    read_at_ms: None,
                    served_by: Some(node.clone()),
                    detail: format!("acknowledged but missing on {node}"),
                });
            }
        }
    }
    violations
}
