//! Comment text formats and rendering to safe HTML.
//!
//! Live comments are Markdown (pulldown-cmark); imported ones are often HTML. Both end in the
//! same ammonia allow-list, so what reaches a page is the same whatever the source.
//!
//! Allow-list: `p br hr em strong b i u s del code pre blockquote ul ol li a img h1..h6 table thead tbody
//! tr th td sup sub`. Attributes: `a[href]` (schemes http, https, mailto; every link gets
//! `rel="nofollow ugc noopener"`; relative URLs are dropped), `img[src alt title]` (http, https), `code[class]` for
//! language hints, `th/td[align]`. Everything else — script, style, iframe, svg, event handlers,
//! `javascript:`/`data:` URLs — is removed.

use std::collections::HashSet;
use std::sync::OnceLock;

use ammonia::Builder;
use pulldown_cmark::{html, Options, Parser};
use serde::{Deserialize, Serialize};

/// How a comment's raw text is written: live comments are Markdown, imported ones often HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    Markdown,
    Html,
}

impl TextFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TextFormat::Markdown => "markdown",
            TextFormat::Html => "html",
        }
    }

    pub fn parse(text: &str) -> Option<TextFormat> {
        match text {
            "markdown" => Some(TextFormat::Markdown),
            "html" => Some(TextFormat::Html),
            _ => None,
        }
    }
}

const LINK_REL: &str = "nofollow ugc noopener";

fn sanitizer() -> &'static Builder<'static> {
    static SANITIZER: OnceLock<Builder<'static>> = OnceLock::new();
    SANITIZER.get_or_init(|| {
        let tags: HashSet<&str> = [
            "p",
            "br",
            "hr",
            "em",
            "strong",
            "b",
            "i",
            "u",
            "s",
            "del",
            "code",
            "pre",
            "blockquote",
            "ul",
            "ol",
            "li",
            "a",
            "img",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
            "sup",
            "sub",
        ]
        .into_iter()
        .collect();
        let mut builder = Builder::default();
        builder
            .tags(tags)
            .clean_content_tags(["script", "style"].into_iter().collect())
            .generic_attributes(HashSet::new())
            .tag_attributes(
                [
                    ("a", ["href"].into_iter().collect()),
                    ("img", ["src", "alt", "title"].into_iter().collect()),
                    ("code", ["class"].into_iter().collect()),
                    ("th", ["align"].into_iter().collect()),
                    ("td", ["align"].into_iter().collect()),
                ]
                .into_iter()
                .collect(),
            )
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            // Relative URLs would resolve against the embedding page, not anything we know.
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some(LINK_REL));
        builder
    })
}

/// Renders raw comment text to HTML that is safe to put into any page.
pub fn render_html(text: &str, format: TextFormat) -> String {
    match format {
        TextFormat::Markdown => {
            let mut unsafe_html = String::with_capacity(text.len() + text.len() / 4);
            let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
            html::push_html(&mut unsafe_html, Parser::new_ext(text, options));
            sanitizer().clean(&unsafe_html).to_string()
        }
        TextFormat::Html => sanitizer().clean(text).to_string(),
    }
}

/// Whether rendered HTML shows a reader anything: text outside tags, an image or a rule.
pub fn has_visible_content(html: &str) -> bool {
    let mut in_tag = false;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                if rest.starts_with("<img") || rest.starts_with("<hr") {
                    return true;
                }
                in_tag = true;
            }
            '>' => in_tag = false,
            c if !in_tag && !c.is_whitespace() => return true,
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(text: &str) -> String {
        render_html(text, TextFormat::Markdown)
    }

    #[test]
    fn markdown_renders_common_syntax() {
        assert_eq!(md("**bold** _it_"), "<p><strong>bold</strong> <em>it</em></p>\n");
        assert_eq!(md("> quote"), "<blockquote>\n<p>quote</p>\n</blockquote>\n");
        assert_eq!(md("`x<y`"), "<p><code>x&lt;y</code></p>\n");
    }

    #[test]
    fn links_get_rel_and_bad_schemes_are_dropped() {
        assert_eq!(
            md("[a](https://example.org/)"),
            "<p><a href=\"https://example.org/\" rel=\"nofollow ugc noopener\">a</a></p>\n"
        );
        assert_eq!(md("[a](javascript:alert(1))"), "<p><a rel=\"nofollow ugc noopener\">a</a></p>\n");
        let data = md("[a](data:text/html;base64,PHNjcmlwdD4=)");
        assert!(!data.contains("data:"), "{data}");
    }

    #[test]
    fn scripts_handlers_svg_and_style_are_removed() {
        let payloads = [
            "<script>alert(1)</script>hi",
            "<img src=x onerror=alert(1)>",
            "<svg onload=alert(1)><circle/></svg>",
            "<style>body{display:none}</style>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<p style=\"background:url(javascript:alert(1))\">x</p>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<a href=\"  JaVaScRiPt:alert(1)\">x</a>",
        ];
        for payload in payloads {
            for format in [TextFormat::Markdown, TextFormat::Html] {
                let out = render_html(payload, format).to_lowercase();
                for needle in
                    ["<script", "onerror", "onload", "<svg", "<style", "javascript:", "style=", "<iframe", "alert(1)</"]
                {
                    assert!(!out.contains(needle), "{payload:?} ({format:?}) -> {out:?}");
                }
            }
        }
    }

    #[test]
    fn imported_html_keeps_structure() {
        let html = render_html("<p>前来围观 <b>x</b></p><ul><li>a</li></ul>", TextFormat::Html);
        assert_eq!(html, "<p>前来围观 <b>x</b></p><ul><li>a</li></ul>");
    }
}
