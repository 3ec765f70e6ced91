//! What of a thread a viewer sees: visibility, tombstones, and the reply tree.
//!
//! Rules: a comment is shown only if the viewer may see it and its parent is shown (so a
//! visible reply always has a visible parent); a deleted comment is shown as a tombstone only
//! while some shown comment replies to it.

use std::collections::{HashMap, HashSet};

use crate::comment::{Comment, CommentState, Viewer};
use crate::id::CommentId;

/// The comments of one thread this viewer sees, in the input order (`(created_at, id)`).
pub fn visible_comments<'a>(all: &'a [Comment], viewer: &Viewer) -> Vec<&'a Comment> {
    let by_id: HashMap<CommentId, &Comment> = all.iter().map(|c| (c.id, c)).collect();
    let mut shown_memo: HashMap<CommentId, bool> = HashMap::with_capacity(all.len());
    let reachable: Vec<&Comment> = all.iter().filter(|c| chain_visible(c, viewer, &by_id, &mut shown_memo)).collect();
    // A tombstone stays while a shown non-deleted comment descends from it.
    let mut keep: HashSet<CommentId> = HashSet::with_capacity(reachable.len());
    for comment in reachable.iter().filter(|c| c.state != CommentState::Deleted) {
        let mut current = Some(*comment);
        while let Some(c) = current {
            if !keep.insert(c.id) {
                break;
            }
            current = c.parent_id.and_then(|p| by_id.get(&p).copied());
        }
    }
    reachable.into_iter().filter(|c| keep.contains(&c.id)).collect()
}

fn chain_visible(
    comment: &Comment,
    viewer: &Viewer,
    by_id: &HashMap<CommentId, &Comment>,
    memo: &mut HashMap<CommentId, bool>,
) -> bool {
    // Iterative walk up the ancestors: reply chains can be deep and must not overflow the stack.
    let mut chain = Vec::new();
    let mut current = Some(comment);
    let mut verdict = true;
    while let Some(c) = current {
        if let Some(&known) = memo.get(&c.id) {
            verdict = known;
            break;
        }
        if !viewer.may_see(c) || chain.len() > by_id.len() {
            verdict = false;
            chain.push(c.id);
            break;
        }
        chain.push(c.id);
        current = match c.parent_id {
            None => None,
            Some(parent) => match by_id.get(&parent) {
                Some(p) => Some(*p),
                None => {
                    verdict = false;
                    break;
                }
            },
        };
    }
    // Everything below a hidden ancestor is hidden; the first failing node itself is too.
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
    fn pending_subtrees_follow_their_root() {
        let all = vec![c(1, None, Published, 1), c(2, Some(1), Pending, 2), c(3, Some(2), Published, 2)];
        let stranger = Viewer::default();
        assert_eq!(ids(visible_comments(&all, &stranger)), vec![1]);
        let author = Viewer { session_id: Some(SessionId(2)), admin: false };
        assert_eq!(ids(visible_comments(&all, &author)), vec![1, 2, 3]);
        let admin = Viewer { session_id: None, admin: true };
        assert_eq!(ids(visible_comments(&all, &admin)), vec![1, 2, 3]);
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
