//! The write transactions of the PostgreSQL store: create (with idempotency keys) and change.
//! They run at READ COMMITTED; concurrent writers meet on unique keys and row locks, never on a
//! lost update. Positions are taken by the caller after COMMIT.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use model::{authorize_change, Comment, CommentId, CommentState, Denied, FieldError, Viewer};

use super::rows::{self, comment_by_id, find_thread, COMMENT_COLUMNS};
use crate::{Change, IdempotencyClaim, NewComment, StoreError};

/// Expired idempotency keys removed per create, at most: the sweep stays cheap and never
/// waits for rows another writer holds.
const IDEMPOTENCY_SWEEP_ROWS_MAX: i64 = 100;

pub enum CreateOutcome {
    New(Comment),
    /// The key was used before with the same body: the original comment, and its write
    /// position when that was recorded.
    Replayed {
        comment: Comment,
        position: Option<u64>,
    },
}

pub async fn create_in(txn: &Transaction<'_>, new: &NewComment) -> Result<CreateOutcome, StoreError> {
    let comment = &new.comment;
    if let Some(claim) = &new.idempotency {
        sweep_expired_keys(txn, &comment.site, claim).await?;
        if let Some(replayed) = claim_key(txn, comment, claim).await? {
            return Ok(replayed);
        }
    }
    let mut lookup = vec![comment.thread_key.clone()];
    lookup.extend(new.thread_aliases.iter().cloned());
    let now_ms = comment.created_at.timestamp_millis();
    let (thread_id, thread_key) = match find_thread(txn, &comment.site, &lookup).await? {
        Some((id, key, _)) => (id, key),
        None => {
            let title = new.thread_title.as_deref();
            let id = rows::upsert_thread(txn, &comment.site, &comment.thread_key, title, now_ms).await?;
            (id, comment.thread_key.clone())
        }
    };
    if let Some(parent_id) = comment.parent_id {
        check_parent(txn, parent_id, thread_id).await?;
    }
    rows::insert_comment(txn, comment, thread_id).await?;
    let mut stored = comment.clone();
    stored.thread_key = thread_key;
    Ok(CreateOutcome::New(stored))
}

/// Removes this key if it expired, and a bounded batch of other expired keys nobody holds.
async fn sweep_expired_keys(txn: &Transaction<'_>, site: &str, claim: &IdempotencyClaim) -> Result<(), StoreError> {
    let expired_before_ms = claim.expired_before.timestamp_millis();
    let this_key = txn
        .prepare_cached("DELETE FROM idempotency_keys WHERE site = $1 AND scope = $2 AND key = $3 AND created_ms < $4")
        .await?;
    txn.execute(&this_key, &[&site, &claim.scope, &claim.key, &expired_before_ms]).await?;
    let others = txn
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM idempotency_keys WHERE created_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))",
        )
        .await?;
    txn.execute(&others, &[&expired_before_ms, &IDEMPOTENCY_SWEEP_ROWS_MAX]).await?;
    Ok(())
}

/// Claims the key for this comment, or finds who claimed it first. A concurrent claim of the
/// same key waits here until the first transaction ends, then sees its row.
async fn claim_key(
    txn: &Transaction<'_>,
    comment: &Comment,
    claim: &IdempotencyClaim,
) -> Result<Option<CreateOutcome>, StoreError> {
    let insert = txn
        .prepare_cached(
            "INSERT INTO idempotency_keys (site, scope, key, request_hash, comment_id, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .await?;
    let created_ms = comment.created_at.timestamp_millis();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&comment.site, &claim.scope, &claim.key, &claim.request_hash, &comment.id.0, &created_ms];
    if txn.execute(&insert, &params).await? == 1 {
        return Ok(None);
    }
    let earlier = txn
        .prepare_cached(
            "SELECT request_hash, comment_id, position FROM idempotency_keys WHERE site = $1 AND scope = $2 AND key = $3",
        )
        .await?;
    let row = txn
        .query_opt(&earlier, &[&comment.site, &claim.scope, &claim.key])
        .await?
        .ok_or_else(|| StoreError::Unavailable("an idempotency key vanished while it was claimed; retry".into()))?;
    let hash: String = row.try_get(0)?;
    if hash != claim.request_hash {
        return Err(StoreError::IdempotencyMismatch);
    }
    let original = comment_by_id(txn, CommentId(row.try_get(1)?)).await?.ok_or(StoreError::NotFound)?;
    let position = row.try_get::<_, Option<i64>>(2)?.and_then(|p| u64::try_from(p).ok());
    Ok(Some(CreateOutcome::Replayed { comment: original, position }))
}

/// Records a created comment's write position for later replays; called after COMMIT.
pub async fn record_key_position(
    db: &impl GenericClient,
    site: &str,
    claim: &IdempotencyClaim,
    position: u64,
) -> Result<(), StoreError> {
    let position = i64::try_from(position).map_err(|_| StoreError::Internal("position out of range".into()))?;
    let statement = db
        .prepare_cached(
            "UPDATE idempotency_keys SET position = $4 WHERE site = $1 AND scope = $2 AND key = $3 AND position IS NULL",
        )
        .await?;
    db.execute(&statement, &[&site, &claim.scope, &claim.key, &position]).await?;
    Ok(())
}

async fn check_parent(txn: &Transaction<'_>, parent_id: CommentId, thread_id: i64) -> Result<(), StoreError> {
    let statement = txn.prepare_cached("SELECT thread_id, state FROM comments WHERE id = $1").await?;
    let parent = txn.query_opt(&statement, &[&parent_id.0]).await?;
    let Some(parent) = parent else {
        return Err(StoreError::Invalid(FieldError::new("parent_id", "no such comment")));
    };
    let (parent_thread, state): (i64, String) = (parent.try_get(0)?, parent.try_get(1)?);
    if parent_thread != thread_id {
        return Err(StoreError::Invalid(FieldError::new("parent_id", "must be a comment in the same thread")));
    }
    if state == CommentState::Deleted.as_str() {
        return Err(StoreError::Invalid(FieldError::new("parent_id", "the comment replied to was deleted")));
    }
    Ok(())
}

/// Edits, deletes or moderates a comment; the row is locked first so rights are checked
/// against the version being changed.
pub async fn change_in(
    txn: &Transaction<'_>,
    id: CommentId,
    change: Change,
    viewer: Viewer,
    now: DateTime<Utc>,
    edit_window_s: i64,
) -> Result<Comment, StoreError> {
    let sql = format!(
        "SELECT {COMMENT_COLUMNS} FROM comments c JOIN threads t ON t.id = c.thread_id WHERE c.id = $1 FOR UPDATE OF c"
    );
    let locked = txn.prepare_cached(&sql).await?;
    let row = txn.query_opt(&locked, &[&id.0]).await?.ok_or(StoreError::NotFound)?;
    let current = rows::comment_from_row(&row)?;
    match &change {
        Change::SetState(_) if !viewer.admin => return Err(StoreError::Denied(Denied::NotAdmin)),
        Change::SetState(_) if current.state == CommentState::Deleted => {
            return Err(StoreError::Denied(Denied::Deleted))
        }
        Change::SetState(_) => {}
        Change::Edit { .. } | Change::Delete => {
            authorize_change(&current, &viewer, now, edit_window_s).map_err(StoreError::Denied)?
        }
    }
    let now_ms = now.timestamp_millis();
    match change {
        Change::Edit { text, html } => {
            let statement =
                txn.prepare_cached("UPDATE comments SET text = $2, html = $3, edited_ms = $4 WHERE id = $1").await?;
            txn.execute(&statement, &[&id.0, &text, &html, &now_ms]).await?;
        }
        // A tombstone keeps only its place in the tree: the text and who wrote it are erased.
        Change::Delete => {
            let statement = txn
                .prepare_cached(
                    "UPDATE comments SET state = 'deleted', text = '', html = '', author = NULL, email = NULL, \
                     website = NULL, remote_addr = NULL, edited_ms = $2 WHERE id = $1",
                )
                .await?;
            txn.execute(&statement, &[&id.0, &now_ms]).await?;
        }
        Change::SetState(state) => {
            let statement = txn.prepare_cached("UPDATE comments SET state = $2 WHERE id = $1").await?;
            txn.execute(&statement, &[&id.0, &state.as_str()]).await?;
        }
    }
    comment_by_id(txn, id).await?.ok_or(StoreError::NotFound)
}
