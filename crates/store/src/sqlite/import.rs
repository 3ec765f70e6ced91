//! Imported threads and comments: one transaction per batch, parents linked at the end.

use rusqlite::{params, OptionalExtension, Transaction};

use super::rows::{add_alias, insert_comment, upsert_thread};
use crate::{ImportBatch, ImportCommentOutcome, ImportReport, StoreError};

/// The alias under which an export's own thread id is kept, e.g. `disqus:4516623578`.
pub fn source_alias(source: &str, source_id: &str) -> String {
    format!("{source}:{source_id}")
}

pub fn write_batch(txn: &Transaction<'_>, batch: &ImportBatch) -> Result<Vec<ImportCommentOutcome>, StoreError> {
    for thread in &batch.threads {
        let created_ms = 0;
        let thread_id = upsert_thread(txn, &batch.site, &thread.key, thread.title.as_deref(), created_ms)?;
        add_alias(txn, &batch.site, &source_alias(&batch.source, &thread.source_id), thread_id)?;
        for alias in thread.aliases.iter().filter(|a| **a != thread.key) {
            add_alias(txn, &batch.site, alias, thread_id)?;
        }
    }
    let mut thread_by_alias =
        txn.prepare_cached("SELECT thread_id FROM thread_aliases WHERE site = ?1 AND alias = ?2")?;
    let mut outcomes = Vec::with_capacity(batch.comments.len());
    for item in &batch.comments {
        let alias = source_alias(&batch.source, &item.thread_source_id);
        let thread_id: Option<i64> =
            thread_by_alias.query_row(params![batch.site, alias], |row| row.get(0)).optional()?;
        let Some(thread_id) = thread_id else {
            outcomes.push(ImportCommentOutcome::ThreadMissing);
            continue;
        };
        let source = (batch.source.as_str(), item.source_id.as_str(), item.parent_source_id.as_deref());
        let created = insert_comment(txn, &item.comment, thread_id, Some(source))?;
        outcomes.push(if created { ImportCommentOutcome::Created } else { ImportCommentOutcome::Unchanged });
    }
    Ok(outcomes)
}

pub fn link_parents(txn: &Transaction<'_>, site: &str, source: &str) -> Result<ImportReport, StoreError> {
    txn.execute(
        "UPDATE comments SET parent_id = (
             SELECT p.id FROM comments p
             WHERE p.site = comments.site AND p.source = comments.source
               AND p.source_id = comments.parent_source_id AND p.thread_id = comments.thread_id)
         WHERE site = ?1 AND source = ?2 AND parent_source_id IS NOT NULL AND parent_id IS NULL",
        params![site, source],
    )?;
    let mut orphans_query = txn.prepare(
        "SELECT source_id, parent_source_id FROM comments
         WHERE site = ?1 AND source = ?2 AND parent_source_id IS NOT NULL AND parent_id IS NULL ORDER BY source_id",
    )?;
    let orphans = orphans_query
        .query_map(params![site, source], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<(String, String)>, _>>()?;
    let prefix = format!("{source}:%");
    let threads_total: i64 = txn.query_row(
        "SELECT count(DISTINCT thread_id) FROM thread_aliases WHERE site = ?1 AND alias LIKE ?2",
        params![site, prefix],
        |row| row.get(0),
    )?;
    let threads_with_comments: i64 = txn.query_row(
        "SELECT count(DISTINCT thread_id) FROM comments WHERE site = ?1 AND source = ?2",
        params![site, source],
        |row| row.get(0),
    )?;
    Ok(ImportReport {
        threads_total: u64::try_from(threads_total).unwrap_or(0),
        threads_with_comments: u64::try_from(threads_with_comments).unwrap_or(0),
        orphans,
    })
}
