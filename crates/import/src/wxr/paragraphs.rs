//! WordPress keeps a comment's paragraphs as blank lines and its line breaks as newlines, and
//! adds `<p>`/`<br>` only when it displays them (`wpautop`). Afterword stores HTML, so the
//! importer makes them explicit — conservatively, for comments that are plain text.

/// Tags that mark a comment as already structured HTML, which is then left exactly as written:
/// guessing paragraphs around blocks (WordPress's own `wpautop` is 200 lines of regexes) would
/// put stray breaks into lists and tables.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// The rule: text with no line break, or with any block-level tag, is returned unchanged.
/// Otherwise each run of blank lines separates a `<p>` paragraph and a single line break
/// inside a paragraph becomes `<br />`, as WordPress shows it.
pub fn explicit_paragraphs(text: &str) -> String {
    if !text.contains('\n') || has_block_tag(text) {
        return text.to_owned();
    }
    let text = text.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len() + 32);
    let mut paragraph: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            push_paragraph(&mut out, &paragraph);
            paragraph.clear();
        } else {
            paragraph.push(line.trim_end());
        }
    }
    push_paragraph(&mut out, &paragraph);
    out
}

fn push_paragraph(out: &mut String, lines: &[&str]) {
    if lines.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str("<p>");
    out.push_str(&lines.join("<br />\n"));
    out.push_str("</p>");
}

/// Whether `<tag` or `</tag` for a block tag appears, in any case, followed by a tag boundary.
fn has_block_tag(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find('<') {
        let start = from + offset + 1;
        let name_start = if bytes.get(start) == Some(&b'/') { start + 1 } else { start };
        let name_end =
            bytes[name_start..].iter().position(|b| !b.is_ascii_alphanumeric()).map_or(bytes.len(), |n| name_start + n);
        let name = &text[name_start..name_end];
        if BLOCK_TAGS.iter().any(|tag| tag.eq_ignore_ascii_case(name)) {
            return true;
        }
        from = start;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::explicit_paragraphs;

    #[test]
    fn plain_text_gets_paragraphs_and_breaks() {
        let cases = [
            ("Erster!1", "Erster!1"),
            (
                "When you have a comment with multiple lines:\nWordPress exports it like this.",
                "<p>When you have a comment with multiple lines:<br />\nWordPress exports it like this.</p>",
            ),
            ("one\n\ntwo\r\n\r\n\r\nthree\n", "<p>one</p>\n<p>two</p>\n<p>three</p>"),
            ("<b>bold</b>\n\n<i>it</i>", "<p><b>bold</b></p>\n<p><i>it</i></p>"),
        ];
        for (text, expected) in cases {
            assert_eq!(explicit_paragraphs(text), expected, "{text:?}");
        }
    }

    #[test]
    fn structured_html_is_left_alone() {
        for text in ["<h1>Header</h1>\n<p>x</p>", "a\n<UL>\n<li>b</li></UL>", "x<br>\ny", "<pre>a\n\nb</pre>"] {
            assert_eq!(explicit_paragraphs(text), text);
        }
        // Inline tags and things that only look like tags do not count.
        assert_eq!(explicit_paragraphs("a <pa>\nb"), "<p>a <pa><br />\nb</p>");
        assert_eq!(explicit_paragraphs("1 < 2\nok <"), "<p>1 < 2<br />\nok <</p>");
    }
}
