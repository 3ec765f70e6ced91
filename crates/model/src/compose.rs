//! The one path from submitted fields to a storable comment, shared by the API and importers:
//! validate, normalise, render.

use chrono::{DateTime, Utc};

use crate::comment::{Comment, CommentState};
use crate::id::CommentId;
use crate::session::SessionId;
use crate::text::{has_visible_content, render_html, TextFormat};
use crate::validate::{check_text, normalize_author, normalize_email, normalize_website, FieldError, FieldLimits};

/// Everything a new comment is made of, before the rules are applied.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    pub id: CommentId,
    pub site: &'a str,
    pub thread_key: &'a str,
    pub parent_id: Option<CommentId>,
    pub text: &'a str,
    pub text_format: TextFormat,
    pub author: Option<&'a str>,
    pub email: Option<&'a str>,
    pub website: Option<&'a str>,
    pub remote_addr: Option<&'a str>,
    pub session_id: Option<SessionId>,
    pub state: CommentState,
    pub created_at: DateTime<Utc>,
}

/// Applies the field rules and renders the text. A deleted comment (an imported tombstone)
/// keeps no text, so it needs none.
pub fn compose(draft: Draft<'_>, limits: &FieldLimits) -> Result<Comment, FieldError> {
    let deleted = draft.state == CommentState::Deleted;
    if !deleted {
        check_text(draft.text, limits.text_chars_max)?;
    }
    let (text, html) = if deleted {
        (String::new(), String::new())
    } else {
        // Whether nothing visible may survive is the caller's rule: live comments refuse it
        // (`render_checked`), imports keep it (an old emote or video embed still anchors replies).
        (draft.text.to_owned(), render_html(draft.text, draft.text_format))
    };
    Ok(Comment {
        id: draft.id,
        site: draft.site.to_owned(),
        thread_key: draft.thread_key.to_owned(),
        parent_id: draft.parent_id,
        text,
        text_format: draft.text_format,
        html,
        author: normalize_author(draft.author, limits)?,
        email: normalize_email(draft.email, limits)?,
        website: normalize_website(draft.website, limits)?,
        remote_addr: draft.remote_addr.map(str::to_owned),
        session_id: draft.session_id,
        state: draft.state,
        created_at: draft.created_at,
        edited_at: None,
    })
}

/// Renders text and refuses text that shows a reader nothing (`check_visible`).
pub fn render_checked(text: &str, format: TextFormat) -> Result<String, FieldError> {
    let html = render_html(text, format);
    check_visible(&html)?;
    Ok(html)
}

/// Refuses rendered text that shows a reader nothing: a comment made only of `<script>`, of
/// zero-width characters or of `&nbsp;` would otherwise be published blank.
pub fn check_visible(html: &str) -> Result<(), FieldError> {
    if has_visible_content(html) {
        Ok(())
    } else {
        Err(FieldError::new("text", "shows nothing once unsafe HTML and invisible characters are removed"))
    }
}

/// The time source. Only the binary reads the real clock; tests pass a fixed or stepped one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn draft<'a>(text: &'a str, state: CommentState) -> Draft<'a> {
        Draft {
            id: CommentId(1),
            site: "default",
            thread_key: "/t",
            parent_id: None,
            text,
            text_format: TextFormat::Markdown,
            author: Some(" Ann "),
            email: None,
            website: Some("https://ann.example/"),
            remote_addr: None,
            session_id: None,
            state,
            created_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn composes_rendered_and_normalised() {
        let comment = compose(draft("*hi*", CommentState::Published), &FieldLimits::default()).unwrap();
        assert_eq!(comment.html, "<p><em>hi</em></p>\n");
        assert_eq!(comment.text, "*hi*");
        assert_eq!(comment.author.as_deref(), Some("Ann"));
    }

    #[test]
    fn text_that_shows_nothing_is_refused() {
        let only_invisible = [
            "&#8203;",
            "&zwnj;",
            "&#x200B;",
            "&nbsp; &nbsp;",
            "<span>\u{200B}</span>",
            "`\u{200B}`",
            "\u{200B}*\u{200B}*",
            "<img src=x>",
            "![]()",
            "\u{E0020}\u{E0041}\u{1D173}\u{061C}",
        ];
        let sanitised_away =
            ["<script>alert(1)</script>", "<iframe src=x></iframe>", "<div></div>", "<p> </p>", "[](/emote)"];
        for text in sanitised_away.into_iter().chain(only_invisible) {
            let err = render_checked(text, TextFormat::Markdown).unwrap_err();
            assert_eq!(err.field, "text", "{text}");
        }
        assert!(render_checked("---", TextFormat::Markdown).is_ok(), "a rule is visible");
        assert!(render_checked("&amp;", TextFormat::Html).is_ok());
        assert!(render_checked("&lt;3", TextFormat::Markdown).is_ok());
        assert!(render_checked("![cat](https://example.org/cat.png)", TextFormat::Markdown).is_ok(), "an image");
        assert!(render_checked("a&nbsp;b", TextFormat::Html).is_ok());
        assert!(render_checked("\u{E000}", TextFormat::Markdown).is_ok(), "private use is drawn");
        // Joiners inside visible text are fine (emoji sequences, scripts that need them).
        assert!(render_checked("a\u{200D}b 👩\u{200D}💻", TextFormat::Markdown).is_ok());
    }

    #[test]
    fn tombstones_need_no_text_and_keep_none() {
        let comment = compose(draft("", CommentState::Deleted), &FieldLimits::default()).unwrap();
        assert_eq!((comment.text.as_str(), comment.html.as_str()), ("", ""));
        let err = compose(draft(" ", CommentState::Published), &FieldLimits::default()).unwrap_err();
        assert_eq!(err.field, "text");
    }
}
