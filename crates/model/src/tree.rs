//! What of a thread a viewer sees: visibility, tombstones, placeholders, and the reply tree.
//!
//! Rules: a comment is *shown in full* when the viewer may see it, it is not deleted, and its
//! chain of parents is complete in the thread. Every ancestor of a comment shown in full is
//! shown too — in full if the viewer may see it, otherwise as a placeholder the view redacts
//! (a tombstone for a deleted comment, an empty "hidden"/"pending" node for a moderated one).
//! So a visible reply always has a visible parent, and a moderator hiding a comment does not
//! make the replies under it vanish. Anything else is not shown.

use std::collections::{HashMap, HashSet};

use crate::comment::{Comment, CommentState, Viewer};
use crate::id::CommentId;

/// The comments of one thread this viewer sees (in full or as placeholders), in input order
/// (`(created_at, id)`). Use `Viewer::may_see` to tell the two apart.
pub fn visible_comments<'a>(all: &'a [Comment], viewer: &Viewer) -> Vec<&'a Comment> {
    let by_id: HashMap<CommentId, &Comment> = all.iter().map(|c| (c.id, c)).collect();
    let mut complete_memo: HashMap<CommentId, bool> = HashMap::with_capacity(all.len());
    let mut keep: HashSet<CommentId> = HashSet::with_capacity(all.len());
    for comment in all {
        let shown_in_full = viewer.may_see(comment)
            && comment.state != CommentState::Deleted
            && chain_complete(comment, &by_id, &mut complete_memo);
        if !shown_in_full {
            continue;
        }
        let mut current = Some(comment);
        while let Some(c) = current {
            if !keep.insert(c.id) {
                break;
            }
            current = c.parent_id.and_then(|p| by_id.get(&p).copied());
        }
    }
    all.iter().filter(|c| keep.contains(&c.id)).collect()
}

/// Whether every parent up to the root is in the thread (iteratively: chains can be deep).
fn chain_complete(
    comment: &Comment,
    by_id: &HashMap<CommentId, &Comment>,
    memo: &mut HashMap<CommentId, bool>,
) -> bool {
    let mut chain = Vec::new();
    let mut current = comment;
    let verdict = loop {
        if let Some(&known) = memo.get(&current.id) {
            break known;
        }
        chain.push(current.id);
        match current.parent_id {
            None => break true,
            Some(parent) => match by_id.get(&parent) {
                // A cycle (corrupt data) counts as incomplete rather than looping forever.
                Some(p) if chain.len() <= by_id.len() => current = p,
                _ => break false,
            },
        }
    };
    for id in chain {
        memo.insert(id, verdict);
    }
    verdict
}

/// Count of comments anyone sees: published only.
pub fn public_count(all: &[Comment]) -> usize {
    visible_comments(all, &Viewer::default()).iter().filter(|c| c.state == CommentState::Published).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionId;
    use crate::text::TextFormat;
    use chrono::{TimeZone, Utc};

    fn c(id: i64, parent: Option<i64>, state: CommentState, session: u128) -> Comment {
        Comment {
            id: CommentId(id),
            site: "default".into(),
            thread_key: "/t".into(),
            parent_id: parent.map(CommentId),
            text: String::new(),
            text_format: TextFormat::Markdown,
            html: String::new(),
            author: None,
            email: None,
            website: None,
            remote_addr: None,
            session_id: Some(SessionId(session)),
            state,
            created_at: Utc.timestamp_opt(1_800_000_000 + id, 0).unwrap(),
            edited_at: None,
        }
    }

    fn ids(list: Vec<&Comment>) -> Vec<i64> {
        list.into_iter().map(|c| c.id.0).collect()
    }

    use CommentState::*;

    #[test]
    fn tombstones_stay_only_with_replies() {
        let all = vec![
            c(1, None, Deleted, 1),
            c(2, Some(1), Published, 2),
            c(3, None, Deleted, 1),
            c(4, None, Deleted, 1),
            c(5, Some(4), Deleted, 2),
        ];
        assert_eq!(ids(visible_comments(&all, &Viewer::default())), vec![1, 2]);
        assert_eq!(public_count(&all), 1);
    }

    #[test]
    fn moderated_parents_become_placeholders_for_visible_replies() {
        let all = vec![
            c(1, None, Published, 1),
            c(2, Some(1), Pending, 2),
            c(3, Some(2), Published, 2),
            c(4, None, Hidden, 1),
        ];
        let stranger = Viewer::default();
        let shown = visible_comments(&all, &stranger);
        assert_eq!(ids(shown.clone()), vec![1, 2, 3], "the pending parent stays as a placeholder");
        assert!(!stranger.may_see(shown[1]), "and the viewer may not see its content");
        let author = Viewer { session_id: Some(SessionId(2)), admin: false };
        assert_eq!(ids(visible_comments(&all, &author)), vec![1, 2, 3]);
        let admin = Viewer { session_id: None, admin: true };
        assert_eq!(ids(visible_comments(&all, &admin)), vec![1, 2, 3, 4]);
    }

    #[test]
    fn pending_replies_are_for_their_author() {
        let all = vec![c(1, None, Published, 1), c(2, Some(1), Pending, 2), c(3, Some(2), Pending, 2)];
        assert_eq!(ids(visible_comments(&all, &Viewer::default())), vec![1]);
        let author = Viewer { session_id: Some(SessionId(2)), admin: false };
        assert_eq!(ids(visible_comments(&all, &author)), vec![1, 2, 3]);
    }

    #[test]
    fn missing_parent_hides_the_reply() {
        let all = vec![c(1, None, Published, 1), c(3, Some(99), Published, 1)];
        assert_eq!(ids(visible_comments(&all, &Viewer::default())), vec![1]);
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let mut all = vec![c(1, None, Published, 1)];
        for id in 2..20_000 {
            all.push(c(id, Some(id - 1), Published, 1));
        }
        assert_eq!(visible_comments(&all, &Viewer::default()).len(), 19_999);
    }
}
