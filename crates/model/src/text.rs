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

/// Whether rendered HTML shows a reader anything: a visible character outside tags (entities
/// count for what they stand for: `&nbsp;` is blank), an image with a source, or a rule.
/// Written for `render_html`'s output, whose serialiser escapes text only as `&amp;`, `&lt;`,
/// `&gt;`, `&quot;` and `&nbsp;` and decodes every other reference into the character itself.
pub fn has_visible_content(html: &str) -> bool {
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let tag_len = rest.find('>').map_or(rest.len(), |end| end + 1);
                if is_visible_element(&rest[..tag_len]) {
                    return true;
                }
                rest = &rest[tag_len..];
                continue;
            }
            '&' => match rest.strip_prefix("&nbsp;") {
                Some(after) => {
                    rest = after;
                    continue;
                }
                None => return true,
            },
            c if !c.is_whitespace() && !is_invisible(c) => return true,
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    false
}

/// A rule, or an image that has somewhere to load from (the sanitiser drops unsafe sources,
/// leaving a bare `<img>` that shows nothing).
fn is_visible_element(tag: &str) -> bool {
    if tag.starts_with("<hr") {
        return true;
    }
    tag.starts_with("<img") && tag.split_once(" src=\"").is_some_and(|(_, value)| !value.starts_with('"'))
}

/// Characters that take no room on screen and are not whitespace to `char::is_whitespace`:
/// format characters (zero-width spaces and joiners, direction marks and isolates, word
/// joiners, invisible operators, the byte-order mark, interlinear annotation marks, tag
/// characters, shorthand format controls, musical formatting), variation selectors, soft
/// hyphens and blank fillers. A comment made only of them looks like an empty comment.
/// Private-use characters are not among them: fonts draw them.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
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
