//! The consistency oracle: given what each user wrote and read, finds reads that broke
//! read-your-writes or monotonic reads. Shared by the simulation and `afterword check`.

use std::collections::{BTreeSet, HashMap};

use crate::id::CommentId;

/// Who did something, as the checker numbers its users.
pub type UserId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The user's own acknowledged comment was missing from their read.
    ReadYourWrites { user: UserId, thread: String, missing: CommentId },
    /// A comment the user had seen before was missing from a later read.
    MonotonicRead { user: UserId, thread: String, vanished: CommentId },
}

#[derive(Debug, Default)]
struct Knowledge {
    written: BTreeSet<CommentId>,
    seen: BTreeSet<CommentId>,
}

#[derive(Debug, Default)]
pub struct Oracle {
    knowledge: HashMap<(UserId, String), Knowledge>,
}

impl Oracle {
    pub fn new() -> Self {
        Self::default()
    }

    /// The server acknowledged `id`, written by `user` to `thread`.
    pub fn acknowledged(&mut self, user: UserId, thread: &str, id: CommentId) {
        let knowledge = self.knowledge.entry((user, thread.to_owned())).or_default();
        knowledge.written.insert(id);
        knowledge.seen.insert(id);
    }

    /// `user` read `thread` and got `returned` (every comment id in the response). Returns
    /// the violations this read shows; each missing comment is reported once per read.
    pub fn observed(&mut self, user: UserId, thread: &str, returned: &[CommentId]) -> Vec<Violation> {
        let got: BTreeSet<CommentId> = returned.iter().copied().collect();
        let knowledge = self.knowledge.entry((user, thread.to_owned())).or_default();
        let mut violations = Vec::new();
        for &missing in knowledge.seen.difference(&got) {
            let thread = thread.to_owned();
            violations.push(if knowledge.written.contains(&missing) {
                Violation::ReadYourWrites { user, thread, missing }
            } else {
                Violation::MonotonicRead { user, thread, vanished: missing }
            });
        }
        knowledge.seen.extend(got);
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_own_writes_and_vanished_comments() {
        let mut oracle = Oracle::new();
        oracle.acknowledged(1, "/t", CommentId(10));
        assert_eq!(
            oracle.observed(1, "/t", &[]),
            vec![Violation::ReadYourWrites { user: 1, thread: "/t".into(), missing: CommentId(10) }]
        );
        assert_eq!(oracle.observed(1, "/t", &[CommentId(10), CommentId(11)]), vec![]);
        assert_eq!(
            oracle.observed(1, "/t", &[CommentId(10)]),
            vec![Violation::MonotonicRead { user: 1, thread: "/t".into(), vanished: CommentId(11) }]
        );
        // Other users and threads are judged on their own history.
        assert_eq!(oracle.observed(2, "/t", &[]), vec![]);
        assert_eq!(oracle.observed(1, "/other", &[]), vec![]);
    }
}
