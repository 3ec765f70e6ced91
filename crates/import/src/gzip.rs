//! Transparent gzip: an export is decompressed when its first bytes are the gzip magic
//! number, whatever the file is called, for every format.

use std::io::{self, BufRead, BufReader, Cursor, Read};

use flate2::bufread::MultiGzDecoder;

/// The first two bytes of every gzip member (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Buffer between the decompressor and the parser.
const DECOMPRESSED_BUFFER_BYTES: usize = 256 * 1024;

/// An export's bytes, decompressed if they were gzip.
pub struct Input {
    pub reader: Box<dyn BufRead>,
    /// Whether the bytes were gzip (one or more members, as `cat a.gz b.gz` makes).
    pub gzip: bool,
}

/// Sniffs the first two bytes and, if they are the gzip magic, decompresses every member.
/// Nothing is consumed from `reader` that the returned reader does not hand on.
pub fn sniff<R: BufRead + 'static>(mut reader: R) -> io::Result<Input> {
    let mut head = Vec::with_capacity(GZIP_MAGIC.len());
    // `fill_buf` may hold a single byte at a buffer boundary, so read until two or the end.
    (&mut reader).take(GZIP_MAGIC.len() as u64).read_to_end(&mut head)?;
    let gzip = head == GZIP_MAGIC;
    let whole = Cursor::new(head).chain(reader);
    let reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(DECOMPRESSED_BUFFER_BYTES, MultiGzDecoder::new(whole)))
    } else {
        Box::new(whole)
    };
    Ok(Input { reader, gzip })
}
