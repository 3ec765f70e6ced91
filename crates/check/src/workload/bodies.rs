//! Comment bodies: real Markdown from a reddit JSON-lines export when the file is there
//! (`../shared/data/reddit_thread_n49rw_comments.jsonl`), synthetic sentences otherwise.

use std::path::Path;

use rand::Rng;

use crate::error::CheckError;

/// At most this many bodies are kept from the file.
pub const BODIES_MAX: usize = 2_000;
/// Longer bodies are cut (on a character boundary) so every POST stays well under the limit.
pub const BODY_CHARS_MAX: usize = 1_500;

#[derive(Debug, Clone)]
pub struct Bodies {
    texts: Vec<String>,
    pub source: String,
}

impl Bodies {
    /// The bodies of `path` when it exists; synthetic ones when it does not.
    pub fn load(path: Option<&Path>) -> Result<Bodies, CheckError> {
        let Some(path) = path.filter(|p| p.is_file()) else {
            return Ok(Bodies::synthetic());
        };
        let text = std::fs::read_to_string(path).map_err(|e| CheckError::io("read", path, e))?;
        let texts = parse_lines(&text);
        if texts.is_empty() {
            return Ok(Bodies::synthetic());
        }
        Ok(Bodies { texts, source: path.display().to_string() })
    }

    pub fn synthetic() -> Bodies {
        let words = ["replication", "lag", "is", "why", "my", "comment", "vanished", "again", "today", "really"];
        let texts = (0..64)
            .map(|n| (0..8).map(|i| words[(n * 7 + i * 3) % words.len()]).collect::<Vec<_>>().join(" "))
            .collect();
        Bodies { texts, source: "synthetic".to_owned() }
    }

    pub fn pick(&self, rng: &mut impl Rng) -> &str {
        match self.texts.len() {
            0 => "a comment",
            n => &self.texts[rng.random_range(0..n)],
        }
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// The `body` of each comment line that has a real one (not `[deleted]`/`[removed]`).
fn parse_lines(text: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for line in text.lines() {
        if texts.len() >= BODIES_MAX {
            break;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let Some(body) = value.get("body").and_then(|b| b.as_str()).map(str::trim) else { continue };
        if body.is_empty() || body == "[deleted]" || body == "[removed]" {
            continue;
        }
        texts.push(body.chars().take(BODY_CHARS_MAX).collect());
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_real_bodies_only() {
        let text = "{\"kind\":\"t3\",\"selftext\":\"post\"}\n{\"body\":\"[deleted]\"}\nnot json\n{\"body\":\" hi **there** \"}\n";
        assert_eq!(parse_lines(text), vec!["hi **there**".to_owned()]);
    }

    #[test]
    fn a_missing_file_gives_synthetic_bodies() {
        let bodies = Bodies::load(Some(Path::new("/nonexistent/file.jsonl"))).expect("synthetic");
        assert_eq!(bodies.source, "synthetic");
        assert!(!bodies.is_empty());
    }
}
