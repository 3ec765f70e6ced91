//! Sites: which origins may embed comments, how a page URL becomes a thread key, moderation.

use url::Url;

use crate::validate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Moderation {
    /// Comments are published at once.
    #[default]
    Post,
    /// Comments wait for an admin (their author still sees them).
    Pre,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrailingSlash {
    /// `/about/` and `/about` are one page.
    #[default]
    Strip,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryRule {
    /// `?p=198` names a different page (WordPress permalinks do this); parameters are sorted.
    #[default]
    Keep,
    Drop,
}

/// How a page URL or path becomes a thread key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadKeyRules {
    pub trailing_slash: TrailingSlash,
    pub query: QueryRule,
}

pub const THREAD_KEY_CHARS_MAX: usize = 2_048;

/// Turns what a page sends (`https://host/path?q#frag`, `/path`, or an opaque id) into the
/// key its comments are stored under. Scheme, host and fragment are dropped: one site's
/// pages are the same thread over http and https, and on `www.` or not.
pub fn normalize_thread_key(input: &str, rules: &ThreadKeyRules) -> Result<String, FieldError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(FieldError::new("thread", "must not be empty"));
    }
    if input.chars().count() > THREAD_KEY_CHARS_MAX {
        return Err(FieldError::new("thread", format!("must be at most {THREAD_KEY_CHARS_MAX} characters")));
    }
    if input.chars().any(char::is_control) {
        return Err(FieldError::new("thread", "must not contain control characters"));
    }
    let lower = input.to_ascii_lowercase();
    if ["javascript:", "data:", "vbscript:"].iter().any(|scheme| lower.starts_with(scheme)) {
        return Err(FieldError::new("thread", "must be a page path, an http(s) URL or an identifier"));
    }
    let url = if lower.starts_with("http://") || lower.starts_with("https://") {
        Url::parse(input).map_err(|_| FieldError::new("thread", "is not a valid URL"))?
    } else if input.starts_with("//") {
        // A scheme-relative URL (`//host/path`).
        Url::parse(&format!("http:{input}")).map_err(|_| FieldError::new("thread", "is not a valid URL"))?
    } else if input.starts_with('/') && !input.starts_with("//") {
        // Resolving against a placeholder base normalises `.`/`..` segments and encoding the
        // same way a browser does for the page's own URL.
        let base =
            Url::parse("http://afterword.invalid/").map_err(|_| FieldError::new("thread", "is not a valid path"))?;
        base.join(input).map_err(|_| FieldError::new("thread", "is not a valid path"))?
    } else {
        // An opaque identifier (e.g. a CMS post id) is kept as given.
        return Ok(input.to_owned());
    };
    Ok(path_key(&decoded_path(url.path()), url.query(), rules))
}

/// `/caf%C3%A9` and `/café` are one page: percent-escapes are decoded where that is
/// unambiguous (valid UTF-8, and no escaped `/`, `?`, `#` or `%`) and harmless (no control,
/// invisible or text-direction characters, which stay escaped).
fn decoded_path(path: &str) -> String {
    match percent_encoding::percent_decode_str(path).decode_utf8() {
        Ok(decoded)
            if !decoded.contains(['?', '#', '%'])
                && !decoded.chars().any(is_hidden_char)
                && decoded.matches('/').count() == path.matches('/').count() =>
        {
            decoded.into_owned()
        }
        _ => path.to_owned(),
    }
}

/// Characters a key must not carry unescaped: controls, zero-width and bidi formatting.
fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn path_key(path: &str, query: Option<&str>, rules: &ThreadKeyRules) -> String {
    let mut key = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
    if rules.trailing_slash == TrailingSlash::Strip {
        while key.len() > 1 && key.ends_with('/') {
            key.pop();
        }
    }
    if rules.query == QueryRule::Keep {
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
            // By name only, and stable: repeated parameters keep their order (`a=1&a=0`).
            pairs.sort_by_key(|pair| pair.split_once('=').map_or(*pair, |(name, _)| name));
            if !pairs.is_empty() {
                key.push('?');
                key.push_str(&pairs.join("&"));
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(input: &str) -> String {
        normalize_thread_key(input, &ThreadKeyRules::default()).unwrap()
    }

    #[test]
    fn urls_and_paths_meet_on_one_key() {
        let expected = "/blog/baoyan-experiences-share.html";
        for input in [
            "http://www.tanglei.name/blog/baoyan-experiences-share.html",
            "https://tanglei.name/blog/baoyan-experiences-share.html#comments",
            "/blog/baoyan-experiences-share.html",
            "/blog/baoyan-experiences-share.html/",
        ] {
            assert_eq!(key(input), expected, "{input}");
        }
        assert_eq!(key("http://x.org/about/"), "/about");
        assert_eq!(key("http://x.org/"), "/");
        assert_eq!(key("http://x.org"), "/");
        assert_eq!(key("http://x.org/?p=198&b=1"), "/?b=1&p=198");
        assert_eq!(key("/?p=198#c"), "/?p=198");
        assert_eq!(key("post-42"), "post-42");
        assert_eq!(key("/a/./b/../c"), "/a/c");
        assert_eq!(key("/pat1010%e2%80%94radix"), "/pat1010—radix");
        assert_eq!(key("/pat1010%E2%80%94radix"), "/pat1010—radix");
        assert_eq!(key("/pat1010—radix"), "/pat1010—radix");
        assert_eq!(key("http://x.org/caf%C3%A9/"), "/café");
        assert_eq!(key("/%6Eorm"), "/norm");
        assert_eq!(key("//x.org/norm/"), "/norm");
        assert_eq!(key("/a%2Fb"), "/a%2Fb", "an escaped slash stays escaped");
        assert_eq!(key("/?a=1&a=0&0=z"), "/?0=z&a=1&a=0");
    }

    #[test]
    fn rules_can_keep_slashes_and_drop_queries() {
        let rules = ThreadKeyRules { trailing_slash: TrailingSlash::Keep, query: QueryRule::Drop };
        assert_eq!(normalize_thread_key("http://x.org/about/?utm=1", &rules).unwrap(), "/about/");
    }

    #[test]
    fn bad_keys_name_the_field() {
        for bad in ["", "  ", "a\u{0}b", "javascript:alert(1)", "DATA:text/html,x"] {
            assert_eq!(normalize_thread_key(bad, &ThreadKeyRules::default()).unwrap_err().field, "thread");
        }
        // Escaped controls and text-direction marks stay escaped, never decoded into the key.
        for (escaped, key) in [("/%00", "/%00"), ("/a%0d%0ab", "/a%0d%0ab"), ("/%E2%80%AEx", "/%E2%80%AEx")] {
            assert_eq!(normalize_thread_key(escaped, &ThreadKeyRules::default()).unwrap(), key);
        }
        let long = "x".repeat(THREAD_KEY_CHARS_MAX + 1);
        assert!(normalize_thread_key(&long, &ThreadKeyRules::default()).is_err());
    }
}
