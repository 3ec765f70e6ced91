//! The read cache: anonymous thread-list responses kept as serialised JSON bytes plus a gzip
//! variant, so a hit costs a hash lookup and a few header copies, never a serialisation.
//!
//! Rules (DESIGN.md "Cache, sessions, rate limits"):
//! - an entry is tagged with the store position of the snapshot it was built from, and is
//!   served only to readers whose seen position it covers; anything else is a miss;
//! - sets are "only if newer": an entry never replaces a live entry with a newer tag;
//! - entries expire after `limits.cache_ttl_ms`, because another server's writes are invisible
//!   here, and this server's own writes invalidate the thread at once;
//! - concurrent misses for one key are collapsed: one request reads the store, the others wait
//!   for it and then hit.
//!
//! Only readers with no session and no admin rights are served from here: everybody else may
//! see rows (their own pending comments, raw text) that other readers must not.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use model::{CommentId, Position, ServedBy};

use crate::config::Limits;
use crate::error::ApiError;
use crate::reply::{set_position, set_served_by};
use crate::sendfile;

/// Response header saying how a thread list was served: `hit`, `miss` or `bypass` (not
/// cacheable for this viewer). Tests and benchmarks read it; clients may ignore it.
pub const CACHE_HEADER: &str = "afterword-cache";

/// What identifies one anonymous thread-list response. The thread is the client's spelling
/// (trimmed): the normalised key is a function of it and the site's rules, so a hit needs no
/// normalisation, and the store also looks the raw spelling up as an alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub site: String,
    pub thread_raw: String,
    pub flat: bool,
    pub limit: usize,
    pub after: Option<CommentId>,
}

/// What a miss produces: the response body as the anonymous viewer sees it.
pub struct Filled {
    /// Serialised once; its `position` field is `position`.
    pub json: Vec<u8>,
    /// What readers of this body must carry: at least everything it shows (an over-estimate
    /// is safe here, an under-estimate is not).
    pub position: Position,
    /// A position the snapshot is known to include: the tag readers are compared with. It must
    /// not over-estimate (a reader could then be served an entry missing their own write).
    /// SQLite's read position is exact (read in the snapshot); a replica read hands over the
    /// position known before its query. `None`: not cached.
    pub tag: Option<Position>,
    pub served_by: ServedBy,
    /// The thread's stored key, which writes name when they invalidate.
    pub thread_key: String,
}

/// One cached response.
struct Entry {
    site: String,
    thread_key: String,
    /// The under-estimate readers are compared with (`Filled::tag`).
    tag: Position,
    served_by: ServedBy,
    built_at_ms: i64,
    json: Bytes,
    /// Whether `json` also has a copy in a memory file (counted in the weight).
    in_file: bool,
    gzip: Option<Bytes>,
    /// `Afterword-Position` and the position cookie for `position`, formatted once.
    position_headers: HeaderMap,
}

impl Entry {
    fn usable(&self, seen: Option<Position>, now_ms: i64, ttl_ms: i64) -> bool {
        let fresh = now_ms.saturating_sub(self.built_at_ms) < ttl_ms;
        fresh && model::cache_rule::servable(self.tag, seen)
    }

    /// Weight for the byte budget; the bodies dominate.
    fn weight(&self) -> u32 {
        let file_copy = if self.in_file { self.json.len() } else { 0 };
        let bytes = self.json.len() + file_copy + self.gzip.as_ref().map_or(0, Bytes::len) + self.thread_key.len() * 2;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Miss,
}

impl Outcome {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
        })
    }
}

/// How a cached response is answered: compressed or not, and whether `Afterword-Served-By`
/// is shown (servers that allow strategy overrides show it).
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub gzip: AcceptsGzip,
    pub served_by: bool,
}

/// Whether the client accepts a gzip body (`Accept-Encoding: gzip` with a non-zero q).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptsGzip(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for AcceptsGzip {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(AcceptsGzip::from_headers(&parts.headers))
    }
}

impl AcceptsGzip {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        AcceptsGzip(headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(accepts_gzip))
    }
}

/// `gzip`, `x-gzip` or `*` listed without `q=0`.
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let wanted = ["gzip", "x-gzip", "*"].iter().any(|c| coding.eq_ignore_ascii_case(c));
        let refused = parts
            .any(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()).is_some_and(|q| q <= 0.0));
        wanted && !refused
    })
}

/// The per-server read cache (in-process; a Redis-backed one comes with scaling out).
pub struct ReadCache {
    entries: Option<moka::sync::Cache<ListKey, Arc<Entry>>>,
    ttl_ms: i64,
    entry_bytes_max: usize,
    /// Bodies this large go to memory files (`sendfile`); 0: none do.
    sendfile_bytes_min: usize,
    files_max: usize,
    /// Counts this server's writes. A miss that saw it change while reading the store may
    /// hold a snapshot from before a write whose invalidation already ran: it is not stored.
    writes: AtomicU64,
    /// Serialises "check the write counter, then insert" against "bump it, then invalidate".
    insert_or_invalidate: Mutex<()>,
    /// One lock per key being filled, so concurrent misses wait for one store read.
    flights: Mutex<HashMap<ListKey, Arc<tokio::sync::Mutex<()>>>>,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl ReadCache {
    /// A cache sized by `limits`; `cache_bytes_max = 0` or `cache_ttl_ms = 0` turns it off.
    /// Create it after the metrics recorder is installed, or its counters go nowhere.
    pub fn new(limits: &Limits) -> Self {
        let enabled = limits.cache_bytes_max > 0 && limits.cache_ttl_ms > 0;
        let entries = enabled.then(|| {
            moka::sync::Cache::builder()
                .max_capacity(limits.cache_bytes_max)
                .weigher(|_key: &ListKey, entry: &Arc<Entry>| entry.weight())
                // Our own clock decides freshness; moka's TTL only frees the memory.
                .time_to_live(Duration::from_millis(limits.cache_ttl_ms))
                .support_invalidation_closures()
                .build()
        });
        Self {
            entries,
            ttl_ms: i64::try_from(limits.cache_ttl_ms).unwrap_or(i64::MAX),
            entry_bytes_max: limits.cache_entry_bytes_max,
            sendfile_bytes_min: limits.cache_sendfile_bytes_min,
            files_max: limits.cache_files_max,
            writes: AtomicU64::new(0),
            insert_or_invalidate: Mutex::new(()),
            flights: Mutex::new(HashMap::new()),
            hits: metrics::counter!("afterword_read_cache_hits_total"),
            misses: metrics::counter!("afterword_read_cache_misses_total"),
        }
    }

    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// The cached response for `key` when an entry covers `seen`; `None` is a miss.
    pub fn hit(&self, key: &ListKey, seen: Option<Position>, reply: Reply, now_ms: i64) -> Option<Response> {
        let entry = self.usable(key, seen, now_ms)?;
        self.hits.increment(1);
        Some(respond(&entry, reply, Outcome::Hit))
    }

    /// Answers from the cache when an entry covers `seen`; otherwise runs `fill` (once for
    /// all concurrent misses of `key`), stores the result if it may and answers with it.
    pub async fn serve<F, Fut>(
        &self,
        key: ListKey,
        seen: Option<Position>,
        reply: Reply,
        now_ms: impl Fn() -> i64,
        fill: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Filled, ApiError>>,
    {
        if let Some(entry) = self.usable(&key, seen, now_ms()) {
            self.hits.increment(1);
            return Ok(respond(&entry, reply, Outcome::Hit));
        }
        let flight = self.join_flight(&key);
        let _filling = flight.lock.lock().await;
        // Whoever held the lock before us may have filled the entry we need.
        if let Some(entry) = self.usable(&key, seen, now_ms()) {
            self.hits.increment(1);
            return Ok(respond(&entry, reply, Outcome::Hit));
        }
        self.misses.increment(1);
        let writes_before = self.writes.load(Ordering::SeqCst);
        let filled = fill().await?;
        let cacheable = filled.tag.is_some();
        let entry = Arc::new(self.entry_from(&key, filled, now_ms()));
        if cacheable {
            self.store_if_newer(key, entry.clone(), writes_before, now_ms());
        }
        Ok(respond(&entry, reply, Outcome::Miss))
    }

    /// This server changed a thread: its cached lists are stale from now on.
    pub fn invalidate_thread(&self, site: &str, thread_key: &str) {
        let Some(entries) = &self.entries else {
            return;
        };
        let _guard = self.insert_or_invalidate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.writes.fetch_add(1, Ordering::SeqCst);
        let (site, thread_key) = (site.to_owned(), thread_key.to_owned());
        // Matches on the stored key inside the entry: requests may have named the thread by
        // an alias or a URL, which all normalise or resolve to it.
        let invalidated =
            entries.invalidate_entries_if(move |_, entry| entry.site == site && entry.thread_key == thread_key);
        if let Err(error) = invalidated {
            // Only possible if the builder lost `support_invalidation_closures`; fail safe.
            tracing::error!(%error, "cannot invalidate one thread; dropping the whole read cache");
            entries.invalidate_all();
        }
    }

    fn usable(&self, key: &ListKey, seen: Option<Position>, now_ms: i64) -> Option<Arc<Entry>> {
        let entry = self.entries.as_ref()?.get(key)?;
        entry.usable(seen, now_ms, self.ttl_ms).then_some(entry)
    }

    fn entry_from(&self, key: &ListKey, filled: Filled, now_ms: i64) -> Entry {
        let mut position_headers = HeaderMap::new();
        set_position(&mut position_headers, filled.position);
        let gzip = gzip(&filled.json);
        let (json, in_file) = self.body_bytes(filled.json);
        Entry {
            site: key.site.clone(),
            thread_key: filled.thread_key,
            tag: filled.tag.unwrap_or(filled.position),
            served_by: filled.served_by,
            built_at_ms: now_ms,
            json,
            in_file,
            gzip,
            position_headers,
        }
    }

    /// A body as the cache keeps it, and whether a large one also went to a memory file the
    /// server can `sendfile`.
    fn body_bytes(&self, json: Vec<u8>) -> (Bytes, bool) {
        let large = self.sendfile_bytes_min > 0 && json.len() >= self.sendfile_bytes_min;
        if large {
            sendfile::file_backed(json, self.files_max)
        } else {
            (Bytes::from(json), false)
        }
    }

    /// Stores `entry` unless a live entry with a newer tag is there, the body is too large,
    /// or this server wrote while the entry was being read.
    fn store_if_newer(&self, key: ListKey, entry: Arc<Entry>, writes_before: u64, now_ms: i64) {
        let Some(entries) = &self.entries else {
            return;
        };
        if entry.json.len() > self.entry_bytes_max {
            return;
        }
        let _guard = self.insert_or_invalidate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.writes.load(Ordering::SeqCst) != writes_before {
            return;
        }
        // Sets for one key run under its flight lock, so nothing slips in between get and insert.
        if let Some(current) = entries.get(&key) {
            let current_live = now_ms.saturating_sub(current.built_at_ms) < self.ttl_ms;
            if current_live && !model::cache_rule::replaces(Some(current.tag), entry.tag) {
                return;
            }
        }
        entries.insert(key, entry);
    }

    fn join_flight(&self, key: &ListKey) -> Flight<'_> {
        let mut flights = self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let lock = flights.entry(key.clone()).or_default().clone();
        Flight { cache: self, key: key.clone(), lock }
    }
}

/// A reference to one key's fill lock; the last one out removes the lock from the map, so the
/// map holds only keys being filled right now.
struct Flight<'a> {
    cache: &'a ReadCache,
    key: ListKey,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self.cache.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Clones are made only under this map lock, so the count is exact: the map's and ours.
        if Arc::strong_count(&self.lock) == 2 {
            flights.remove(&self.key);
        }
    }
}

fn gzip(json: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(json.len() / 4), flate2::Compression::default());
    encoder.write_all(json).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// The response for an entry: its bytes, and its position as header and cookie.
fn respond(entry: &Entry, reply: Reply, outcome: Outcome) -> Response {
    let (body, encoded) = match (&entry.gzip, reply.gzip) {
        (Some(compressed), AcceptsGzip(true)) => (compressed.clone(), true),
        _ => (entry.json.clone(), false),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if encoded {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(HeaderName::from_static(CACHE_HEADER), outcome.header());
    if reply.served_by {
        set_served_by(headers, entry.served_by);
    }
    // A hit's entry covers the reader's `seen`; a fill's position already accounts for a
    // genuine `seen` (the store clamps a forged one, which must not be echoed back).
    for (name, value) in &entry.position_headers {
        headers.append(name, value.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn accept_encoding_is_parsed() {
        for (header, expected) in [
            ("gzip", true),
            ("br, gzip;q=0.8", true),
            ("GZIP", true),
            ("*", true),
            ("gzip;q=0", false),
            ("gzip; q=0.0, br", false),
            ("identity", false),
            ("", false),
            ("deflate, x-gzip", true),
        ] {
            assert_eq!(accepts_gzip(header), expected, "{header}");
        }
    }
}
