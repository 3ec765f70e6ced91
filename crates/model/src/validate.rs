//! Input rules for comment fields. Each failure names the field and the rule it broke.

use url::Url;

/// A field that broke a rule; becomes a 4xx naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    pub field: &'static str,
    pub rule: String,
}

impl FieldError {
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self { field, rule: rule.into() }
    }
}

/// Length limits for comment fields; `text_chars_max` differs for live comments and imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    pub text_chars_max: usize,
    pub author_chars_max: usize,
    pub email_chars_max: usize,
    pub website_chars_max: usize,
    pub title_chars_max: usize,
}

impl Default for FieldLimits {
    fn default() -> Self {
        Self {
            text_chars_max: 10_000,
            author_chars_max: 100,
            email_chars_max: 254,
            website_chars_max: 2_048,
            title_chars_max: 300,
        }
    }
}

/// Quotes and lists nested deeper than this are refused: Markdown renderers take time and
/// output that grow with the square of the depth.
pub const TEXT_NESTING_MAX: usize = 32;

/// Text must hold something besides whitespace and stay within the limit; it is kept byte for
/// byte (no trimming), because its author may edit it later and expects their own text back.
pub fn check_text(text: &str, chars_max: usize) -> Result<(), FieldError> {
    if text.trim().is_empty() {
        return Err(FieldError::new("text", "must not be empty"));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(FieldError::new("text", "must not contain control characters (other than tab and newline)"));
    }
    if text.lines().any(|line| nesting_depth(line) > TEXT_NESTING_MAX) {
        return Err(FieldError::new(
            "text",
            format!("must not nest quotes or lists deeper than {TEXT_NESTING_MAX} levels"),
        ));
    }
    let chars = text.chars().count();
    if chars > chars_max {
        return Err(FieldError::new("text", format!("must be at most {chars_max} characters (got {chars})")));
    }
    Ok(())
}

/// How many quote/list containers a Markdown line opens at its start (`> > - text` is 3).
fn nesting_depth(line: &str) -> usize {
    let mut depth = 0;
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        match chars.next() {
            Some('>') => depth += 1,
            Some('-' | '*' | '+') if chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') => depth += 1,
            _ => return depth,
        }
    }
}

/// Characters that change reading direction or are invisible: they let one name pose as another.
fn is_spoofing_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn trimmed_optional(value: Option<&str>, field: &'static str, chars_max: usize) -> Result<Option<String>, FieldError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let chars = value.chars().count();
    if chars > chars_max {
        return Err(FieldError::new(field, format!("must be at most {chars_max} characters (got {chars})")));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(Some(value.to_owned()))
}

/// Display name: trimmed, empty means anonymous.
pub fn normalize_author(value: Option<&str>, limits: &FieldLimits) -> Result<Option<String>, FieldError> {
    let author = trimmed_optional(value, "author", limits.author_chars_max)?;
    if author.as_deref().is_some_and(|a| a.chars().any(is_spoofing_char)) {
        return Err(FieldError::new("author", "must not contain invisible or direction-changing characters"));
    }
    Ok(author)
}

/// Page title offered with a thread's first comment.
pub fn normalize_title(value: Option<&str>, limits: &FieldLimits) -> Result<Option<String>, FieldError> {
    trimmed_optional(value, "title", limits.title_chars_max)
}

/// E-mail: stored for notifications, never returned. A loose shape check only.
pub fn normalize_email(value: Option<&str>, limits: &FieldLimits) -> Result<Option<String>, FieldError> {
    let email = trimmed_optional(value, "email", limits.email_chars_max)?;
    if let Some(email) = &email {
        let shape_ok = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if !shape_ok || email.contains(char::is_whitespace) {
            return Err(FieldError::new("email", "must look like name@domain"));
        }
    }
    Ok(email)
}

/// Website: an absolute http(s) URL, stored in its serialised (escaped) form so it can be
/// emitted as an attribute value safely.
pub fn normalize_website(value: Option<&str>, limits: &FieldLimits) -> Result<Option<String>, FieldError> {
    let Some(raw) = trimmed_optional(value, "website", limits.website_chars_max)? else {
        return Ok(None);
    };
    let url = Url::parse(&raw).map_err(|_| FieldError::new("website", "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FieldError::new("website", "must be an absolute http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldError::new("website", "must not contain a user name or password"));
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(check_text("hi", 10).is_ok());
        assert_eq!(check_text(" \n\t", 10).unwrap_err().rule, "must not be empty");
        assert!(check_text(&"é".repeat(10), 10).is_ok());
        assert_eq!(check_text(&"é".repeat(11), 10).unwrap_err().rule, "must be at most 10 characters (got 11)");
    }

    #[test]
    fn controls_nesting_and_spoofing_are_refused() {
        assert_eq!(check_text("a\u{0}b", 100).unwrap_err().field, "text");
        assert_eq!(check_text("a\u{1b}[31m", 100).unwrap_err().field, "text");
        assert!(check_text("tab\there\r\nnext", 100).is_ok());
        assert!(check_text(&">".repeat(32), 100).is_ok());
        assert!(check_text(&">".repeat(33), 100).is_err());
        assert!(check_text(&"- ".repeat(33), 100).is_err());
        assert!(check_text("-----", 100).is_ok(), "a rule is not a list");
        let limits = FieldLimits::default();
        assert_eq!(normalize_author(Some("ad\u{202E}nimda"), &limits).unwrap_err().field, "author");
        assert_eq!(normalize_author(Some("a\u{200B}b"), &limits).unwrap_err().field, "author");
        assert_eq!(normalize_website(Some("http://u:p@ex.org/"), &limits).unwrap_err().field, "website");
    }

    #[test]
    fn author_email_website() {
        let limits = FieldLimits::default();
        assert_eq!(normalize_author(Some("  Ann "), &limits), Ok(Some("Ann".into())));
        assert_eq!(normalize_author(Some("   "), &limits), Ok(None));
        assert_eq!(normalize_author(Some(&"x".repeat(101)), &limits).unwrap_err().field, "author");
        assert_eq!(normalize_email(Some("a@b.c"), &limits), Ok(Some("a@b.c".into())));
        assert_eq!(normalize_email(Some("nope"), &limits).unwrap_err().field, "email");
        assert_eq!(normalize_email(Some(&format!("{}@b.c", "x".repeat(260))), &limits).unwrap_err().field, "email");
        assert_eq!(normalize_website(Some("https://ex.org/a b"), &limits), Ok(Some("https://ex.org/a%20b".into())));
        for bad in ["javascript:alert(1)", "data:text/html,x", "ftp://ex.org", "/relative", "https://"] {
            assert_eq!(normalize_website(Some(bad), &limits).unwrap_err().field, "website", "{bad}");
        }
        assert_eq!(
            normalize_website(Some("https://ex.org/\"><script>"), &limits),
            Ok(Some("https://ex.org/%22%3E%3Cscript%3E".into()))
        );
    }
}
