//! A place in a site's list of threads, and its wire form: the `next` a page of
//! `GET /api/v1/threads` hands out and the `after` the client sends back.
//!
//! The list is ordered by the time of each thread's newest published comment, newest first,
//! threads without one last, ties broken by key (byte order). A cursor names the last thread a
//! page showed by that sort key, not by an offset, so threads commented on between two pages
//! move without making the next page skip or repeat the others.
//!
//! Wire form: `v1.<newest published comment, Unix ms, or "-">.<base64url(key)>`. Clients treat
//! it as opaque; the version lets the order change later without misreading old cursors.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The last thread a page showed; the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCursor {
    /// When the thread's newest published comment was made, in Unix milliseconds; `None` for a
    /// thread without one.
    pub last_comment_ms: Option<i64>,
    /// The thread's key, as stored.
    pub key: String,
}

/// Stands for "no published comment" in the wire form.
const NO_COMMENT: &str = "-";

impl ThreadCursor {
    /// Parses a wire cursor; `None` when it is malformed or of an unknown version.
    pub fn parse(text: &str) -> Option<ThreadCursor> {
        let mut parts = text.trim().split('.');
        let (version, last, key) = (parts.next()?, parts.next()?, parts.next()?);
        if version != "v1" || parts.next().is_some() {
            return None;
        }
        let last_comment_ms = match last {
            NO_COMMENT => None,
            digits => Some(digits.parse::<i64>().ok()?),
        };
        let key = String::from_utf8(URL_SAFE_NO_PAD.decode(key).ok()?).ok()?;
        Some(ThreadCursor { last_comment_ms, key })
    }
}

impl fmt::Display for ThreadCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = URL_SAFE_NO_PAD.encode(self.key.as_bytes());
        match self.last_comment_ms {
            Some(ms) => write!(f, "v1.{ms}.{key}"),
            None => write!(f, "v1.{NO_COMMENT}.{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(last_comment_ms: Option<i64>, key: &str) -> ThreadCursor {
        ThreadCursor { last_comment_ms, key: key.to_owned() }
    }

    #[test]
    fn round_trips() {
        let cases = [
            cursor(Some(1_800_000_000_123), "/blog/post?id=1#x"),
            cursor(Some(-5), "https://example.org/ünïcode/"),
            cursor(None, "/no-comments"),
            cursor(None, ""),
        ];
        for case in cases {
            let wire = case.to_string();
            assert!(wire.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "URL-safe: {wire}");
            assert_eq!(ThreadCursor::parse(&wire), Some(case), "{wire}");
        }
        assert_eq!(cursor(Some(7), "/a").to_string(), "v1.7.L2E");
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let bad = [
            "",
            "v1",
            "v1.7",
            "v2.7.L2E",
            "v1.x.L2E",
            "v1.7.L2E.x",
            "v1.7.***",
            "v1..L2E",
            "v1.7.L2E=",
            "v1.7./w",
            "💥",
        ];
        for text in bad {
            assert_eq!(ThreadCursor::parse(text), None, "{text}");
        }
        // Valid base64 of bytes that are not UTF-8.
        assert_eq!(ThreadCursor::parse("v1.7._w"), None);
    }
}
