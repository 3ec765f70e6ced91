//! Mapping between PostgreSQL rows and domain comments, and the lookups shared by reads and
//! writes. Same columns and rules as `sqlite/rows.rs`, so both stores answer alike.

use deadpool_postgres::GenericClient;
use model::{Comment, CommentId, CommentState, SessionId, TextFormat, ThreadCursor};
use tokio_postgres::Row;

use crate::sqlite::rows::ms_to_time;
use crate::types::{thread_page_bounds, NO_COMMENT_SORT_MS};
use crate::{StoreError, ThreadPage, ThreadSummary};

/// Columns of `comments c JOIN threads t`, in the order `comment_from_row` reads them.
pub const COMMENT_COLUMNS: &str = "c.id, c.site, t.key, c.parent_id, c.text, c.text_format, c.html, \
     c.author, c.email, c.website, c.remote_addr, c.session_id, c.state, c.created_ms, c.edited_ms";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("unknown {what} {value:?} in the database"))
}

pub fn comment_from_row(row: &Row) -> Result<Comment, StoreError> {
    let text_format: String = row.try_get(5)?;
    let session_id: Option<String> = row.try_get(11)?;
    let state: String = row.try_get(12)?;
    Ok(Comment {
        id: CommentId(row.try_get(0)?),
        site: row.try_get(1)?,
        thread_key: row.try_get(2)?,
        parent_id: row.try_get::<_, Option<i64>>(3)?.map(CommentId),
        text: row.try_get(4)?,
        text_format: TextFormat::parse(&text_format).ok_or_else(|| corrupt("text format", &text_format))?,
        html: row.try_get(6)?,
        author: row.try_get(7)?,
        email: row.try_get(8)?,
        website: row.try_get(9)?,
        remote_addr: row.try_get(10)?,
        session_id: match session_id {
            Some(hex) => Some(SessionId::from_hex(&hex).ok_or_else(|| corrupt("session id", &hex))?),
            None => None,
        },
        state: CommentState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        created_at: ms_to_time(row.try_get(13)?)?,
        edited_at: row.try_get::<_, Option<i64>>(14)?.map(ms_to_time).transpose()?,
    })
}

pub async fn comment_by_id(db: &impl GenericClient, id: CommentId) -> Result<Option<Comment>, StoreError> {
    let sql = format!("SELECT {COMMENT_COLUMNS} FROM comments c JOIN threads t ON t.id = c.thread_id WHERE c.id = $1");
    let statement = db.prepare_cached(&sql).await?;
    db.query_opt(&statement, &[&id.0]).await?.as_ref().map(comment_from_row).transpose()
}

/// A thread's row id, key and title: by key first, then by alias, like the SQLite store.
pub async fn find_thread(
    db: &impl GenericClient,
    site: &str,
    lookup_keys: &[String],
) -> Result<Option<(i64, String, Option<String>)>, StoreError> {
    let by_key = db.prepare_cached("SELECT id, key, title FROM threads WHERE site = $1 AND key = $2").await?;
    let by_alias = db
        .prepare_cached(
            "SELECT t.id, t.key, t.title FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
             WHERE a.site = $1 AND a.alias = $2",
        )
        .await?;
    for statement in [&by_key, &by_alias] {
        for key in lookup_keys {
            if let Some(row) = db.query_opt(statement, &[&site, key]).await? {
                return Ok(Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)));
            }
        }
    }
    Ok(None)
}

pub async fn thread_comments(
    db: &impl GenericClient,
    thread_id: i64,
    rows_max: usize,
) -> Result<Vec<Comment>, StoreError> {
    let sql = format!(
        "SELECT {COMMENT_COLUMNS} FROM comments c JOIN threads t ON t.id = c.thread_id \
         WHERE c.thread_id = $1 ORDER BY c.created_ms, c.id LIMIT $2"
    );
    let statement = db.prepare_cached(&sql).await?;
    let limit = i64::try_from(rows_max).unwrap_or(i64::MAX);
    db.query(&statement, &[&thread_id, &limit]).await?.iter().map(comment_from_row).collect()
}

pub async fn published_count(db: &impl GenericClient, thread_id: i64) -> Result<u64, StoreError> {
    let statement =
        db.prepare_cached("SELECT count(*) FROM comments WHERE thread_id = $1 AND state = 'published'").await?;
    let count: i64 = db.query_one(&statement, &[&thread_id]).await?.try_get(0)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// `sqlite::rows::THREAD_PAGE_SQL` with PostgreSQL's placeholders; keys compare in byte
/// order (`COLLATE "C"`), as SQLite compares them, so both stores page alike.
const THREAD_PAGE_SQL: &str = "
    WITH ranked AS MATERIALIZED (
        SELECT t.id, t.key, t.title,
               coalesce((SELECT max(c.created_ms) FROM comments c
                         WHERE c.thread_id = t.id AND c.state = 'published'), $2) AS sort_ms
        FROM threads t WHERE t.site = $1),
    page AS MATERIALIZED (
        SELECT * FROM ranked
        WHERE $3::bigint IS NULL OR sort_ms < $3 OR (sort_ms = $3 AND key COLLATE \"C\" > $4)
        ORDER BY sort_ms DESC, key COLLATE \"C\" LIMIT $5)
    SELECT key, title, nullif(sort_ms, $2),
           (SELECT count(*) FROM comments c WHERE c.thread_id = page.id AND c.state = 'published')
    FROM page ORDER BY sort_ms DESC, key COLLATE \"C\"";

/// One page of a site's threads (see `Store::threads`).
pub async fn thread_page(
    db: &impl GenericClient,
    site: &str,
    after: Option<&ThreadCursor>,
    limit: usize,
) -> Result<ThreadPage, StoreError> {
    let (after_sort_ms, after_key) = thread_page_bounds(after);
    // One row more than the page shows tells whether another page follows.
    let rows_wanted = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let statement = db.prepare_cached(THREAD_PAGE_SQL).await?;
    let rows = db.query(&statement, &[&site, &NO_COMMENT_SORT_MS, &after_sort_ms, &after_key, &rows_wanted]).await?;
    let threads = rows
        .iter()
        .map(|row| {
            Ok(ThreadSummary {
                key: row.try_get(0)?,
                title: row.try_get(1)?,
                last_comment_ms: row.try_get(2)?,
                published_count: u64::try_from(row.try_get::<_, i64>(3)?).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(ThreadPage::from_rows(threads, limit))
}

/// Inserts one comment made through the API (imports insert their own rows, with sources).
pub async fn insert_comment(db: &impl GenericClient, comment: &Comment, thread_id: i64) -> Result<(), StoreError> {
    let statement = db
        .prepare_cached(
            "INSERT INTO comments (id, site, thread_id, parent_id, text, text_format, html, author, email, \
             website, remote_addr, session_id, state, created_ms, edited_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await?;
    db.execute(
        &statement,
        &[
            &comment.id.0,
            &comment.site,
            &thread_id,
            &comment.parent_id.map(|p| p.0),
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
        ],
    )
    .await?;
    Ok(())
}

/// Finds or creates a thread by (site, key), keeping the first title it was given. Concurrent
/// first comments wait for each other on the unique key and all get the one row.
pub async fn upsert_thread(
    db: &impl GenericClient,
    site: &str,
    key: &str,
    title: Option<&str>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let statement = db
        .prepare_cached(
            "INSERT INTO threads (site, key, title, created_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (site, key) DO UPDATE SET title = coalesce(threads.title, excluded.title) RETURNING id",
        )
        .await?;
    Ok(db.query_one(&statement, &[&site, &key, &title, &now_ms]).await?.try_get(0)?)
}

pub async fn add_alias(db: &impl GenericClient, site: &str, alias: &str, thread_id: i64) -> Result<(), StoreError> {
    let statement = db
        .prepare_cached(
            "INSERT INTO thread_aliases (site, alias, thread_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .await?;
    db.execute(&statement, &[&site, &alias, &thread_id]).await?;
    Ok(())
}
