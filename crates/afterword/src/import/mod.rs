//! `afterword import`: reads an export file to its end to check it, then streams it into the
//! store in bounded batches and reports what was created, updated, kept, and skipped and why.
//!
//! Failure rule: a file that cannot be parsed to its end (truncated, malformed, a gzip stream
//! that does not decompress) writes nothing, because the whole file is read once before the
//! first write; so bad input never leaves half a thread. Once writing, each batch of
//! `[import] batch_rows_max` records is one transaction: if the store fails mid-way (disk
//! full, say) the batches already written stay, and importing the file again adds only what is
//! missing. One transaction for the whole file would hold the single SQLite writer, and so
//! every live comment, for the length of the import.

mod importer;
mod summary;

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use import::gzip::{sniff, Input};
use import::{CommentRecord, DisqusReader, ImportError, ReadLimits, Record, RedditReader, WxrReader};
use indicatif::{ProgressBar, ProgressStyle};
use model::IdGenerator;
use store::Store;
use tokio::runtime::Runtime;

use self::importer::{Importer, Plan};
use self::summary::Summary;
use crate::config::Config;

/// Node id reserved for offline imports, so an import beside a running server (node 0) never
/// makes an id the server also makes.
const IMPORT_NODE_ID: u16 = 1023;
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Export formats `import` reads. Each names its source, so re-imports match by source id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// Disqus XML export (`<disqus>` with `<thread>` and `<post>` elements).
    Disqus,
    /// WordPress WXR export, versions 1.0 to 1.2 (Tools → Export in WordPress).
    Wxr,
    /// A reddit discussion as JSON lines: the post first, then its comments.
    RedditJsonl,
}

type Records = Box<dyn Iterator<Item = Result<Record, ImportError>>>;

impl ImportFormat {
    /// The name imported rows are tagged with; source ids are unique per (site, source).
    fn source(self) -> &'static str {
        match self {
            ImportFormat::Disqus => "disqus",
            ImportFormat::Wxr => "wxr",
            ImportFormat::RedditJsonl => "reddit",
        }
    }

    fn records(self, input: Box<dyn BufRead>, limits: ReadLimits) -> Records {
        match self {
            ImportFormat::Disqus => Box::new(DisqusReader::with_limits(input, limits)),
            ImportFormat::Wxr => Box::new(WxrReader::with_limits(input, limits)),
            ImportFormat::RedditJsonl => Box::new(RedditReader::with_limits(input, limits)),
        }
    }

    /// Names a comment the way the format's reader names records in `Skipped`.
    fn describe_comment(self, record: &CommentRecord) -> String {
        self.describe_comment_ids(&record.source_id, &record.thread_source_id)
    }

    fn describe_comment_ids(self, source_id: &str, thread_source_id: &str) -> String {
        match self {
            ImportFormat::Disqus => format!("post dsq:id={source_id}"),
            ImportFormat::Wxr => {
                let number = source_id.strip_prefix(thread_source_id).and_then(|rest| rest.strip_prefix('#'));
                format!("comment {} of post {thread_source_id}", number.unwrap_or(source_id))
            }
            ImportFormat::RedditJsonl => format!("comment {source_id}"),
        }
    }

    fn describe_thread(self, source_id: &str) -> String {
        match self {
            ImportFormat::Disqus => format!("thread dsq:id={source_id}"),
            ImportFormat::Wxr | ImportFormat::RedditJsonl => format!("post {source_id}"),
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
The file may be gzip-compressed (recognised by its first bytes, whatever its name). It is read \
to its end once before anything is written: a file that cannot be parsed (truncated, malformed) \
writes nothing and exits non-zero, naming the line. Then records are written in batches of \
`[import] batch_rows_max` (default 5000), one transaction each. A problem with one record \
(unreadable, failing a field rule, pointing at a thread that is not in the export, a pingback) \
skips that record, is reported with its reason, and the import goes on; it still exits 0. If the \
store fails mid-way, batches already written stay, because they are valid.

Importing again is idempotent by the export's own ids and incremental: new records are created, \
records edited upstream are updated (text, state; reported as updated), and a comment edited, \
deleted or moderated here since it was imported is never overwritten (reported as kept).")]
pub struct ImportArgs {
    /// The export's format.
    #[arg(long, value_enum)]
    pub format: ImportFormat,
    /// The export file, plain or gzip.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The site to import into [default: the first configured site].
    #[arg(long, value_name = "SITE")]
    pub site: Option<String>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(runtime: &Runtime, config: &Config, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let site = config.site(args.site.as_deref())?;
    let settings = &config.import;
    let limits = ReadLimits { field_bytes_max: settings.field_bytes_max, line_bytes_max: settings.line_bytes_max };
    let (records_in_file, gzip) = check(args, limits)?;

    let store = runtime.block_on(crate::open_store(config))?;
    let mut ids = IdGenerator::new(IMPORT_NODE_ID).context("the import node id is out of range")?;
    let last = runtime.block_on(store.comment_id_max()).context("cannot read the highest comment id")?;
    if let Some(last) = last {
        ids.resume_after(last);
    }
    // A fresh id is unique across the cluster, so it names this run without a counter.
    let run_id = importer::next_id(&mut ids)?.0;
    let plan = Plan {
        format: args.format,
        site: site.name.clone(),
        rules: site.thread_key_rules(),
        field_limits: config.limits.field_limits(config.limits.import_text_chars_max),
        batch_rows_max: settings.batch_rows_max,
        skipped_listed_max: settings.skipped_listed_max,
        imported_at: Utc::now(),
        run_id,
    };
    let summary = Summary {
        format: args.format.source(),
        file: args.file.display().to_string(),
        site: site.name.clone(),
        gzip,
        ..Summary::default()
    };
    let mut importer = Importer::new(plan, ids, summary);
    let bar = progress_bar(records_in_file, "{bar:40} {pos}/{len} records {msg}");
    let written = open(args, None).and_then(|input| {
        for item in args.format.records(input.reader, limits) {
            bar.inc(1);
            importer.add(runtime, &store, item)?;
        }
        importer.flush(runtime, &store)
    });
    bar.finish_and_clear();
    let source = args.format.source();
    let linked = runtime.block_on(store.import_link_parents(&site.name, source, settings.orphans_listed_max));
    if let Err(fatal) = written {
        if let Err(error) = linked {
            tracing::warn!("could not link the replies written so far to their parents: {error}");
        }
        return Err(anyhow::anyhow!("{fatal:#}\n{}", importer.partial_note()));
    }
    let report = linked.context("cannot link imported replies to their parents")?.value;
    print_summary(&importer.finish(report), args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the whole file without writing anything: the number of records and whether it was
/// gzip, or the error that would have stopped the import half-way.
fn check(args: &ImportArgs, limits: ReadLimits) -> anyhow::Result<(u64, bool)> {
    let file_bytes = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(file_bytes, "{bar:40} {bytes}/{total_bytes} checking");
    let input = open(args, Some(&bar))?;
    let gzip = input.gzip;
    let mut records = 0;
    for item in args.format.records(input.reader, limits) {
        match item {
            Err(fatal) if fatal.is_fatal() => {
                bar.finish_and_clear();
                let file = args.file.display();
                return Err(anyhow::Error::new(fatal)).with_context(|| {
                    format!("{file} cannot be imported; nothing was written (the file is read to its end first)")
                });
            }
            _ => records += 1,
        }
    }
    bar.finish_and_clear();
    Ok((records, gzip))
}

/// Opens the export, decompressing gzip; `bar` counts the file's bytes as they are read.
fn open(args: &ImportArgs, bar: Option<&ProgressBar>) -> anyhow::Result<Input> {
    let path = &args.file;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let buffered: Box<dyn BufRead> = match bar {
        Some(bar) => Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, bar.wrap_read(file))),
        None => Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, file)),
    };
    sniff(buffered).with_context(|| format!("cannot read {}", path.display()))
}

/// A progress bar on stderr, only when a person is watching it.
fn progress_bar(length: u64, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn print_summary(summary: &Summary, json: bool) -> anyhow::Result<()> {
    let text = if json {
        let mut json = serde_json::to_string(summary).context("cannot serialise the summary")?;
        json.push('\n');
        json
    } else {
        summary::render(summary)
    };
    std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write the summary to stdout")
}
