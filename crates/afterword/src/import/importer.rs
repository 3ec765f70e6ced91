//! Records → composed comments → store batches, with the tallies for the summary.
//!
//! Memory: one batch (`[import] batch_rows_max` rows) plus one entry per thread (its key by
//! source id, for the comments that follow) plus the listed skipped records (capped); the
//! comments themselves stream through.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use import::{CommentRecord, ImportError, ImportedState, Record, RecordKind, ThreadRecord};
use model::site::normalize_thread_key;
use model::validate::normalize_title;
use model::{compose, CommentId, CommentState, Draft, FieldLimits, IdError, IdGenerator, ThreadKeyRules};
use store::{ImportBatch, ImportComment, ImportCommentOutcome, ImportReport, ImportThread, Store};
use tokio::runtime::Runtime;

use super::summary::{Orphan, Skipped, Summary};
use super::ImportFormat;

/// How many times an id is asked for before giving up (each retry waits a millisecond or two).
const ID_ATTEMPTS_MAX: u32 = 1_000;
/// A clock this far behind the newest stored id is waited out; further behind is an error.
const CLOCK_BEHIND_WAIT_MS_MAX: i64 = 2_000;

/// What the importer needs to know besides the records.
pub struct Plan {
    pub format: ImportFormat,
    pub site: String,
    pub rules: ThreadKeyRules,
    pub field_limits: FieldLimits,
    pub batch_rows_max: usize,
    pub skipped_listed_max: usize,
    pub imported_at: DateTime<Utc>,
    /// Names this run for the store (`ImportBatch::run_id`).
    pub run_id: i64,
}

/// Turns records into batches and writes them; keeps the tallies for the summary.
pub struct Importer {
    plan: Plan,
    ids: IdGenerator,
    /// Each thread's key by source id, for the comments that follow it.
    thread_keys: HashMap<String, String>,
    batch: ImportBatch,
    pub batches_written: u64,
    pub records_written: u64,
    pub summary: Summary,
}

impl Importer {
    pub fn new(plan: Plan, ids: IdGenerator, summary: Summary) -> Self {
        let batch = empty_batch(&plan);
        Importer { plan, ids, thread_keys: HashMap::new(), batch, batches_written: 0, records_written: 0, summary }
    }

    /// Takes one record; writes a batch when it is full.
    pub fn add(
        &mut self,
        runtime: &Runtime,
        store: &dyn Store,
        item: Result<Record, ImportError>,
    ) -> anyhow::Result<()> {
        match item {
            Ok(Record::Thread(thread)) => self.add_thread(thread),
            Ok(Record::Comment(comment)) => self.add_comment(comment)?,
            Err(ImportError::Skipped { kind, what, reason }) => self.skip_unreadable(kind, what, reason),
            Err(fatal) => return Err(fatal).context("the export cannot be read any further"),
        }
        if self.batch.threads.len() + self.batch.comments.len() >= self.plan.batch_rows_max {
            self.flush(runtime, store)?;
        }
        Ok(())
    }

    fn add_thread(&mut self, thread: ThreadRecord) {
        self.summary.threads_in_file += 1;
        let key = self.thread_key(&thread);
        let aliases = self.aliases(&thread, &key);
        let title = thread.title.as_deref().and_then(|t| clean_title(t, &self.plan.field_limits));
        self.thread_keys.insert(thread.source_id.clone(), key.clone());
        self.batch.threads.push(ImportThread { source_id: thread.source_id, key, aliases, title });
    }

    /// The page's URL, else its first alias, normalised by the site's rules; an export that
    /// names neither gets a key from its own id.
    pub fn thread_key(&self, thread: &ThreadRecord) -> String {
        thread
            .url
            .iter()
            .chain(thread.aliases.first())
            .find_map(|candidate| normalize_thread_key(candidate, &self.plan.rules).ok())
            .unwrap_or_else(|| format!("{}:{}", self.plan.format.source(), thread.source_id))
    }

    /// Every other name of the page, raw (as old embeds asked for it) and normalised by the
    /// site's rules (as the API normalises what a page sends), without the key itself.
    pub fn aliases(&self, thread: &ThreadRecord, key: &str) -> Vec<String> {
        let mut aliases = Vec::new();
        for raw in thread.aliases.iter().chain(&thread.url) {
            let raw = raw.trim();
            aliases.push(raw.to_owned());
            aliases.extend(normalize_thread_key(raw, &self.plan.rules).ok());
        }
        aliases.retain(|alias| !alias.is_empty() && alias != key);
        aliases.sort_unstable();
        aliases.dedup();
        aliases
    }

    fn add_comment(&mut self, record: CommentRecord) -> anyhow::Result<()> {
        self.summary.comments_in_file += 1;
        let id = next_id(&mut self.ids)?;
        let thread_key = match self.thread_keys.get(&record.thread_source_id) {
            Some(key) => key.clone(),
            // The store finds the thread by source id and reports it missing; the key is unused.
            None => format!("{}:{}", self.plan.format.source(), record.thread_source_id),
        };
        // A tombstone keeps only its place in the tree, as a local delete leaves it.
        let deleted = record.state == ImportedState::Deleted;
        let keep = |value: &Option<String>| if deleted { None } else { value.clone() };
        let (author, email, website, remote_addr) =
            (keep(&record.author), keep(&record.email), keep(&record.website), keep(&record.remote_addr));
        let draft = Draft {
            id,
            site: &self.plan.site,
            thread_key: &thread_key,
            parent_id: None,
            text: &record.text,
            text_format: record.text_format,
            author: author.as_deref(),
            email: email.as_deref(),
            website: website.as_deref(),
            remote_addr: remote_addr.as_deref(),
            session_id: None,
            state: comment_state(record.state),
            created_at: record.created_at,
        };
        match compose(draft, &self.plan.field_limits) {
            Ok(mut comment) => {
                comment.edited_at = record.edited_at;
                self.batch.comments.push(ImportComment {
                    comment,
                    source_id: record.source_id,
                    thread_source_id: record.thread_source_id,
                    parent_source_id: record.parent_source_id,
                });
            }
            Err(error) => self.skip(RecordKind::Comment, self.plan.format.describe_comment(&record), error.to_string()),
        }
        Ok(())
    }

    fn skip_unreadable(&mut self, kind: RecordKind, what: String, reason: String) {
        match kind {
            RecordKind::Thread => self.summary.threads_in_file += 1,
            RecordKind::Comment => self.summary.comments_in_file += 1,
        }
        self.skip(kind, what, reason);
    }

    fn skip(&mut self, kind: RecordKind, what: String, reason: String) {
        self.summary.skipped_count += 1;
        if self.summary.skipped.len() < self.plan.skipped_listed_max {
            self.summary.skipped.push(Skipped { kind: kind.as_str(), what, reason });
        }
    }

    /// Writes the batch in one transaction and tallies each comment's outcome.
    pub fn flush(&mut self, runtime: &Runtime, store: &dyn Store) -> anyhow::Result<()> {
        if self.batch.threads.is_empty() && self.batch.comments.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, empty_batch(&self.plan));
        let rows = (batch.threads.len() + batch.comments.len()) as u64;
        // Kept to name the comments the store could not place.
        let names: Vec<(String, String)> =
            batch.comments.iter().map(|c| (c.source_id.clone(), c.thread_source_id.clone())).collect();
        let outcomes = runtime
            .block_on(store.import_batch(batch))
            .with_context(|| format!("cannot write import batch {}", self.batches_written + 1))?
            .value;
        self.batches_written += 1;
        self.records_written += rows;
        for (outcome, (source_id, thread_source_id)) in outcomes.into_iter().zip(names) {
            let summary = &mut self.summary;
            match outcome {
                ImportCommentOutcome::Created => summary.created += 1,
                ImportCommentOutcome::Updated => summary.updated += 1,
                ImportCommentOutcome::Unchanged => summary.unchanged += 1,
                ImportCommentOutcome::KeptLocal => summary.kept_local += 1,
                ImportCommentOutcome::Duplicate => summary.duplicates += 1,
                // Exports list a thread before its comments, so a thread not seen by now is not there.
                ImportCommentOutcome::ThreadMissing => {
                    let format = self.plan.format;
                    let thread = format.describe_thread(&thread_source_id);
                    let what = format.describe_comment_ids(&source_id, &thread_source_id);
                    self.skip(RecordKind::Comment, what, format!("{thread} is not in the export"));
                }
            }
        }
        Ok(())
    }

    /// What a fatal error in the write pass leaves behind, for its message.
    pub fn partial_note(&self) -> String {
        format!(
            "The import stopped. The {} batch(es) ({} records) written before the error stay: they are valid, and \
             importing the file again adds only what is missing.",
            self.batches_written, self.records_written
        )
    }

    pub fn finish(mut self, report: ImportReport) -> Summary {
        self.summary.threads_stored = report.threads_total;
        self.summary.threads_with_comments = report.threads_with_comments;
        self.summary.orphans_count = report.orphans_total;
        self.summary.orphans =
            report.orphans.into_iter().map(|(comment, missing_parent)| Orphan { comment, missing_parent }).collect();
        self.summary
    }
}

/// The next id; waits out an exhausted millisecond or a clock slightly behind the last id.
pub fn next_id(ids: &mut IdGenerator) -> anyhow::Result<CommentId> {
    for _ in 0..ID_ATTEMPTS_MAX {
        match ids.next_id(Utc::now().timestamp_millis()) {
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

fn empty_batch(plan: &Plan) -> ImportBatch {
    ImportBatch {
        site: plan.site.clone(),
        source: plan.format.source().to_owned(),
        imported_at: plan.imported_at,
        run_id: plan.run_id,
        ..ImportBatch::default()
    }
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
pub fn clean_title(title: &str, limits: &FieldLimits) -> Option<String> {
    if let Ok(title) = normalize_title(Some(title), limits) {
        return title;
    }
    let tidy: String =
        title.chars().map(|c| if c.is_control() { ' ' } else { c }).take(limits.title_chars_max).collect();
    normalize_title(Some(&tidy), limits).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn importer() -> Importer {
        let plan = Plan {
            format: ImportFormat::Disqus,
            site: "default".into(),
            rules: ThreadKeyRules::default(),
            field_limits: FieldLimits::default(),
            batch_rows_max: 10,
            skipped_listed_max: 2,
            imported_at: DateTime::default(),
            run_id: 1,
        };
        Importer::new(plan, IdGenerator::new(1023).expect("node"), Summary::default())
    }

    fn thread(url: Option<&str>, aliases: &[&str]) -> ThreadRecord {
        ThreadRecord {
            source_id: "42".into(),
            url: url.map(str::to_owned),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            title: None,
            created_at: None,
        }
    }

    #[test]
    fn thread_key_prefers_url_then_alias_then_source_id() {
        let importer = importer();
        assert_eq!(importer.thread_key(&thread(Some("http://x.org/about/"), &["about"])), "/about");
        assert_eq!(importer.thread_key(&thread(None, &["/about/"])), "/about");
        assert_eq!(importer.thread_key(&thread(None, &[])), "disqus:42");
        // A URL that does not parse falls back to the alias rather than losing the thread.
        assert_eq!(importer.thread_key(&thread(Some("http://[bad"), &["post-1"])), "post-1");
    }

    #[test]
    fn aliases_are_kept_raw_and_normalised_without_the_key() {
        let importer = importer();
        let record =
            thread(Some("https://x.org/2012/01/03/a/"), &["https://x.org/?p=1148", " 198 http://x.org/?p=198 "]);
        let key = importer.thread_key(&record);
        assert_eq!(key, "/2012/01/03/a");
        assert_eq!(
            importer.aliases(&record, &key),
            ["/?p=1148", "198 http://x.org/?p=198", "https://x.org/2012/01/03/a/", "https://x.org/?p=1148"]
        );
    }

    #[test]
    fn skipped_records_are_counted_in_full_and_listed_up_to_the_cap() {
        let mut importer = importer();
        for i in 0..5 {
            importer.skip_unreadable(RecordKind::Comment, format!("post {i}"), "r".into());
        }
        importer.skip_unreadable(RecordKind::Thread, "thread 9".into(), "r".into());
        assert_eq!(importer.summary.skipped_count, 6);
        assert_eq!(importer.summary.skipped.len(), 2);
        assert_eq!((importer.summary.comments_in_file, importer.summary.threads_in_file), (5, 1));
    }

    #[test]
    fn titles_are_tidied_not_dropped() {
        let limits = FieldLimits { title_chars_max: 5, ..FieldLimits::default() };
        assert_eq!(clean_title(" Hi ", &limits), Some("Hi".into()));
        assert_eq!(clean_title("a\tb", &limits), Some("a b".into()));
        assert_eq!(clean_title("abcdefgh", &limits), Some("abcde".into()));
        assert_eq!(clean_title("  ", &limits), None);
    }
}
