//! What the XML readers (Disqus, WXR) share: collecting a field's text under a byte cap,
//! resolving entities, and the whitespace rule around CDATA.

use std::io;
use std::sync::Arc;

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::BytesRef;

/// Where a piece of text came from; only raw text can be layout whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    Text,
    CData,
    Reference,
}

/// Collects one field's text.
///
/// Whitespace rule: whitespace-only raw text between the field's tags and a CDATA section is
/// XML indentation, not content (remark42 writes `<message>\n  <![CDATA[...]]>\n</message>`,
/// Isso's WXR fixture the same with `<wp:comment_content>`), so it is dropped when the field
/// has CDATA. Everything else is kept byte for byte; fields other than the message are
/// trimmed later.
#[derive(Debug, Default)]
pub(crate) struct TextAcc {
    text: String,
    has_cdata: bool,
    content_seen: bool,
    leading_ws_bytes: usize,
    trailing_ws_bytes: usize,
}

impl TextAcc {
    /// Appends a piece; `false` (and nothing appended) if that would pass `bytes_max`.
    pub(crate) fn push(&mut self, piece: &str, kind: Piece, bytes_max: usize) -> bool {
        if self.text.len() + piece.len() > bytes_max {
            return false;
        }
        let layout = kind == Piece::Text && piece.bytes().all(is_xml_whitespace);
        if layout {
            if !self.content_seen {
                self.leading_ws_bytes += piece.len();
            }
            self.trailing_ws_bytes += piece.len();
        } else {
            self.content_seen = true;
            self.trailing_ws_bytes = 0;
        }
        self.has_cdata |= kind == Piece::CData;
        self.text.push_str(piece);
        true
    }

    pub(crate) fn into_string(mut self) -> String {
        if self.has_cdata {
            self.text.truncate(self.text.len() - self.trailing_ws_bytes);
            self.text.drain(..self.leading_ws_bytes);
        }
        self.text
    }
}

/// Resolves `&name;` or `&#n;`; anything unknown is kept as written, which an HTML renderer
/// will understand (`&nbsp;`, `&eacute;`).
pub(crate) fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, quick_xml::encoding::EncodingError> {
    let name = reference.decode()?;
    if let Ok(Some(ch)) = reference.resolve_char_ref() {
        return Ok(ch.to_string());
    }
    Ok(match resolve_xml_entity(&name) {
        Some(resolved) => resolved.to_owned(),
        None => format!("&{name};"),
    })
}

/// quick-xml shares I/O errors behind an `Arc`; hand the caller an owned one.
pub(crate) fn unshare(error: Arc<io::Error>) -> io::Error {
    Arc::try_unwrap(error).unwrap_or_else(|shared| io::Error::new(shared.kind(), shared.to_string()))
}

/// The four characters XML counts as whitespace (`is_ascii_whitespace` also admits form feed).
pub(crate) fn is_xml_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Trims a value; empty becomes `None`.
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    let value = value?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == value.len() {
        Some(value)
    } else {
        Some(trimmed.to_owned())
    }
}
