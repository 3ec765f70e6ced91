//! API configuration: limits, rate limits, sites. Deserialised from the `[limits]`,
//! `[rate_limit]` and `[[sites]]` tables of the config file; unknown keys are rejected.

use std::net::IpAddr;

use model::{FieldLimits, Moderation, QueryRule, Strategy, ThreadKeyRules, TrailingSlash};
use serde::Deserialize;

/// Every bound the API enforces, with its unit last.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub text_chars_max: usize,
    /// Imported comments may be longer than live ones (old platforms allowed more).
    pub import_text_chars_max: usize,
    pub author_chars_max: usize,
    pub email_chars_max: usize,
    pub website_chars_max: usize,
    pub title_chars_max: usize,
    pub body_bytes_max: usize,
    pub edit_window_s: i64,
    pub idempotency_key_chars_max: usize,
    pub idempotency_ttl_s: i64,
    pub page_comments_default: usize,
    pub page_comments_max: usize,
    pub counts_threads_max: usize,
    /// Threads per page of `GET /api/v1/threads` when the request names no `limit`.
    pub page_threads_default: usize,
    pub page_threads_max: usize,
    pub request_timeout_ms: u64,
    /// A connection that has not sent a whole request head this long after it began one is
    /// closed (slow-header clients would otherwise hold connections for ever).
    pub header_read_timeout_ms: u64,
    /// Open client connections at most; at the bound new ones wait in the listen backlog.
    pub connections_max: usize,
    pub position_header_bytes_max: usize,
    /// How long an anonymous thread list may be served from the read cache. Bounds how stale
    /// another server's writes can look here; this server's own writes invalidate at once.
    /// 0 turns the cache off.
    pub cache_ttl_ms: u64,
    /// Memory for the read cache: JSON and gzip bodies together. 0 turns the cache off.
    pub cache_bytes_max: u64,
    /// A thread list whose JSON is larger than this is served but not cached.
    pub cache_entry_bytes_max: usize,
    /// Cached bodies at least this large are kept in memory files and sent with `sendfile`,
    /// without a copy per request; 0 keeps every body on the heap.
    pub cache_sendfile_bytes_min: usize,
    /// At most this many such memory files at once (each holds a file descriptor); bodies
    /// cached beyond it stay on the heap.
    pub cache_files_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            text_chars_max: 10_000,
            import_text_chars_max: 100_000,
            author_chars_max: 100,
            email_chars_max: 254,
            website_chars_max: 2_048,
            title_chars_max: 300,
            body_bytes_max: 64 * 1024,
            edit_window_s: 15 * 60,
            idempotency_key_chars_max: 200,
            idempotency_ttl_s: 24 * 60 * 60,
            page_comments_default: 200,
            page_comments_max: 1_000,
            counts_threads_max: 100,
            page_threads_default: 100,
            page_threads_max: 1_000,
            request_timeout_ms: 10_000,
            header_read_timeout_ms: 30_000,
            connections_max: 10_000,
            position_header_bytes_max: 256,
            cache_ttl_ms: 10_000,
            cache_bytes_max: 64 * 1024 * 1024,
            cache_entry_bytes_max: 4 * 1024 * 1024,
            cache_sendfile_bytes_min: 16 * 1024,
            cache_files_max: 1_024,
        }
    }
}

impl Limits {
    pub fn field_limits(&self, text_chars_max: usize) -> FieldLimits {
        FieldLimits {
            text_chars_max,
            author_chars_max: self.author_chars_max,
            email_chars_max: self.email_chars_max,
            website_chars_max: self.website_chars_max,
            title_chars_max: self.title_chars_max,
        }
    }
}

/// Write rate limits (GCRA, in-process). Reads are not limited here.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub writes_per_minute_per_address: u32,
    pub writes_per_minute_per_session: u32,
    /// How many writes may come at once before the per-minute pace applies.
    pub write_burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { writes_per_minute_per_address: 60, writes_per_minute_per_session: 20, write_burst: 10 }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModerationSetting {
    #[default]
    Post,
    Pre,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrailingSlashSetting {
    #[default]
    Strip,
    Keep,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum QuerySetting {
    #[default]
    Keep,
    Drop,
}

/// One `[[sites]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub name: String,
    /// Origins allowed to call the API from a browser, e.g. `https://blog.example.org`.
    #[serde(default)]
    pub origins: Vec<String>,
    #[serde(default)]
    pub moderation: ModerationSetting,
    #[serde(default)]
    pub trailing_slash: TrailingSlashSetting,
    #[serde(default)]
    pub query: QuerySetting,
    /// Overrides `limits.text_chars_max` for this site.
    #[serde(default)]
    pub text_chars_max: Option<usize>,
}

impl SiteConfig {
    /// The site used when the config names none: the local demo on the default port.
    pub fn default_site() -> Self {
        Self {
            name: "default".into(),
            origins: vec!["http://127.0.0.1:8080".into(), "http://localhost:8080".into()],
            moderation: ModerationSetting::Post,
            trailing_slash: TrailingSlashSetting::Strip,
            query: QuerySetting::Keep,
            text_chars_max: None,
        }
    }

    pub fn thread_key_rules(&self) -> ThreadKeyRules {
        ThreadKeyRules {
            trailing_slash: match self.trailing_slash {
                TrailingSlashSetting::Strip => TrailingSlash::Strip,
                TrailingSlashSetting::Keep => TrailingSlash::Keep,
            },
            query: match self.query {
                QuerySetting::Keep => QueryRule::Keep,
                QuerySetting::Drop => QueryRule::Drop,
            },
        }
    }

    pub fn moderation(&self) -> Moderation {
        match self.moderation {
            ModerationSetting::Post => Moderation::Post,
            ModerationSetting::Pre => Moderation::Pre,
        }
    }
}

/// Everything `router` needs to know besides the store.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub limits: Limits,
    pub rate_limits: RateLimits,
    /// At least one; the first is used when a request names no site.
    pub sites: Vec<SiteConfig>,
    /// Bearer token for admin actions; `None` disables them.
    pub admin_token: Option<String>,
    /// Peers whose `X-Forwarded-For` is believed (the load balancer).
    pub trusted_proxies: Vec<IpAddr>,
    /// How reads are routed among replicas (DESIGN "Consistency").
    pub read_strategy: Strategy,
    /// Honour the `Afterword-Read-Strategy` request header and answer `Afterword-Served-By`
    /// (for `afterword check` and tests; never the default).
    pub allow_strategy_override: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            rate_limits: RateLimits::default(),
            sites: vec![SiteConfig::default_site()],
            admin_token: None,
            trusted_proxies: Vec::new(),
            read_strategy: Strategy::Causal,
            allow_strategy_override: false,
        }
    }
}
