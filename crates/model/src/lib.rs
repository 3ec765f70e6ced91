//! Afterword's domain: ids, comments, threads, position tokens, validation and rendering.
//! Pure: no IO, no clock, no environment; callers pass time and randomness in.

pub mod cache_rule;
pub mod comment;
pub mod compose;
pub mod id;
pub mod oracle;
pub mod position;
pub mod routing;
pub mod session;
pub mod site;
pub mod text;
pub mod thread_cursor;
pub mod tree;
pub mod validate;

pub use comment::{authorize_change, Comment, CommentState, Denied, Viewer};
pub use compose::{check_visible, compose, render_checked, Clock, Draft};
pub use id::{CommentId, IdError, IdGenerator};
pub use position::{Position, StoreId};
pub use routing::{decide, Decision, ReadContext, ReplicaView, ServedBy, Strategy};
pub use session::{SessionId, SessionSigner};
pub use site::{Moderation, QueryRule, ThreadKeyRules, TrailingSlash};
pub use text::{render_html, TextFormat};
pub use thread_cursor::ThreadCursor;
pub use validate::{FieldError, FieldLimits};
