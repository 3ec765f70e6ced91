//! The checker on hand-made histories: each kind of violation found with its exact evidence,
//! and clean histories (including legitimate deletes by others) passing.

use super::*;
use crate::history::{Outcome, SeenState};

const T: &str = "/t";

fn op(user: UserId, start_ms: u64, kind: OpKind) -> Operation {
    Operation { user, kind, outcome: Outcome::Ok, start_ms, end_ms: start_ms + 5, served_by: None }
}

fn create(user: UserId, at: u64, id: Id) -> Operation {
    op(user, at, OpKind::Create { thread: T.into(), parent_id: None, idempotency_key: None, id: Some(id) })
}

fn seen(id: Id) -> Observed {
    Observed { id, parent_id: None, state: SeenState::Published, revision: Some(0) }
}

fn read(user: UserId, at: u64, observed: &[Observed], served_by: &str) -> Operation {
    let mut read = op(user, at, OpKind::Read { thread: T.into(), observed: observed.to_vec(), complete: true });
    read.served_by = Some(served_by.to_owned());
    read
}

fn history(operations: Vec<Operation>) -> History {
    History { operations, operations_max: 1_000, dropped: 0 }
}

fn violation(
    kind: ViolationKind,
    user: UserId,
    comment: Id,
    ack: Option<u64>,
    read: u64,
    by: &str,
    detail: &str,
) -> Violation {
    Violation {
        kind,
        user,
        thread: T.into(),
        comment,
        acknowledged_at_ms: ack,
        read_at_ms: Some(read),
        served_by: Some(by.into()),
        detail: detail.into(),
    }
}

#[test]
fn a_clean_history_passes() {
    let h = history(vec![
        create(1, 0, 10),
        read(1, 10, &[seen(10)], "replica-1 after-wait"),
        read(2, 20, &[seen(10)], "replica-2"),
        create(2, 30, 11),
        read(2, 40, &[seen(10), seen(11)], "primary"),
        read(1, 50, &[seen(10)], "replica-1"),
    ]);
    let findings = check(&h, None);
    assert_eq!(findings, Findings::default());
}

#[test]
fn a_missing_own_write_is_read_your_writes_with_its_staleness() {
    let h = history(vec![
        create(1, 0, 10),
        read(1, 100, &[], "replica-1"),
        read(1, 1_100, &[], "replica-2"),
        read(1, 3_100, &[seen(10)], "replica-1"),
    ]);
    let findings = check(&h, None);
    let kind = ViolationKind::ReadYourWrites;
    let detail = "own acknowledged comment missing";
    assert_eq!(
        findings.violations,
        vec![
            violation(kind, 1, 10, Some(5), 100, "replica-1", detail),
            violation(kind, 1, 10, Some(5), 1_100, "replica-2", detail),
        ]
    );
    let staleness = Staleness {
        user: 1,
        comment: 10,
        acknowledged_at_ms: 5,
        first_visible_ms: Some(3_100),
        last_missing_ms: 1_100,
    };
    assert_eq!(findings.staleness, vec![staleness.clone()]);
    assert_eq!(staleness.ms(), 3_095);
}

#[test]
fn a_vanished_comment_is_a_monotonic_read() {
    let h = history(vec![read(2, 0, &[seen(10), seen(11)], "replica-2"), read(2, 100, &[seen(10)], "replica-1")]);
    assert_eq!(
        check(&h, None).violations,
        vec![violation(
            ViolationKind::MonotonicRead,
            2,
            11,
            Some(5),
            100,
            "replica-1",
            "a comment seen before vanished"
        )]
    );
}

#[test]
fn a_comment_deleted_by_its_author_may_vanish() {
    let delete = op(1, 50, OpKind::Delete { thread: T.into(), comment: 10 });
    let h =
        history(vec![create(1, 0, 10), read(2, 20, &[seen(10)], "primary"), delete, read(2, 100, &[], "replica-1")]);
    assert_eq!(check(&h, None), Findings::default());
}

#[test]
fn a_reply_without_its_parent_breaks_causality() {
    let reply = Observed { id: 12, parent_id: Some(10), state: SeenState::Published, revision: Some(0) };
    let h = history(vec![read(3, 0, &[reply], "replica-1")]);
    assert_eq!(
        check(&h, None).violations,
        vec![violation(ViolationKind::CausalReply, 3, 12, None, 0, "replica-1", "reply shown without its parent 10")]
    );
    // A tombstone parent is still a parent.
    let tombstone = Observed { id: 10, parent_id: None, state: SeenState::Deleted, revision: None };
    assert_eq!(check(&history(vec![read(3, 0, &[tombstone, reply], "primary")]), None), Findings::default());
}

#[test]
fn a_deleted_comment_shown_again_is_a_resurrection() {
    let delete = op(1, 10, OpKind::Delete { thread: T.into(), comment: 10 });
    let h = history(vec![create(1, 0, 10), delete, read(1, 20, &[seen(10)], "replica-1")]);
    assert_eq!(
        check(&h, None).violations,
        vec![violation(
            ViolationKind::Resurrection,
            1,
            10,
            Some(5),
            20,
            "replica-1",
            "shown again after it was deleted"
        )]
    );
    // Seen as a tombstone by another user, then published again.
    let tombstone = Observed { id: 10, parent_id: None, state: SeenState::Deleted, revision: None };
    let h = history(vec![read(2, 0, &[tombstone], "primary"), read(2, 10, &[seen(10)], "replica-2")]);
    let found = check(&h, None).violations;
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].kind, found[0].user, found[0].comment), (ViolationKind::Resurrection, 2, 10));
}

#[test]
fn an_older_text_after_a_newer_one_is_a_reverted_edit() {
    let edit = op(1, 10, OpKind::Edit { thread: T.into(), comment: 10, revision: 2 });
    let old = Observed { revision: Some(1), ..seen(10) };
    let h = history(vec![create(1, 0, 10), edit, read(1, 20, &[old], "replica-1")]);
    assert_eq!(
        check(&h, None).violations,
        vec![violation(
            ViolationKind::EditReverted,
            1,
            10,
            Some(5),
            20,
            "replica-1",
            "revision 1 shown after revision 2"
        )]
    );
    // Another user who read revision 2 and then revision 0.
    let new = Observed { revision: Some(2), ..seen(10) };
    let h = history(vec![read(2, 0, &[new], "primary"), read(2, 10, &[seen(10)], "replica-2")]);
    assert_eq!(check(&h, None).count(ViolationKind::EditReverted), 1);
}

#[test]
fn retried_posts_that_made_two_comments_are_duplicates() {
    let post = |at: u64, id: Id| {
        let key = Some("k1".to_owned());
        op(1, at, OpKind::Create { thread: T.into(), parent_id: None, idempotency_key: key, id: Some(id) })
    };
    let h = history(vec![post(0, 10), post(1, 10), post(2, 11)]);
    let found = check(&h, None).violations;
    assert_eq!(
        found,
        vec![Violation {
            kind: ViolationKind::Duplicate,
            user: 1,
            thread: T.into(),
            comment: 11,
            acknowledged_at_ms: Some(7),
            read_at_ms: None,
            served_by: None,
            detail: "Idempotency-Key k1 made 10 and 11".into(),
        }]
    );
    assert!(check(&history(vec![post(0, 10), post(1, 10)]), None).violations.is_empty());
}

#[test]
fn an_acknowledged_comment_missing_from_a_node_is_lost() {
    let h = history(vec![create(1, 0, 10), create(2, 0, 11)]);
    let mut finals = FinalSets::new();
    finals.insert("primary".into(), [10, 11].into());
    finals.insert("replica-1".into(), [10].into());
    assert_eq!(
        check(&h, Some(&finals)).violations,
        vec![Violation {
            kind: ViolationKind::LostWrite,
            user: 2,
            thread: T.into(),
            comment: 11,
            acknowledged_at_ms: Some(5),
            read_at_ms: None,
            served_by: Some("replica-1".into()),
            detail: "acknowledged but missing on replica-1".into(),
        }]
    );
    finals.insert("replica-1".into(), [10, 11, 99].into());
    assert!(check(&h, Some(&finals)).violations.is_empty());
}

#[test]
fn failed_and_incomplete_operations_teach_nothing() {
    let mut failed = create(1, 0, 10);
    failed.outcome = Outcome::Unknown;
    let mut partial = read(1, 10, &[seen(20)], "replica-1");
    if let OpKind::Read { complete, .. } = &mut partial.kind {
        *complete = false;
    }
    let reply = Observed { id: 21, parent_id: Some(99), ..seen(21) };
    let mut partial_orphan = read(1, 20, &[seen(20), reply], "replica-1");
    if let OpKind::Read { complete, .. } = &mut partial_orphan.kind {
        *complete = false;
    }
    let last = read(1, 30, &[seen(20), reply, seen(99)], "replica-1");
    let h = history(vec![failed, partial, partial_orphan, last]);
    assert_eq!(check(&h, None).violations, vec![]);
}
