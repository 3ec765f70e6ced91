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

/// Text must hold something besides whitespace and stay within the limit; it is kept byte for
/// byte (no trimming), because its author may edit it later and expects their own text back.
pub fn check_text(text: &str, chars_max: usize) -> Result<(), FieldError> {
    if text.trim().is_empty() {
        return Err(FieldError::new("text", "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > chars_max {
        return Err(FieldError::new("text", format!("must be at most {chars_max} characters (got {chars})")));
    }
    Ok(())
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
    trimmed_optional(value, "author", limits.author_chars_max)
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
