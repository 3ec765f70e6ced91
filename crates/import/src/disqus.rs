//! Streaming reader for Disqus XML exports: `<thread>` and `<post>` elements become records.
//!
//! The reader walks quick-xml events and keeps only the record being built, so memory is
//! bounded by one record (and quick-xml's buffer for the largest single event). It is lenient
//! where real exports are sloppy and strict where guessing would attach data to the wrong record:
//!
//! - text before the XML declaration is ignored;
//! - attribute values may be unquoted (`<thread dsq:id=123/>`): tags are read with HTML
//!   attribute rules;
//! - a bare `&` in text is kept as text; unknown entities (`&nbsp;`) are kept literally, which
//!   is right for the HTML that Disqus messages are;
//! - `<category>` and any element not described below are ignored;
//! - mismatched end tags, an unterminated file or a root other than `<disqus>` are `Malformed`.

mod draft;

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};

use crate::error::ImportError;
use crate::limits::ReadLimits;
use crate::lines::LineCounting;
use crate::record::Record;
use crate::xml::{resolve_reference, unshare, Piece};
use draft::{Draft, Kind};

/// The default cap on one field's text; see `ReadLimits::field_bytes_max`.
pub const FIELD_BYTES_MAX: usize = crate::limits::FIELD_BYTES_MAX;

/// How deeply elements may nest. Disqus needs 4 levels; the bound keeps a hostile file from
/// growing quick-xml's open-tag stack without limit.
pub const DEPTH_MAX: usize = 64;

/// Elements at this depth (root = 1) are the records: `<thread>`, `<post>`, `<category>`.
const RECORD_LEVEL: usize = 2;

/// Reads a Disqus export and yields threads and comments in file order.
pub struct DisqusReader<R: BufRead> {
    xml: quick_xml::Reader<LineCounting<R>>,
    buf: Vec<u8>,
    /// How many elements are open right now.
    depth: usize,
    root_seen: bool,
    /// The record being built, if the reader is inside a `<thread>` or `<post>`.
    draft: Option<Draft>,
    limits: ReadLimits,
    done: bool,
}

/// What one XML event amounts to.
#[expect(
    clippy::large_enum_variant,
    reason = "a `Step` lives only from one event to the caller; boxing would allocate per record"
)]
enum Step {
    Continue,
    Yield(Result<Record, ImportError>),
    End,
}

impl<R: BufRead> DisqusReader<R> {
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
        DisqusReader { xml, buf: Vec::new(), depth: 0, root_seen: false, draft: None, limits, done: false }
    }

    fn line(&self) -> u64 {
        self.xml.get_ref().line()
    }

    fn malformed(&self, message: impl Into<String>) -> ImportError {
        ImportError::Malformed { line: self.line(), message: message.into() }
    }

    /// Reads one event and acts on it.
    fn step(&mut self) -> Result<Step, ImportError> {
        // The event borrows the buffer, so take it out of `self` while the event is handled.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let step = match self.xml.read_event_into(&mut buf) {
            Ok(event) => self.handle(event),
            Err(error) => Err(self.xml_error(error)),
        };
        self.buf = buf;
        step
    }

    fn handle(&mut self, event: Event<'_>) -> Result<Step, ImportError> {
        match event {
            Event::Start(start) => self.open(&start).map(|()| Step::Continue),
            Event::Empty(start) => {
                self.open(&start)?;
                Ok(self.close())
            }
            Event::End(_) => Ok(self.close()),
            Event::Text(text) => {
                self.push_text(text.decode(), Piece::Text);
                Ok(Step::Continue)
            }
            Event::CData(cdata) => {
                self.push_text(cdata.decode(), Piece::CData);
                Ok(Step::Continue)
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference);
                self.push_text(resolved, Piece::Reference);
                Ok(Step::Continue)
            }
            Event::Eof => self.end_of_file(),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => Ok(Step::Continue),
        }
    }

    fn open(&mut self, start: &BytesStart<'_>) -> Result<(), ImportError> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return Err(self.malformed(format!("elements nest deeper than {DEPTH_MAX} levels")));
        }
        let name = start.local_name();
        match self.depth {
            1 => self.open_root(name.as_ref()),
            RECORD_LEVEL => {
                let (line, bytes_max) = (self.line(), self.limits.field_bytes_max);
                self.draft =
                    Kind::from_name(name.as_ref()).map(|kind| Draft::new(kind, dsq_id(start), line, bytes_max));
                Ok(())
            }
            level => {
                if let Some(draft) = &mut self.draft {
                    draft.open_child(level, name.as_ref(), || dsq_id(start));
                }
                Ok(())
            }
        }
    }

    fn open_root(&mut self, name: &[u8]) -> Result<(), ImportError> {
        if name != b"disqus" {
            let name = String::from_utf8_lossy(name);
            return Err(
                self.malformed(format!("the root element is <{name}>, not <disqus>: this is not a Disqus export"))
            );
        }
        self.root_seen = true;
        Ok(())
    }

    fn close(&mut self) -> Step {
        let level = self.depth;
        self.depth = self.depth.saturating_sub(1);
        if level == RECORD_LEVEL {
            if let Some(draft) = self.draft.take() {
                return Step::Yield(draft.finish());
            }
        } else if let Some(draft) = &mut self.draft {
            draft.close_child(level);
        }
        Step::Continue
    }

    fn push_text<E: std::fmt::Display>(&mut self, text: Result<impl AsRef<str>, E>, piece: Piece) {
        let Some(draft) = &mut self.draft else {
            return;
        };
        match text {
            Ok(text) => draft.push(text.as_ref(), piece),
            Err(error) => draft.note_problem(format!("text that cannot be decoded: {error}")),
        }
    }

    fn end_of_file(&mut self) -> Result<Step, ImportError> {
        if !self.root_seen {
            return Err(self.malformed("no <disqus> root element"));
        }
        if self.depth > 0 {
            let inside = match &self.draft {
                Some(draft) => format!(" inside {}", draft.describe()),
                None => String::new(),
            };
            let open = self.depth;
            return Err(self.malformed(format!("the file ends{inside} with {open} element(s) still open (truncated?)")));
        }
        Ok(Step::End)
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

impl<R: BufRead> Iterator for DisqusReader<R> {
    type Item = Result<Record, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.step() {
                Ok(Step::Continue) => {}
                Ok(Step::Yield(item)) => return Some(item),
                Ok(Step::End) => self.done = true,
                Err(fatal) => {
                    self.done = true;
                    return Some(Err(fatal));
                }
            }
        }
        None
    }
}

/// The `dsq:id` attribute of a tag, trimmed, or `None` if absent or empty.
///
/// Any attribute whose local name is `id` counts, so an export written with another prefix for
/// the Disqus internals namespace still works; `dsq:id` itself wins if both are present.
fn dsq_id(start: &BytesStart<'_>) -> Option<String> {
    let mut attributes = start.html_attributes();
    attributes.with_checks(false);
    let mut fallback = None;
    // A broken attribute ends the scan: what follows it cannot be trusted to line up.
    for attribute in attributes.map_while(Result::ok) {
        let is_dsq = attribute.key.as_ref() == b"dsq:id";
        if !is_dsq && attribute.key.local_name().as_ref() != b"id" {
            continue;
        }
        let value = attribute.unescape_value().ok();
        let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if is_dsq {
            return value;
        }
        fallback = fallback.or(value);
    }
    fallback
}
