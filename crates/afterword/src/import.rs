//! `afterword import`: streams an export file into the store in bounded batches and reports
//! what was created, what was already there, and what was skipped and why.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use api::SiteConfig;
use chrono::Utc;
use import::{CommentRecord, DisqusReader, ImportError, ImportedState, Record, ThreadRecord};
use indicatif::{ProgressBar, ProgressStyle};
use model::site::normalize_thread_key;
use model::validate::normalize_title;
use model::{compose, CommentId, CommentState, Draft, FieldLimits, IdError, IdGenerator};
use serde::Serialize;
use store::{ImportBatch, ImportComment, ImportCommentOutcome, ImportReport, ImportThread, SqliteStore, Store};
use tokio::runtime::Runtime;

use crate::config::Config;

/// Node id reserved for offline imports, so an import beside a running server (node 0) never
/// makes an id the server also makes.
const IMPORT_NODE_ID: u16 = 1023;
/// How many times an id is asked for before giving up (each retry waits a millisecond or two).
const ID_ATTEMPTS_MAX: u32 = 1_000;
/// A clock this far behind the newest stored id is waited out; further behind is an error.
const CLOCK_BEHIND_WAIT_MS_MAX: i64 = 2_000;
/// Lines of skipped records and orphans the text summary shows; `--json` lists them all.
const SUMMARY_LINES_MAX: usize = 20;
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Export formats `import` reads. Each names its source, so re-imports match by source id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// Disqus XML export (`<disqus>` with `<thread>` and `<post>` elements).
    Disqus,
}

type Records = Box<dyn Iterator<Item = Result<Record, ImportError>>>;

impl ImportFormat {
    /// The name imported rows are tagged with; source ids are unique per (site, source).
    fn source(self) -> &'static str {
        match self {
            ImportFormat::Disqus => "disqus",
        }
    }

    fn records(self, input: Box<dyn BufRead>) -> Records {
        match self {
            ImportFormat::Disqus => Box::new(DisqusReader::new(input)),
        }
    }

    /// Names a comment the way the format's reader names records in `Skipped`.
    fn describe_comment(self, source_id: &str) -> String {
        match self {
            ImportFormat::Disqus => format!("post dsq:id={source_id}"),
        }
    }

    fn describe_thread(self, source_id: &str) -> String {
        match self {
            ImportFormat::Disqus => format!("thread dsq:id={source_id}"),
        }
    }

    /// Whether a record the reader skipped was a thread (else it was a comment).
    fn skipped_is_thread(self, what: &str) -> bool {
        match self {
            ImportFormat::Disqus => what.starts_with("thread"),
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Records are written in batches of `[import] batch_rows_max` (default 5000), one transaction \
each. A problem with one record (unreadable, failing a field rule, pointing at a thread that \
is not in the export) skips that record, is reported with its reason, and the import goes on; \
it still exits 0. A fatal error (a file that cannot be parsed any further, a disk error) stops \
the import with a message naming the line and exits non-zero: batches already written stay, \
because they are valid, and importing the same file again is idempotent by source id (what is \
stored is reported as unchanged, the rest is added).")]
pub struct ImportArgs {
    /// The export's format.
    #[arg(long, value_enum)]
    pub format: ImportFormat,
    /// The export file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The site to import into [default: the first configured site].
    #[arg(long, value_name = "SITE")]
    pub site: Option<String>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
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
/// `*_in_file`, `created`, `unchanged` and `skipped` count this file's records. The store's
/// figures (`threads_stored`, `threads_with_comments`, `orphans`) describe everything the site
/// holds from this source after the import, which is this file's share when it is the only
/// export of that format imported into the site.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub format: &'static str,
    pub file: String,
    pub site: String,
    /// Every thread record, including those the reader had to skip.
    pub threads_in_file: u64,
    /// Fewer than in the file when pages whose URLs normalise to one key merge.
    pub threads_stored: u64,
    pub threads_with_comments: u64,
    /// Every comment record, including those the reader had to skip.
    pub comments_in_file: u64,
    pub created: u64,
    /// Already imported before (same source id).
    pub unchanged: u64,
    pub skipped_count: u64,
    pub skipped: Vec<Skipped>,
    /// Replies whose parent is not in the export; they stay at the root of their thread.
    pub orphans_count: u64,
    pub orphans: Vec<Orphan>,
}

pub fn run(runtime: &Runtime, config: &Config, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let site = config.site(args.site.as_deref())?;
    let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let file_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let store = runtime.block_on(crate::open_store(config))?;
    let mut ids = IdGenerator::new(IMPORT_NODE_ID).context("the import node id is out of range")?;
    let last = runtime.block_on(store.comment_id_max()).context("cannot read the highest comment id")?;
    if let Some(last) = last {
        ids.resume_after(last);
    }
    let bar = progress_bar(file_bytes);
    let input: Box<dyn BufRead> = Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, bar.wrap_read(file)));
    let mut importer = Importer::new(args.format, &site, config, ids, &args.file);
    let streamed = importer.stream(runtime, &store, args.format.records(input), &bar);
    bar.finish_and_clear();
    let linked = runtime.block_on(store.import_link_parents(&site.name, args.format.source()));
    if let Err(fatal) = streamed {
        if let Err(error) = linked {
            tracing::warn!("could not link the replies written so far to their parents: {error}");
        }
        return Err(anyhow::anyhow!("{fatal:#}\n{}", importer.partial_note()));
    }
    let report = linked.context("cannot link imported replies to their parents")?.value;
    let summary = importer.finish(report);
    let text = if args.json {
        let mut json = serde_json::to_string(&summary).context("cannot serialise the summary")?;
        json.push('\n');
        json
    } else {
        render_summary(&summary)
    };
    std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write the summary to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// A byte-count progress bar on stderr, only when a person is watching it.
fn progress_bar(total_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Turns records into batches and writes them; keeps the tallies for the summary.
struct Importer {
    format: ImportFormat,
    site: String,
    rules: model::ThreadKeyRules,
    field_limits: FieldLimits,
    ids: IdGenerator,
    /// Each thread's key by source id, for the comments that follow it.
    thread_keys: HashMap<String, String>,
    batch: ImportBatch,
    batch_rows_max: usize,
    batches_written: u64,
    records_written: u64,
    summary: Summary,
}

impl Importer {
    fn new(format: ImportFormat, site: &SiteConfig, config: &Config, ids: IdGenerator, file: &Path) -> Self {
        let limits = &config.limits;
        let summary = Summary {
            format: format.source(),
            file: file.display().to_string(),
            site: site.name.clone(),
            ..Summary::default()
        };
        Importer {
            format,
            site: site.name.clone(),
            rules: site.thread_key_rules(),
            field_limits: limits.field_limits(limits.import_text_chars_max),
            ids,
            thread_keys: HashMap::new(),
            batch: empty_batch(&site.name, format),
            batch_rows_max: config.import.batch_rows_max,
            batches_written: 0,
            records_written: 0,
            summary,
        }
    }

    fn stream(
        &mut self,
        runtime: &Runtime,
        store: &SqliteStore,
        records: Records,
        bar: &ProgressBar,
    ) -> anyhow::Result<()> {
        for (index, item) in records.enumerate() {
            match item {
                Ok(Record::Thread(thread)) => self.add_thread(thread),
                Ok(Record::Comment(comment)) => self.add_comment(comment)?,
                Err(ImportError::Skipped { what, reason }) => self.skip_unreadable(what, reason),
                Err(fatal) => return Err(fatal).context("the export cannot be read any further"),
            }
            if self.batch.threads.len() + self.batch.comments.len() >= self.batch_rows_max {
                self.flush(runtime, store)?;
            }
            if index % 1_000 == 0 {
                bar.set_message(format!("{} comments", self.summary.comments_in_file));
            }
        }
        self.flush(runtime, store)
    }

    fn add_thread(&mut self, thread: ThreadRecord) {
        self.summary.threads_in_file += 1;
        let key = self.thread_key(&thread);
        let mut aliases = thread.aliases;
        aliases.extend(thread.url);
        aliases.retain(|alias| !alias.trim().is_empty() && *alias != key);
        aliases.dedup();
        let title = thread.title.as_deref().map(|t| clean_title(t, &self.field_limits));
        self.thread_keys.insert(thread.source_id.clone(), key.clone());
        self.batch.threads.push(ImportThread { source_id: thread.source_id, key, aliases, title: title.flatten() });
    }

    /// The page's URL, else its first alias, normalised by the site's rules; an export that
    /// names neither gets a key from its own id.
    fn thread_key(&self, thread: &ThreadRecord) -> String {
        thread
            .url
            .iter()
            .chain(thread.aliases.first())
            .find_map(|candidate| normalize_thread_key(candidate, &self.rules).ok())
            .unwrap_or_else(|| format!("{}:{}", self.format.source(), thread.source_id))
    }

    fn add_comment(&mut self, record: CommentRecord) -> anyhow::Result<()> {
        self.summary.comments_in_file += 1;
        let id = self.next_id()?;
        let fallback_key;
        let thread_key = match self.thread_keys.get(&record.thread_source_id) {
            Some(key) => key.as_str(),
            // The store finds the thread by source id and reports it missing; the key is unused.
            None => {
                fallback_key = format!("{}:{}", self.format.source(), record.thread_source_id);
                fallback_key.as_str()
            }
        };
        let draft = Draft {
            id,
            site: &self.site,
            thread_key,
            parent_id: None,
            text: &record.text,
            text_format: record.text_format,
            author: record.author.as_deref(),
            email: record.email.as_deref(),
            website: record.website.as_deref(),
            remote_addr: record.remote_addr.as_deref(),
            session_id: None,
            state: comment_state(record.state),
            created_at: record.created_at,
        };
        match compose(draft, &self.field_limits) {
            Ok(comment) => self.batch.comments.push(ImportComment {
                comment,
                source_id: record.source_id,
                thread_source_id: record.thread_source_id,
                parent_source_id: record.parent_source_id,
            }),
            Err(error) => self.skip(self.format.describe_comment(&record.source_id), error.to_string()),
        }
        Ok(())
    }

    fn skip_unreadable(&mut self, what: String, reason: String) {
        if self.format.skipped_is_thread(&what) {
            self.summary.threads_in_file += 1;
        } else {
            self.summary.comments_in_file += 1;
        }
        self.skip(what, reason);
    }

    fn skip(&mut self, what: String, reason: String) {
        self.summary.skipped_count += 1;
        self.summary.skipped.push(Skipped { what, reason });
    }

    /// The next id; waits out an exhausted millisecond or a clock slightly behind the last id.
    fn next_id(&mut self) -> anyhow::Result<CommentId> {
        for _ in 0..ID_ATTEMPTS_MAX {
            match self.ids.next_id(Utc::now().timestamp_millis()) {
                Ok(id) => return Ok(id),
                Err(IdError::SequenceExhausted) => std::thread::sleep(Duration::from_millis(1)),
                Err(IdError::ClockBackwards { behind_ms }) if behind_ms <= CLOCK_BEHIND_WAIT_MS_MAX => {
                    std::thread::sleep(Duration::from_millis(behind_ms.unsigned_abs()));
                }
                Err(error) => return Err(error).context("cannot make comment ids"),
            }
        }
        anyhow::bail!("cannot make comment ids: no free id after {ID_ATTEMPTS_MAX} attempts")
    }

    /// Writes the batch in one transaction and tallies each comment's outcome.
    fn flush(&mut self, runtime: &Runtime, store: &SqliteStore) -> anyhow::Result<()> {
        if self.batch.threads.is_empty() && self.batch.comments.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, empty_batch(&self.site, self.format));
        let rows = (batch.threads.len() + batch.comments.len()) as u64;
        // Kept to name the comments the store could not place.
        let threads_of: Vec<(String, String)> =
            batch.comments.iter().map(|c| (c.source_id.clone(), c.thread_source_id.clone())).collect();
        let outcomes = runtime
            .block_on(store.import_batch(batch))
            .with_context(|| format!("cannot write import batch {}", self.batches_written + 1))?
            .value;
        self.batches_written += 1;
        self.records_written += rows;
        for (outcome, (source_id, thread_source_id)) in outcomes.into_iter().zip(threads_of) {
            match outcome {
                ImportCommentOutcome::Created => self.summary.created += 1,
                ImportCommentOutcome::Unchanged => self.summary.unchanged += 1,
                // Exports list threads before posts, so a thread not seen by now is not there.
                ImportCommentOutcome::ThreadMissing => {
                    let thread = self.format.describe_thread(&thread_source_id);
                    self.skip(self.format.describe_comment(&source_id), format!("{thread} is not in the export"));
                }
            }
        }
        Ok(())
    }

    /// What a fatal error leaves behind, for its message.
    fn partial_note(&self) -> String {
        format!(
            "The import stopped. The {} batch(es) ({} records) written before the error stay: they are valid, and \
             importing the file again adds only what is missing.",
            self.batches_written, self.records_written
        )
    }

    fn finish(mut self, report: ImportReport) -> Summary {
        self.summary.threads_stored = report.threads_total;
        self.summary.threads_with_comments = report.threads_with_comments;
        self.summary.orphans_count = report.orphans.len() as u64;
        self.summary.orphans =
            report.orphans.into_iter().map(|(comment, missing_parent)| Orphan { comment, missing_parent }).collect();
        self.summary
    }
}

fn empty_batch(site: &str, format: ImportFormat) -> ImportBatch {
    ImportBatch { site: site.to_owned(), source: format.source().to_owned(), ..ImportBatch::default() }
}

/// How an exported moderation state is kept: spam is hidden (an admin can still see it).
fn comment_state(state: ImportedState) -> CommentState {
    match state {
        ImportedState::Published => CommentState::Published,
        ImportedState::Pending => CommentState::Pending,
        ImportedState::Spam => CommentState::Hidden,
        ImportedState::Deleted => CommentState::Deleted,
    }
}

/// A title is a label, not content: one that breaks the rules is tidied rather than dropping
/// its thread (control characters become spaces, the length is cut to the limit).
fn clean_title(title: &str, limits: &FieldLimits) -> Option<String> {
    if let Ok(title) = normalize_title(Some(title), limits) {
        return title;
    }
    let tidy: String =
        title.chars().map(|c| if c.is_control() { ' ' } else { c }).take(limits.title_chars_max).collect();
    normalize_title(Some(&tidy), limits).ok().flatten()
}

fn render_summary(summary: &Summary) -> String {
    let mut out = format!(
        "imported {} ({}) into site {:?}\n\
         threads in file:        {}\n\
         threads stored:         {}\n\
         threads with comments:  {}\n\
         comments in file:       {}\n\
         created:                {}\n\
         unchanged:              {}\n\
         skipped:                {}\n",
        summary.file,
        summary.format,
        summary.site,
        summary.threads_in_file,
        summary.threads_stored,
        summary.threads_with_comments,
        summary.comments_in_file,
        summary.created,
        summary.unchanged,
        summary.skipped_count,
    );
    let skipped = summary.skipped.iter().map(|s| format!("{}: {}", s.what, s.reason));
    push_list(&mut out, skipped, summary.skipped.len());
    out.push_str(&format!("orphans:                {} (kept at their thread's root)\n", summary.orphans_count));
    let orphans =
        summary.orphans.iter().map(|o| format!("{}: parent {} is not in the export", o.comment, o.missing_parent));
    push_list(&mut out, orphans, summary.orphans.len());
    out
}

fn push_list(out: &mut String, lines: impl Iterator<Item = String>, total: usize) {
    for line in lines.take(SUMMARY_LINES_MAX) {
        out.push_str(&format!("  {line}\n"));
    }
    if total > SUMMARY_LINES_MAX {
        out.push_str(&format!("  and {} more\n", total - SUMMARY_LINES_MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(url: Option<&str>, aliases: &[&str]) -> ThreadRecord {
        ThreadRecord {
            source_id: "42".into(),
            url: url.map(str::to_owned),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            title: None,
            created_at: None,
        }
    }

    fn key_of(record: &ThreadRecord) -> String {
        let config = Config::from_figment(figment::Figment::new()).expect("default config");
        let site = SiteConfig::default_site();
        let ids = IdGenerator::new(IMPORT_NODE_ID).expect("node");
        Importer::new(ImportFormat::Disqus, &site, &config, ids, Path::new("x")).thread_key(record)
    }

    #[test]
    fn thread_key_prefers_url_then_alias_then_source_id() {
        assert_eq!(key_of(&thread(Some("http://x.org/about/"), &["about"])), "/about");
        assert_eq!(key_of(&thread(None, &["/about/"])), "/about");
        assert_eq!(key_of(&thread(None, &[])), "disqus:42");
        // A URL that does not parse falls back to the alias rather than losing the thread.
        assert_eq!(key_of(&thread(Some("http://[bad"), &["post-1"])), "post-1");
    }

    #[test]
    fn titles_are_tidied_not_dropped() {
        let limits = FieldLimits { title_chars_max: 5, ..FieldLimits::default() };
        assert_eq!(clean_title(" Hi ", &limits), Some("Hi".into()));
        assert_eq!(clean_title("a\tb", &limits), Some("a b".into()));
        assert_eq!(clean_title("abcdefgh", &limits), Some("abcde".into()));
        assert_eq!(clean_title("  ", &limits), None);
    }

    #[test]
    fn text_summary_caps_lists() {
        let skipped = (0..25).map(|i| Skipped { what: format!("post dsq:id={i}"), reason: "r".into() }).collect();
        let summary = Summary { skipped_count: 25, skipped, ..Summary::default() };
        let text = render_summary(&summary);
        assert!(text.contains("  post dsq:id=19: r\n"), "{text}");
        assert!(!text.contains("dsq:id=20:"), "{text}");
        assert!(text.contains("  and 5 more\n"), "{text}");
    }
}
