//! What an import reports: the `--json` object and its text rendering.

use serde::Serialize;

/// Lines of skipped records and orphans the text summary shows; `--json` lists more (up to
/// `[import] skipped_listed_max` / `orphans_listed_max`).
const SUMMARY_LINES_MAX: usize = 20;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// `thread` or `comment`.
    pub kind: &'static str,
    pub what: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Orphan {
    pub comment: String,
    pub missing_parent: String,
}

/// What an import did. Field names are the `--json` output's.
///
/// `*_in_file`, `created`, `updated`, `unchanged`, `kept_local`, `duplicates` and `skipped`
/// count this file's records; every comment record lands in exactly one of `created`,
/// `updated`, `unchanged`, `kept_local`, `duplicates` or `skipped`. The store's figures
/// (`threads_stored`, `threads_with_comments`, `orphans`) describe everything the site holds
/// from this source after the import, which is this file's share when it is the only export
/// of that format imported into the site.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub format: &'static str,
    pub file: String,
    pub site: String,
    /// The file was gzip (recognised by its magic bytes).
    pub gzip: bool,
    /// Every thread record, including those the reader had to skip.
    pub threads_in_file: u64,
    /// Fewer than in the file when pages whose URLs normalise to one key merge.
    pub threads_stored: u64,
    pub threads_with_comments: u64,
    /// Every comment record, including those skipped.
    pub comments_in_file: u64,
    pub created: u64,
    /// Imported before and changed upstream since: text, html and state updated, `edited_at` set.
    pub updated: u64,
    /// Imported before (same source id), the same now.
    pub unchanged: u64,
    /// Imported before, then edited, deleted or moderated here: left as they are here.
    pub kept_local: u64,
    /// Records repeating an id that came earlier in the same file: the first one stays.
    pub duplicates: u64,
    pub skipped_count: u64,
    /// The first `[import] skipped_listed_max` skipped records, with their reasons.
    pub skipped: Vec<Skipped>,
    /// Replies whose parent is not in the export; they stay at the root of their thread.
    pub orphans_count: u64,
    /// The first `[import] orphans_listed_max` of them, by source id.
    pub orphans: Vec<Orphan>,
}

pub fn render(summary: &Summary) -> String {
    let gzip = if summary.gzip { ", gzip" } else { "" };
    let mut out = format!(
        "imported {} ({}{gzip}) into site {:?}\n\
         threads in file:        {}\n\
         threads stored:         {}\n\
         threads with comments:  {}\n\
         comments in file:       {}\n\
         created:                {}\n\
         updated:                {}\n\
         unchanged:              {}\n\
         kept (changed here):    {}\n\
         duplicates:             {}\n\
         skipped:                {}\n",
        summary.file,
        summary.format,
        summary.site,
        summary.threads_in_file,
        summary.threads_stored,
        summary.threads_with_comments,
        summary.comments_in_file,
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.kept_local,
        summary.duplicates,
        summary.skipped_count,
    );
    let skipped = summary.skipped.iter().map(|s| format!("{}: {}", s.what, s.reason));
    push_list(&mut out, skipped, summary.skipped_count);
    out.push_str(&format!("orphans:                {} (kept at their thread's root)\n", summary.orphans_count));
    let orphans =
        summary.orphans.iter().map(|o| format!("{}: parent {} is not in the export", o.comment, o.missing_parent));
    push_list(&mut out, orphans, summary.orphans_count);
    out
}

fn push_list(out: &mut String, lines: impl Iterator<Item = String>, total: u64) {
    let mut shown = 0;
    for line in lines.take(SUMMARY_LINES_MAX) {
        out.push_str(&format!("  {line}\n"));
        shown += 1;
    }
    if total > shown {
        out.push_str(&format!("  and {} more\n", total - shown));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_summary_caps_lists() {
        let skipped = (0..25)
            .map(|i| Skipped { kind: "comment", what: format!("post dsq:id={i}"), reason: "r".into() })
            .collect();
        let summary = Summary { skipped_count: 30, skipped, gzip: true, ..Summary::default() };
        let text = render(&summary);
        assert!(text.contains("  post dsq:id=19: r\n"), "{text}");
        assert!(!text.contains("dsq:id=20:"), "{text}");
        assert!(text.contains("  and 10 more\n"), "{text}");
        assert!(text.contains(", gzip)"), "{text}");
    }
}
