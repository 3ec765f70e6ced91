//! Imported threads and comments on PostgreSQL: one transaction per batch, parents linked at
//! the end. The same rules as `sqlite/import.rs`: a comment is created, updated or left alone
//! as `types::import_outcome` decides, and `source_digest` keeps what the import last wrote.

use deadpool_postgres::Transaction;
use model::{CommentId, CommentState, SessionId, TextFormat};

use super::rows::{add_alias, upsert_thread};
use crate::sqlite::import::source_alias;
use crate::types::{import_digest, import_outcome, import_update, ImportComment, StoredImport};
use crate::{ImportBatch, ImportCommentOutcome, ImportReport, StoreError};

pub async fn write_batch(txn: &Transaction<'_>, batch: &ImportBatch) -> Result<Vec<ImportCommentOutcome>, StoreError> {
    for thread in &batch.threads {
        let created_ms = 0;
        let thread_id = upsert_thread(txn, &batch.site, &thread.key, thread.title.as_deref(), created_ms).await?;
        add_alias(txn, &batch.site, &source_alias(&batch.source, &thread.source_id), thread_id).await?;
        for alias in thread.aliases.iter().filter(|a| **a != thread.key) {
            add_alias(txn, &batch.site, alias, thread_id).await?;
        }
    }
    let thread_by_alias =
        txn.prepare_cached("SELECT thread_id FROM thread_aliases WHERE site = $1 AND alias = $2").await?;
    let mut outcomes = Vec::with_capacity(batch.comments.len());
    for item in &batch.comments {
        let alias = source_alias(&batch.source, &item.thread_source_id);
        let Some(row) = txn.query_opt(&thread_by_alias, &[&batch.site, &alias]).await? else {
            outcomes.push(ImportCommentOutcome::ThreadMissing);
            continue;
        };
        let thread_id: i64 = row.try_get(0)?;
        let comment = &item.comment;
        let incoming = import_digest(&comment.text, comment.text_format, comment.state);
        let stored = stored_import(txn, &batch.site, &batch.source, &item.source_id).await?;
        let outcome = import_outcome(stored.as_ref(), &incoming, batch.run_id);
        match (outcome, &stored) {
            (ImportCommentOutcome::Created, _) => insert(txn, item, thread_id, batch, &incoming).await?,
            (ImportCommentOutcome::Updated, Some(stored)) => update(txn, stored.id, item, batch).await?,
            (ImportCommentOutcome::Unchanged | ImportCommentOutcome::KeptLocal, Some(stored)) => {
                let mark = txn.prepare_cached("UPDATE comments SET import_run = $2 WHERE id = $1").await?;
                txn.execute(&mark, &[&stored.id.0, &batch.run_id]).await?;
            }
            _ => {}
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The row already imported under this source id, if any, as the decision needs it.
async fn stored_import(
    txn: &Transaction<'_>,
    site: &str,
    source: &str,
    source_id: &str,
) -> Result<Option<StoredImport>, StoreError> {
    let statement = txn
        .prepare_cached(
            "SELECT id, text, text_format, state, source_digest, import_run FROM comments \
             WHERE site = $1 AND source = $2 AND source_id = $3",
        )
        .await?;
    let Some(row) = txn.query_opt(&statement, &[&site, &source, &source_id]).await? else {
        return Ok(None);
    };
    let (text, text_format, state): (String, String, String) = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
    let corrupt = |what: &str, value: &str| StoreError::Internal(format!("unknown {what} {value:?} in the database"));
    let text_format = TextFormat::parse(&text_format).ok_or_else(|| corrupt("text format", &text_format))?;
    let state = CommentState::parse(&state).ok_or_else(|| corrupt("state", &state))?;
    let digest_now = import_digest(&text, text_format, state);
    Ok(Some(StoredImport {
        id: CommentId(row.try_get(0)?),
        state,
        digest_now,
        digest_imported: row.try_get(4)?,
        import_run: row.try_get(5)?,
    }))
}

async fn insert(
    txn: &Transaction<'_>,
    item: &ImportComment,
    thread_id: i64,
    batch: &ImportBatch,
    digest: &str,
) -> Result<(), StoreError> {
    let comment = &item.comment;
    let statement = txn
        .prepare_cached(
            "INSERT INTO comments (id, site, thread_id, parent_id, text, text_format, html, author, email, website, \
             remote_addr, session_id, state, created_ms, edited_ms, source, source_id, parent_source_id, source_digest, \
             import_run) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .await?;
    txn.execute(
        &statement,
        &[
            &comment.id.0,
            &comment.site,
            &thread_id,
            &comment.text,
            &comment.text_format.as_str(),
            &comment.html,
            &comment.author,
            &comment.email,
            &comment.website,
            &comment.remote_addr,
            &comment.session_id.map(SessionId::to_hex),
            &comment.state.as_str(),
            &comment.created_at.timestamp_millis(),
            &comment.edited_at.map(|t| t.timestamp_millis()),
            &batch.source,
            &item.source_id,
            &item.parent_source_id,
            &digest,
            &batch.run_id,
        ],
    )
    .await?;
    Ok(())
}

async fn update(
    txn: &Transaction<'_>,
    id: CommentId,
    item: &ImportComment,
    batch: &ImportBatch,
) -> Result<(), StoreError> {
    let change = import_update(&item.comment, batch.imported_at);
    let statement = txn
        .prepare_cached(
            "UPDATE comments SET text = $2, text_format = $3, html = $4, state = $5, \
             edited_ms = CASE WHEN text = $2 THEN edited_ms ELSE $6 END, \
             source_digest = $7, import_run = $9, author = CASE WHEN $8 THEN NULL ELSE author END, \
             email = CASE WHEN $8 THEN NULL ELSE email END, website = CASE WHEN $8 THEN NULL ELSE website END, \
             remote_addr = CASE WHEN $8 THEN NULL ELSE remote_addr END \
             WHERE id = $1",
        )
        .await?;
    txn.execute(
        &statement,
        &[
            &id.0,
            &change.text,
            &change.text_format.as_str(),
            &change.html,
            &change.state.as_str(),
            &change.edited_at.timestamp_millis(),
            &change.digest,
            &change.erase_author,
            &batch.run_id,
        ],
    )
    .await?;
    Ok(())
}

/// Comments of this import whose parent is not linked.
const ORPHANS: &str =
    "FROM comments WHERE site = $1 AND source = $2 AND parent_source_id IS NOT NULL AND parent_id IS NULL";

pub async fn link_parents(
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
         WHERE site = $1 AND source = $2 AND parent_source_id IS NOT NULL AND parent_id IS NULL",
        &[&site, &source],
    )
    .await?;
    let orphans_total: i64 =
        txn.query_one(&format!("SELECT count(*) {ORPHANS}"), &[&site, &source]).await?.try_get(0)?;
    let limit = i64::try_from(orphans_listed_max).unwrap_or(i64::MAX);
    // Byte order, as SQLite sorts, whatever the database's collation.
    let orphans = txn
        .query(
            &format!("SELECT source_id, parent_source_id {ORPHANS} ORDER BY source_id COLLATE \"C\" LIMIT $3"),
            &[&site, &source, &limit],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<Vec<(String, String)>, StoreError>>()?;
    let prefix = source_alias(source, "");
    let threads_total: i64 = txn
        .query_one(
            "SELECT count(DISTINCT thread_id) FROM thread_aliases WHERE site = $1 AND starts_with(alias, $2)",
            &[&site, &prefix],
        )
        .await?
        .try_get(0)?;
    let threads_with_comments: i64 = txn
        .query_one("SELECT count(DISTINCT thread_id) FROM comments WHERE site = $1 AND source = $2", &[&site, &source])
        .await?
        .try_get(0)?;
    Ok(ImportReport {
        threads_total: u64::try_from(threads_total).unwrap_or(0),
        threads_with_comments: u64::try_from(threads_with_comments).unwrap_or(0),
        orphans_total: u64::try_from(orphans_total).unwrap_or(0),
        orphans,
    })
}
