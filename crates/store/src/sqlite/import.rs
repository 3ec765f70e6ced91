//! Imported threads and comments: one transaction per batch, parents linked at the end.
//!
//! A comment is looked up by (site, source, source id) and created, updated or left alone as
//! `types::import_outcome` decides; `source_digest` keeps what the import last wrote, so a
//! later re-import can tell an upstream edit from a change made here, and `import_run` marks
//! the rows the current run has met, so a repeated id within one export is a duplicate.

use model::{CommentId, CommentState, SessionId, TextFormat};
use rusqlite::{params, OptionalExtension, Transaction};

use super::rows::{add_alias, upsert_thread};
use crate::types::{import_digest, import_outcome, import_update, ImportComment, StoredImport};
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
        let comment = &item.comment;
        let incoming = import_digest(&comment.text, comment.text_format, comment.state);
        let stored = stored_import(txn, &batch.site, &batch.source, &item.source_id)?;
        let outcome = import_outcome(stored.as_ref(), &incoming, batch.run_id);
        match (outcome, &stored) {
            (ImportCommentOutcome::Created, _) => insert(txn, item, thread_id, batch, &incoming)?,
            (ImportCommentOutcome::Updated, Some(stored)) => update(txn, stored.id, item, batch)?,
            (ImportCommentOutcome::Unchanged | ImportCommentOutcome::KeptLocal, Some(stored)) => {
                txn.prepare_cached("UPDATE comments SET import_run = ?2 WHERE id = ?1")?
                    .execute(params![stored.id.0, batch.run_id])?;
            }
            _ => {}
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The row already imported under this source id, if any, as the decision needs it.
fn stored_import(
    txn: &Transaction<'_>,
    site: &str,
    source: &str,
    source_id: &str,
) -> Result<Option<StoredImport>, StoreError> {
    type Row = (i64, String, String, String, Option<String>, Option<i64>);
    let row: Option<Row> = txn
        .prepare_cached(
            "SELECT id, text, text_format, state, source_digest, import_run FROM comments \
             WHERE site = ?1 AND source = ?2 AND source_id = ?3",
        )?
        .query_row(params![site, source, source_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
        })
        .optional()?;
    let Some((id, text, text_format, state, digest_imported, import_run)) = row else {
        return Ok(None);
    };
    let corrupt = |what: &str, value: &str| StoreError::Internal(format!("unknown {what} {value:?} in the database"));
    let text_format = TextFormat::parse(&text_format).ok_or_else(|| corrupt("text format", &text_format))?;
    let state = CommentState::parse(&state).ok_or_else(|| corrupt("state", &state))?;
    let digest_now = import_digest(&text, text_format, state);
    Ok(Some(StoredImport { id: CommentId(id), state, digest_now, digest_imported, import_run }))
}

fn insert(
    txn: &Transaction<'_>,
    item: &ImportComment,
    thread_id: i64,
    batch: &ImportBatch,
    digest: &str,
) -> Result<(), StoreError> {
    let comment = &item.comment;
    txn.prepare_cached(
        "INSERT INTO comments (id, site, thread_id, parent_id, text, text_format, html, author, email, website, \
         remote_addr, session_id, state, created_ms, edited_ms, source, source_id, parent_source_id, source_digest, \
         import_run) VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        comment.id.0,
        comment.site,
        thread_id,
        comment.text,
        comment.text_format.as_str(),
        comment.html,
        comment.author,
        comment.email,
        comment.website,
        comment.remote_addr,
        comment.session_id.map(SessionId::to_hex),
        comment.state.as_str(),
        comment.created_at.timestamp_millis(),
        comment.edited_at.map(|t| t.timestamp_millis()),
        batch.source,
        item.source_id,
        item.parent_source_id,
        digest,
        batch.run_id,
    ])?;
    Ok(())
}

fn update(txn: &Transaction<'_>, id: CommentId, item: &ImportComment, batch: &ImportBatch) -> Result<(), StoreError> {
    let change = import_update(&item.comment, batch.imported_at);
    txn.prepare_cached(
        "UPDATE comments SET text = ?2, text_format = ?3, html = ?4, state = ?5, \
         edited_ms = CASE WHEN text = ?2 THEN edited_ms ELSE ?6 END, source_digest = ?7, import_run = ?9, \
         author = CASE WHEN ?8 THEN NULL ELSE author END, email = CASE WHEN ?8 THEN NULL ELSE email END, \
         website = CASE WHEN ?8 THEN NULL ELSE website END, remote_addr = CASE WHEN ?8 THEN NULL ELSE remote_addr END \
         WHERE id = ?1",
    )?
    .execute(params![
        id.0,
        change.text,
        change.text_format.as_str(),
        change.html,
        change.state.as_str(),
        change.edited_at.timestamp_millis(),
        change.digest,
        change.erase_author,
        batch.run_id,
    ])?;
    Ok(())
}

pub fn link_parents(
    txn: &Transaction<'_>,
    site: &str,
    source: &str,
    orphans_listed_max: usize,
) -> Result<ImportReport, StoreError> {
    txn.execute(
        "UPDATE comments SET parent_id = (
             SELECT p.id FROM comments p
             WHERE p.site = comments.site AND p.source = comments.source
               AND p.source_id = comments.parent_source_id AND p.thread_id = comments.thread_id)
         WHERE site = ?1 AND source = ?2 AND parent_source_id IS NOT NULL AND parent_id IS NULL",
        params![site, source],
    )?;
    const ORPHANS: &str = "FROM comments \
         WHERE site = ?1 AND source = ?2 AND parent_source_id IS NOT NULL AND parent_id IS NULL";
    let orphans_total: i64 =
        txn.query_row(&format!("SELECT count(*) {ORPHANS}"), params![site, source], |row| row.get(0))?;
    let mut orphans_query =
        txn.prepare(&format!("SELECT source_id, parent_source_id {ORPHANS} ORDER BY source_id LIMIT ?3"))?;
    let limit = i64::try_from(orphans_listed_max).unwrap_or(i64::MAX);
    let orphans = orphans_query
        .query_map(params![site, source, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
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
        orphans_total: u64::try_from(orphans_total).unwrap_or(0),
        orphans,
    })
}
