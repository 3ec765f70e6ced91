//! A `BufRead` adapter that counts the lines its consumer has consumed, so parse errors can name a line.

use std::io::{self, BufRead, Read};

/// Wraps a reader and counts newlines in every byte handed on, without buffering anything itself.
pub(crate) struct LineCounting<R> {
    inner: R,
    newlines: u64,
}

impl<R: BufRead> LineCounting<R> {
    pub(crate) fn new(inner: R) -> Self {
        LineCounting { inner, newlines: 0 }
    }

    /// The 1-based line the consumer has reached.
    pub(crate) fn line(&self) -> u64 {
        self.newlines + 1
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

impl<R: BufRead> Read for LineCounting<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.newlines += count_newlines(&out[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The consumed bytes are the front of the buffer the caller has just filled, so asking
        // for it again does no I/O; it is the only way to see which bytes are being consumed.
        if amt > 0 {
            if let Ok(buf) = self.inner.fill_buf() {
                self.newlines += count_newlines(&buf[..amt.min(buf.len())]);
            }
        }
        self.inner.consume(amt);
    }
}
