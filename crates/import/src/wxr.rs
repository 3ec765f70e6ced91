//! Streaming reader for WordPress WXR exports (1.0 to 1.2): each `<item>` with comments
//! becomes a thread, each `<wp:comment>` a comment.
//!
//! Elements are matched by local name inside `<rss><channel><item>`, so the export namespace
//! may be `http://` or `https://wordpress.org/export/1.x/`, another prefix, or not declared at
//! all. Only the record being built is kept; `<content:encoded>` and other large fields the
//! importer does not use are never collected.
//!
//! Rules, chosen for what a site owner moving off WordPress expects:
//!
//! - An item becomes a thread at its first `<wp:comment>`; items without comments
//!   (attachments, menu entries, pages nobody commented on) are not imported. Its id is
//!   `<wp:post_id>`, else `<guid>`, else `<link>`; an item with none of them is skipped with
//!   its comments. `<link>` is the page address, `<guid>` (often `https://host/?p=ID`) an alias.
//! - A comment's source id is `<post id>#<comment id>` (see `draft::comment_source_id`);
//!   `<wp:comment_parent>` `0` or empty makes a top-level comment.
//! - Pingbacks and trackbacks are skipped with the reason `pingback` / `trackback`: they are
//!   link notifications, not comments, and WordPress itself lists them apart. Plugin types
//!   other than `review` are skipped naming the type.
//! - `<wp:comment_approved>`: `1` → published, `0` → pending, `spam` → spam (kept hidden),
//!   `trash` → deleted (a tombstone); anything else → pending.
//! - Times are `<wp:comment_date_gmt>` (UTC), else `<wp:comment_date>` read as UTC.
//! - Text is HTML; plain-text comments get WordPress's implicit paragraphs made explicit
//!   (`paragraphs::explicit_paragraphs`). IPv4-mapped IPv6 addresses are stored as IPv4.
//! - Truncated files, mismatched tags and a root other than `<rss>` are `Malformed`.

mod draft;
mod paragraphs;

use std::collections::VecDeque;
use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

pub use self::draft::comment_source_id;
use self::draft::{CommentDraft, Field, Item, OpenField};
pub use self::paragraphs::explicit_paragraphs;
use crate::error::ImportError;
use crate::limits::ReadLimits;
use crate::lines::LineCounting;
use crate::record::Record;
use crate::xml::{resolve_reference, unshare, Piece};

/// How deeply elements may nest; WXR needs 6 (`rss/channel/item/wp:comment/wp:commentmeta/..`).
pub const DEPTH_MAX: usize = 64;

const ITEM_LEVEL: usize = 3;
const ITEM_FIELD_LEVEL: usize = 4;
const COMMENT_FIELD_LEVEL: usize = 5;

/// Reads a WXR export and yields threads and comments in file order.
pub struct WxrReader<R: BufRead> {
    xml: quick_xml::Reader<LineCounting<R>>,
    buf: Vec<u8>,
    depth: usize,
    root_seen: bool,
    item: Option<Item>,
    comment: Option<CommentDraft>,
    open: Option<OpenField>,
    /// Records made by one event but not handed out yet (an empty `<wp:comment/>` makes two).
    ready: VecDeque<Result<Record, ImportError>>,
    limits: ReadLimits,
    done: bool,
}

impl<R: BufRead> WxrReader<R> {
    /// A reader with the default limits.
    pub fn new(reader: R) -> Self {
        Self::with_limits(reader, ReadLimits::default())
    }

    pub fn with_limits(reader: R, limits: ReadLimits) -> Self {
        let mut xml = quick_xml::Reader::from_reader(LineCounting::new(reader));
        let config = xml.config_mut();
        config.allow_dangling_amp = true;
        config.check_end_names = true;
        config.trim_text(false);
        WxrReader {
            xml,
            buf: Vec::new(),
            depth: 0,
            root_seen: false,
            item: None,
            comment: None,
            open: None,
            ready: VecDeque::new(),
            limits,
            done: false,
        }
    }

    fn line(&self) -> u64 {
        self.xml.get_ref().line()
    }

    fn malformed(&self, message: impl Into<String>) -> ImportError {
        ImportError::Malformed { line: self.line(), message: message.into() }
    }

    /// Reads one event and acts on it; `Ok(false)` at the end of the file.
    fn step(&mut self) -> Result<bool, ImportError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let more = match self.xml.read_event_into(&mut buf) {
            Ok(event) => self.handle(event),
            Err(error) => Err(self.xml_error(error)),
        };
        self.buf = buf;
        more
    }

    fn handle(&mut self, event: Event<'_>) -> Result<bool, ImportError> {
        match event {
            Event::Start(start) => self.open(&start)?,
            Event::Empty(start) => {
                self.open(&start)?;
                self.close();
            }
            Event::End(_) => self.close(),
            Event::Text(text) => self.push_text(text.decode(), Piece::Text),
            Event::CData(cdata) => self.push_text(cdata.decode(), Piece::CData),
            Event::GeneralRef(reference) => self.push_text(resolve_reference(&reference), Piece::Reference),
            Event::Eof => return self.end_of_file().map(|()| false),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        Ok(true)
    }

    fn open(&mut self, start: &BytesStart<'_>) -> Result<(), ImportError> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return Err(self.malformed(format!("elements nest deeper than {DEPTH_MAX} levels")));
        }
        let local = start.local_name();
        let name = local.as_ref();
        if self.depth == 1 {
            return self.open_root(name);
        }
        if self.open.is_some() {
            // Markup inside a field (rare, but HTML that escaped its CDATA) adds only its text.
            return Ok(());
        }
        let line = self.line();
        match (self.depth, &mut self.item, &mut self.comment) {
            (ITEM_LEVEL, None, _) if name == b"item" => self.item = Some(Item::new(line)),
            (ITEM_FIELD_LEVEL, Some(item), None) if name == b"comment" => {
                if let Some(thread) = item.thread_on_first_comment() {
                    self.ready.push_back(thread);
                }
                self.comment = Some(CommentDraft::new(line));
            }
            (ITEM_FIELD_LEVEL, Some(_), None) => {
                self.open = Field::of_item(name).map(|field| OpenField::new(field, self.depth));
            }
            (COMMENT_FIELD_LEVEL, Some(_), Some(_)) => {
                self.open = Field::of_comment(name).map(|field| OpenField::new(field, self.depth));
            }
            _ => {}
        }
        Ok(())
    }

    fn open_root(&mut self, name: &[u8]) -> Result<(), ImportError> {
        if name != b"rss" {
            let name = String::from_utf8_lossy(name);
            return Err(self
                .malformed(format!("the root element is <{name}>, not <rss>: this is not a WordPress export (WXR)")));
        }
        self.root_seen = true;
        Ok(())
    }

    fn close(&mut self) {
        let level = self.depth;
        self.depth = self.depth.saturating_sub(1);
        if let Some(open) = self.open.take_if(|open| open.level == level) {
            let field = open.field;
            let value = open.finish(self.limits.field_bytes_max);
            match (&mut self.comment, &mut self.item) {
                (Some(comment), _) => comment.set(field, value),
                (None, Some(item)) => item.set(field, value),
                (None, None) => {}
            }
            return;
        }
        match level {
            ITEM_FIELD_LEVEL => {
                if let (Some(comment), Some(item)) = (self.comment.take(), &self.item) {
                    self.ready.push_back(comment.finish(item));
                }
            }
            ITEM_LEVEL => {
                self.item = None;
                self.comment = None;
            }
            _ => {}
        }
    }

    fn push_text<E: std::fmt::Display>(&mut self, text: Result<impl AsRef<str>, E>, piece: Piece) {
        let Some(open) = &mut self.open else {
            return;
        };
        match text {
            Ok(text) => open.push(text.as_ref(), piece, self.limits.field_bytes_max),
            Err(error) => {
                let problem = format!("text that cannot be decoded: {error}");
                match (&mut self.comment, &mut self.item) {
                    (Some(comment), _) => comment.set(open.field, Err(problem)),
                    (None, Some(item)) => item.set(open.field, Err(problem)),
                    (None, None) => {}
                }
            }
        }
    }

    fn end_of_file(&mut self) -> Result<(), ImportError> {
        if !self.root_seen {
            return Err(self.malformed("no <rss> root element"));
        }
        if self.depth > 0 {
            let inside = if self.comment.is_some() {
                " inside a <wp:comment>"
            } else if self.item.is_some() {
                " inside an <item>"
            } else {
                ""
            };
            let open = self.depth;
            return Err(self.malformed(format!("the file ends{inside} with {open} element(s) still open (truncated?)")));
        }
        Ok(())
    }

    fn xml_error(&self, error: quick_xml::Error) -> ImportError {
        match error {
            quick_xml::Error::Io(io_error) => ImportError::Io(unshare(io_error)),
            other => {
                let at = self.xml.error_position();
                self.malformed(format!("{other} (at byte {at})"))
            }
        }
    }
}

impl<R: BufRead> Iterator for WxrReader<R> {
    type Item = Result<Record, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(ready) = self.ready.pop_front() {
                return Some(ready);
            }
            if self.done {
                return None;
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(fatal) => {
                    self.done = true;
                    // Records finished before the fatal event still come first.
                    self.ready.push_back(Err(fatal));
                }
            }
        }
    }
}
