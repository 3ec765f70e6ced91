//! Large cached bodies sent by the kernel from memory files, as nginx sends static files.
//!
//! A thread list of 50 comments is about 25 kB. Written with `writev`, the kernel copies it
//! into the socket on every request; on the read benchmark that copy was most of the gap to
//! nginx, which hands a file's pages to the socket with `sendfile` (BENCHMARKS.md "Reads").
//! So the read cache keeps a second copy of each body of `limits.cache_sendfile_bytes_min`
//! and more in a sealed memory file (`memfd`). The body stays an ordinary `Bytes` on the heap
//! for everything else (tests, gzip, the router); `SendfileStream`, the socket type the server
//! hands to hyper, recognises such a body's slice in a write by its address and sends that
//! part from the file with `sendfile` instead of copying it. Anything else is written as
//! before. No `unsafe`: nothing is mapped, the file is only ever read by the kernel.
//!
//! Why finding a file by address is sound: a slice being written belongs to a live `Bytes`,
//! live allocations do not overlap, and a body's registry entry is removed before its heap
//! memory is freed (`HeapBody::drop`), so an entry covering the slice is the slice's own
//! body. The file is sealed against any change before it is registered. At most
//! `limits.cache_files_max` files exist at once (each holds a file descriptor); later bodies
//! are only on the heap.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::SendFlags;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Slices shorter than this are never looked up: headers and small bodies are cheaper copied.
const SLICE_BYTES_MIN: usize = 4096;

/// A sealed memory file holding a copy of one body.
struct MemoryFile {
    fd: OwnedFd,
    len: usize,
}

/// What a file-backed `Bytes` owns: the body on the heap and its file.
struct HeapBody {
    data: Vec<u8>,
    /// Kept for the registry's `Weak`: the file lives as long as the body.
    _file: Arc<MemoryFile>,
}

impl AsRef<[u8]> for HeapBody {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for HeapBody {
    fn drop(&mut self) {
        // Before `data` is freed, so its address can never lead to this file again.
        registry().forget(self.data.as_ptr() as usize);
    }
}

/// Live file-backed bodies by heap address, so a write can find the file behind a slice.
struct Registry {
    files: RwLock<BTreeMap<usize, Weak<MemoryFile>>>,
    count: AtomicUsize,
}

impl Registry {
    fn add(&self, start: usize, file: &Arc<MemoryFile>) {
        let mut files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        files.insert(start, Arc::downgrade(file));
        self.count.store(files.len(), Ordering::Relaxed);
    }

    fn forget(&self, start: usize) {
        let mut files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        files.remove(&start);
        self.count.store(files.len(), Ordering::Relaxed);
    }

    /// The file whose body holds all of `slice`, and the slice's offset in it.
    fn find(&self, slice: &[u8]) -> Option<(Arc<MemoryFile>, u64)> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let address = slice.as_ptr() as usize;
        let files = self.files.read().unwrap_or_else(PoisonError::into_inner);
        let (start, file) = files.range(..=address).next_back()?;
        let file = file.upgrade()?;
        let offset = address - start;
        (offset + slice.len() <= file.len).then_some((file, offset as u64))
    }
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry { files: RwLock::new(BTreeMap::new()), count: AtomicUsize::new(0) })
}

/// `body` as `Bytes` with a copy in a sealed memory file the server can `sendfile`, and
/// whether it got one: plain heap `Bytes` when `files_max` files exist already or the system
/// refuses one (nothing is lost then but speed).
pub(crate) fn file_backed(body: Vec<u8>, files_max: usize) -> (Bytes, bool) {
    if body.is_empty() || registry().count.load(Ordering::Relaxed) >= files_max {
        return (Bytes::from(body), false);
    }
    let file = match create(&body) {
        Ok(file) => Arc::new(file),
        Err(error) => {
            tracing::warn!(%error, "cannot keep a cached body in a memory file; it is sent from the heap");
            return (Bytes::from(body), false);
        }
    };
    let start = body.as_ptr() as usize;
    registry().add(start, &file);
    (Bytes::from_owner(HeapBody { data: body, _file: file }), true)
}

fn create(body: &[u8]) -> io::Result<MemoryFile> {
    let fd = rustix::fs::memfd_create("afterword-cached-body", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut written = 0;
    while written < body.len() {
        written += rustix::io::write(&fd, &body[written..])?;
    }
    rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL)?;
    Ok(MemoryFile { fd, len: body.len() })
}

/// A TCP stream whose vectored writes send slices of cached memory files with `sendfile`.
pub(crate) struct SendfileStream {
    inner: TcpStream,
}

impl SendfileStream {
    pub fn new(inner: TcpStream) -> Self {
        Self { inner }
    }

    /// Writes what the socket takes now: everything before the first file-backed slice (with
    /// `MSG_MORE`, so headers and body leave together), then that slice with `sendfile`.
    fn write_now(&self, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let found = slices.iter().enumerate().find_map(|(index, slice)| {
            (slice.len() >= SLICE_BYTES_MIN).then(|| registry().find(slice)).flatten().map(|file| (index, file))
        });
        let Some((index, (file, mut offset))) = found else {
            return self.inner.try_write_vectored(slices);
        };
        let head = &slices[..index];
        let head_len: usize = head.iter().map(|slice| slice.len()).sum();
        let mut written = 0;
        if head_len > 0 {
            written = self.inner.try_io(Interest::WRITABLE, || {
                let flags = SendFlags::MORE | SendFlags::NOSIGNAL;
                Ok(rustix::net::sendmsg(&self.inner, head, &mut Default::default(), flags)?)
            })?;
            if written < head_len {
                return Ok(written);
            }
        }
        let count = slices[index].len();
        let sent = self.inner.try_io(Interest::WRITABLE, || {
            Ok(rustix::fs::sendfile(self.inner.as_fd(), file.fd.as_fd(), Some(&mut offset), count)?)
        });
        match sent {
            Ok(sent) => Ok(written + sent),
            // The head went out; the body's error (or its wait) comes with the next write.
            Err(_) if written > 0 => Ok(written),
            Err(error) => Err(error),
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.write_now(slices) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => ready!(self.inner.poll_write_ready(cx))?,
                done => return Poll::Ready(done),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_backed_body_is_found_by_its_slices_and_forgotten_when_dropped() {
        let body: Vec<u8> = (0..20_000u32).map(|n| (n % 251) as u8).collect();
        let (bytes, in_file) = file_backed(body.clone(), 1_000);
        assert!(in_file);
        assert_eq!(&bytes[..], &body[..]);
        let (file, offset) = registry().find(&bytes[5_000..9_000]).expect("found");
        assert_eq!((offset, file.len), (5_000, 20_000));
        drop(file);
        // A copy elsewhere on the heap is not the file's.
        assert!(registry().find(&body[5_000..9_000]).is_none());
        // A clone keeps the file; the last one out forgets it.
        let clone = bytes.clone();
        drop(bytes);
        assert!(registry().find(&clone[19_000..]).is_some());
        let address = clone.as_ptr() as usize;
        drop(clone);
        let files = registry().files.read().unwrap_or_else(PoisonError::into_inner);
        assert!(!files.contains_key(&address), "a dropped body is still registered");
    }

    #[test]
    fn past_the_limit_bodies_stay_on_the_heap() {
        let body = vec![7u8; 10_000];
        let (bytes, in_file) = file_backed(body, 0);
        assert!(!in_file);
        assert!(registry().find(&bytes[..]).is_none());
    }
}
