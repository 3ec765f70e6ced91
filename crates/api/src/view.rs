//! What the API sends: comments as JSON, with private fields only for those allowed.

use chrono::{DateTime, SecondsFormat, Utc};
use model::{Comment, CommentId, CommentState, Viewer};
use serde::Serialize;

/// Nesting deeper than this is flattened into the deepest allowed level (replies keep their
/// `parent_id`), so a pathological chain cannot blow the serialiser's stack.
pub const TREE_DEPTH_MAX: usize = 64;

#[derive(Debug, Serialize)]
pub struct CommentView {
    pub id: CommentId,
    pub thread: String,
    pub parent_id: Option<CommentId>,
    pub author: Option<String>,
    pub website: Option<String>,
    pub html: String,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub state: CommentState,
    /// Raw text: for its author and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether the viewer wrote it (and so may edit it within the window).
    pub own: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<Vec<CommentView>>,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl CommentView {
    /// The comment as this viewer may see it. A comment kept only as the parent of visible
    /// replies (hidden, or pending for someone else) keeps its place and state, not its content.
    pub fn new(comment: &Comment, viewer: &Viewer) -> Self {
        if !viewer.may_see(comment) {
            return Self::placeholder(comment);
        }
        Self {
            id: comment.id,
            thread: comment.thread_key.clone(),
            parent_id: comment.parent_id,
            author: comment.author.clone(),
            website: comment.website.clone(),
            html: comment.html.clone(),
            created_at: rfc3339(comment.created_at),
            edited_at: comment.edited_at.map(rfc3339),
            state: comment.state,
            text: (viewer.may_read_raw(comment) && comment.state != CommentState::Deleted)
                .then(|| comment.text.clone()),
            own: viewer.is_author_of(comment),
            replies: None,
        }
    }
}

impl CommentView {
    fn placeholder(comment: &Comment) -> Self {
        Self {
            id: comment.id,
            thread: comment.thread_key.clone(),
            parent_id: comment.parent_id,
            author: None,
            website: None,
            html: String::new(),
            created_at: rfc3339(comment.created_at),
            edited_at: None,
            state: comment.state,
            text: None,
            own: false,
            replies: None,
        }
    }
}

/// Nests `visible` (already in display order, parents before children) under their roots.
pub fn build_tree(visible: &[&Comment], viewer: &Viewer) -> Vec<CommentView> {
    use std::collections::HashMap;
    let mut children: HashMap<CommentId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (index, comment) in visible.iter().enumerate() {
        match comment.parent_id {
            Some(parent) => children.entry(parent).or_default().push(index),
            None => roots.push(index),
        }
    }
    roots.into_iter().map(|root| nest(root, 1, visible, &children, viewer)).collect()
}

fn nest(
    index: usize,
    depth: usize,
    visible: &[&Comment],
    children: &std::collections::HashMap<CommentId, Vec<usize>>,
    viewer: &Viewer,
) -> CommentView {
    let comment = visible[index];
    let mut view = CommentView::new(comment, viewer);
    let mut replies = Vec::new();
    if depth < TREE_DEPTH_MAX {
        for &child in children.get(&comment.id).map(Vec::as_slice).unwrap_or(&[]) {
            replies.push(nest(child, depth + 1, visible, children, viewer));
        }
    } else {
        // Everything below the limit, flattened in order.
        let mut stack: Vec<usize> = children.get(&comment.id).cloned().unwrap_or_default();
        stack.reverse();
        while let Some(child) = stack.pop() {
            replies.push(CommentView::new(visible[child], viewer));
            if let Some(grandchildren) = children.get(&visible[child].id) {
                stack.extend(grandchildren.iter().rev());
            }
        }
    }
    view.replies = Some(replies);
    view
}
