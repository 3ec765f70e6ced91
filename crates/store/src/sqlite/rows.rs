//! Mapping between SQLite rows and domain comments, and the shared lookups.

use chrono::{DateTime, TimeZone, Utc};
use model::{Comment, CommentId, CommentState, SessionId, TextFormat, ThreadCursor};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::types::{thread_page_bounds, NO_COMMENT_SORT_MS};
use crate::{StoreError, ThreadPage, ThreadSummary};

/// Columns of `comments c JOIN threads t`, in the order `comment_from_row` reads them.
pub const COMMENT_COLUMNS: &str = "c.id, c.site, t.key, c.parent_id, c.text, c.text_format, c.html, \
     c.author, c.email, c.website, c.remote_addr, c.session_id, c.state, c.created_ms, c.edited_ms";

pub fn ms_to_time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| StoreError::Internal(format!("timestamp {ms} out of range")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("unknown {what} {value:?} in the database"))
}

/// Raw column values, read inside rusqlite's row callback (which cannot return our errors).
pub struct RawComment {
    id: i64,
    site: String,
    thread_key: String,
    parent_id: Option<i64>,
    text: String,
    text_format: String,
    html: String,
    author: Option<String>,
    email: Option<String>,
    website: Option<String>,
    remote_addr: Option<String>,
    session_id: Option<String>,
    state: String,
    created_ms: i64,
    edited_ms: Option<i64>,
}

pub fn raw_from_row(row: &Row<'_>) -> rusqlite::Result<RawComment> {
    Ok(RawComment {
        id: row.get(0)?,
        site: row.get(1)?,
        thread_key: row.get(2)?,
        parent_id: row.get(3)?,
        text: row.get(4)?,
        text_format: row.get(5)?,
        html: row.get(6)?,
        author: row.get(7)?,
        email: row.get(8)?,
        website: row.get(9)?,
        remote_addr: row.get(10)?,
        session_id: row.get(11)?,
        state: row.get(12)?,
        created_ms: row.get(13)?,
        edited_ms: row.get(14)?,
    })
}

impl RawComment {
    pub fn into_comment(self) -> Result<Comment, StoreError> {
        Ok(Comment {
            id: CommentId(self.id),
            site: self.site,
            thread_key: self.thread_key,
            parent_id: self.parent_id.map(CommentId),
            text_format: TextFormat::parse(&self.text_format)
                .ok_or_else(|| corrupt("text format", &self.text_format))?,
            text: self.text,
            html: self.html,
            author: self.author,
            email: self.email,
            website: self.website,
            remote_addr: self.remote_addr,
            session_id: match self.session_id {
                Some(hex) => Some(SessionId::from_hex(&hex).ok_or_else(|| corrupt("session id", &hex))?),
                None => None,
            },
            state: CommentState::parse(&self.state).ok_or_else(|| corrupt("state", &self.state))?,
            created_at: ms_to_time(self.created_ms)?,
            edited_at: self.edited_ms.map(ms_to_time).transpose()?,
        })
    }
}

pub fn comment_by_id(conn: &Connection, id: CommentId) -> Result<Option<Comment>, StoreError> {
    let sql = format!("SELECT {COMMENT_COLUMNS} FROM comments c JOIN threads t ON t.id = c.thread_id WHERE c.id = ?1");
    let raw = conn.prepare_cached(&sql)?.query_row(params![id.0], raw_from_row).optional()?;
    raw.map(RawComment::into_comment).transpose()
}

/// A thread's row id and key, by key first and then by alias.
pub fn find_thread(
    conn: &Connection,
    site: &str,
    lookup_keys: &[String],
) -> Result<Option<(i64, String, Option<String>)>, StoreError> {
    let mut by_key = conn.prepare_cached("SELECT id, key, title FROM threads WHERE site = ?1 AND key = ?2")?;
    let mut by_alias = conn.prepare_cached(
        "SELECT t.id, t.key, t.title FROM thread_aliases a JOIN threads t ON t.id = a.thread_id \
         WHERE a.site = ?1 AND a.alias = ?2",
    )?;
    for key in lookup_keys {
        let found =
            by_key.query_row(params![site, key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    for key in lookup_keys {
        let found =
            by_alias.query_row(params![site, key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

pub fn thread_comments(conn: &Connection, thread_id: i64, rows_max: usize) -> Result<Vec<Comment>, StoreError> {
    let sql = format!(
        "SELECT {COMMENT_COLUMNS} FROM comments c JOIN threads t ON t.id = c.thread_id \
         WHERE c.thread_id = ?1 ORDER BY c.created_ms, c.id LIMIT ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![thread_id, rows_max as i64], raw_from_row)?;
    let mut comments = Vec::new();
    for raw in rows {
        comments.push(raw?.into_comment()?);
    }
    Ok(comments)
}

pub fn published_count(conn: &Connection, thread_id: i64) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM comments WHERE thread_id = ?1 AND state = 'published'")?
        .query_row(params![thread_id], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The thread list's query; `postgres::rows::THREAD_PAGE_SQL` is the same with PostgreSQL's
/// placeholders and byte-order collation. Every thread of the site is ranked by its newest
/// published comment (one probe of `comments_by_thread_state` each), so a page costs the
/// site's thread count, not its comment count; only the page's threads are counted.
/// Parameters: site, `NO_COMMENT_SORT_MS`, the cursor's sort key and key (NULLs for the first
/// page), rows wanted.
const THREAD_PAGE_SQL: &str = "
    WITH ranked AS MATERIALIZED (
        SELECT t.id, t.key, t.title,
               coalesce((SELECT max(c.created_ms) FROM comments c
                         WHERE c.thread_id = t.id AND c.state = 'published'), ?2) AS sort_ms
        FROM threads t WHERE t.site = ?1),
    page AS MATERIALIZED (
        SELECT * FROM ranked
        WHERE ?3 IS NULL OR sort_ms < ?3 OR (sort_ms = ?3 AND key > ?4)
        ORDER BY sort_ms DESC, key LIMIT ?5)
    SELECT key, title, nullif(sort_ms, ?2),
           (SELECT count(*) FROM comments c WHERE c.thread_id = page.id AND c.state = 'published')
    FROM page ORDER BY sort_ms DESC, key";

/// One page of a site's threads (see `Store::threads`).
pub fn thread_page(
    conn: &Connection,
    site: &str,
    after: Option<&ThreadCursor>,
    limit: usize,
) -> Result<ThreadPage, StoreError> {
    let (after_sort_ms, after_key) = thread_page_bounds(after);
    // One row more than the page shows tells whether another page follows.
    let rows_wanted = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(THREAD_PAGE_SQL)?;
    let rows =
        statement.query_map(params![site, NO_COMMENT_SORT_MS, after_sort_ms, after_key, rows_wanted], |row| {
            Ok(ThreadSummary {
                key: row.get(0)?,
                title: row.get(1)?,
                last_comment_ms: row.get(2)?,
                published_count: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
            })
        })?;
    Ok(ThreadPage::from_rows(rows.collect::<Result<Vec<_>, _>>()?, limit))
}

/// Inserts one comment row; `source` fields are for imports.
pub fn insert_comment(
    conn: &Connection,
    comment: &Comment,
    thread_id: i64,
    source: Option<(&str, &str, Option<&str>)>,
) -> Result<bool, StoreError> {
    let (source_name, source_id, parent_source_id) = match source {
        Some((name, id, parent)) => (Some(name), Some(id), parent),
        None => (None, None, None),
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO comments (id, site, thread_id, parent_id, text, text_format, html, author, email, \
             website, remote_addr, session_id, state, created_ms, edited_ms, source, source_id, parent_source_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
             ON CONFLICT (site, source, source_id) WHERE source IS NOT NULL DO NOTHING",
        )?
        .execute(params![
            comment.id.0,
            comment.site,
            thread_id,
            comment.parent_id.map(|p| p.0),
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
            source_name,
            source_id,
            parent_source_id,
        ])?;
    Ok(inserted == 1)
}

/// Finds or creates a thread by (site, key), keeping the first title it was given.
pub fn upsert_thread(
    conn: &Connection,
    site: &str,
    key: &str,
    title: Option<&str>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let id = conn
        .prepare_cached(
            "INSERT INTO threads (site, key, title, created_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (site, key) DO UPDATE SET title = coalesce(threads.title, excluded.title) RETURNING id",
        )?
        .query_row(params![site, key, title, now_ms], |row| row.get(0))?;
    Ok(id)
}

pub fn add_alias(conn: &Connection, site: &str, alias: &str, thread_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO thread_aliases (site, alias, thread_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?
    .execute(params![site, alias, thread_id])?;
    Ok(())
}
