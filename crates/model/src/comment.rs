//! Comments and threads as the domain sees them, and the rules for who may see or change one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::CommentId;
use crate::session::SessionId;
use crate::text::TextFormat;

/// Where a comment is in its life. `Pending` and `Hidden` are shown to admins (and `Pending` to
/// its author); `Deleted` keeps the row as a tombstone while replies hang from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentState {
    Published,
    Pending,
    Hidden,
    Deleted,
}

impl CommentState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommentState::Published => "published",
            CommentState::Pending => "pending",
            CommentState::Hidden => "hidden",
            CommentState::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<CommentState> {
        match text {
            "published" => Some(CommentState::Published),
            "pending" => Some(CommentState::Pending),
            "hidden" => Some(CommentState::Hidden),
            "deleted" => Some(CommentState::Deleted),
            _ => None,
        }
    }
}

/// A comment as stored. `email` and `remote_addr` never leave the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: CommentId,
    pub site: String,
    pub thread_key: String,
    pub parent_id: Option<CommentId>,
    pub text: String,
    pub text_format: TextFormat,
    pub html: String,
    pub author: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    pub remote_addr: Option<String>,
    pub session_id: Option<SessionId>,
    pub state: CommentState,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

/// Who is asking: the holder of a session token, an admin, or both, or nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Viewer {
    pub session_id: Option<SessionId>,
    pub admin: bool,
}

impl Viewer {
    pub fn is_author_of(&self, comment: &Comment) -> bool {
        matches!((self.session_id, comment.session_id), (Some(a), Some(b)) if a == b)
    }

    /// Whether this viewer may see the comment at all (tombstones are shown as tombstones).
    pub fn may_see(&self, comment: &Comment) -> bool {
        match comment.state {
            CommentState::Published | CommentState::Deleted => true,
            CommentState::Pending => self.admin || self.is_author_of(comment),
            CommentState::Hidden => self.admin,
        }
    }

    /// Whether the raw text (not only the rendered HTML) is returned to this viewer.
    pub fn may_read_raw(&self, comment: &Comment) -> bool {
        self.admin || self.is_author_of(comment)
    }
}

/// Why a change to a comment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("only the comment's author (its session) or an admin may change it")]
    NotAuthor,
    #[error("the edit window of {window_s} s has closed; only an admin may change it now")]
    WindowClosed { window_s: i64 },
    #[error("the comment is deleted")]
    Deleted,
    #[error("only an admin may change a comment's state")]
    NotAdmin,
    #[error("the comment was hidden by a moderator; only an admin may change it")]
    Hidden,
}

/// The rule for edit and delete: the author within the window, an admin at any time.
pub fn authorize_change(
    comment: &Comment,
    viewer: &Viewer,
    now: DateTime<Utc>,
    edit_window_s: i64,
) -> Result<(), Denied> {
    if comment.state == CommentState::Deleted {
        return Err(Denied::Deleted);
    }
    if viewer.admin {
        return Ok(());
    }
    if !viewer.is_author_of(comment) {
        return Err(Denied::NotAuthor);
    }
    // Otherwise an author could rewrite text a moderator hid, and a later approval would
    // publish words nobody reviewed.
    if comment.state == CommentState::Hidden {
        return Err(Denied::Hidden);
    }
    if (now - comment.created_at).num_seconds() >= edit_window_s {
        return Err(Denied::WindowClosed { window_s: edit_window_s });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn comment(session: u128, state: CommentState) -> Comment {
        Comment {
            id: CommentId(1),
            site: "default".into(),
            thread_key: "/a".into(),
            parent_id: None,
            text: "t".into(),
            text_format: TextFormat::Markdown,
            html: "<p>t</p>".into(),
            author: None,
            email: None,
            website: None,
            remote_addr: None,
            session_id: Some(SessionId(session)),
            state,
            created_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            edited_at: None,
        }
    }

    fn viewer(session: Option<u128>, admin: bool) -> Viewer {
        Viewer { session_id: session.map(SessionId), admin }
    }

    #[test]
    fn author_within_window_admin_any_time() {
        let c = comment(1, CommentState::Published);
        let t = c.created_at;
        let minute = chrono::Duration::seconds(60);
        assert_eq!(authorize_change(&c, &viewer(Some(1), false), t + minute, 900), Ok(()));
        assert_eq!(
            authorize_change(&c, &viewer(Some(1), false), t + minute * 15, 900),
            Err(Denied::WindowClosed { window_s: 900 })
        );
        assert_eq!(authorize_change(&c, &viewer(Some(2), false), t, 900), Err(Denied::NotAuthor));
        assert_eq!(authorize_change(&c, &viewer(None, false), t, 900), Err(Denied::NotAuthor));
        assert_eq!(authorize_change(&c, &viewer(None, true), t + minute * 999, 900), Ok(()));
        let gone = comment(1, CommentState::Deleted);
        assert_eq!(authorize_change(&gone, &viewer(None, true), t, 900), Err(Denied::Deleted));
        let hidden = comment(1, CommentState::Hidden);
        assert_eq!(authorize_change(&hidden, &viewer(Some(1), false), t, 900), Err(Denied::Hidden));
        assert_eq!(authorize_change(&hidden, &viewer(None, true), t, 900), Ok(()));
    }

    #[test]
    fn pending_is_seen_by_author_and_admin_only() {
        let c = comment(1, CommentState::Pending);
        assert!(viewer(Some(1), false).may_see(&c));
        assert!(viewer(None, true).may_see(&c));
        assert!(!viewer(Some(2), false).may_see(&c));
        assert!(!viewer(None, false).may_see(&c));
        let hidden = comment(1, CommentState::Hidden);
        assert!(!viewer(Some(1), false).may_see(&hidden));
        assert!(viewer(None, true).may_see(&hidden));
    }
}
