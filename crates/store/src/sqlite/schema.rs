//! SQLite schema migrations, applied in order at start-up and tracked by `PRAGMA user_version`.

use rusqlite::Connection;

use crate::StoreError;

/// Each entry moves the schema from version `i` to `i + 1`. Never edit a released entry.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The position counter: bumped by every write transaction, read by every read snapshot.
CREATE TABLE commit_counter (
    only_row   INTEGER PRIMARY KEY CHECK (only_row = 1),
    commit_pos INTEGER NOT NULL
) STRICT;
INSERT INTO commit_counter (only_row, commit_pos) VALUES (1, 0);

CREATE TABLE threads (
    id         INTEGER PRIMARY KEY,
    site       TEXT NOT NULL,
    key        TEXT NOT NULL,
    title      TEXT,
    created_ms INTEGER NOT NULL,
    UNIQUE (site, key)
) STRICT;

-- Other names a thread is known by: an exporter's page id, its old URL.
CREATE TABLE thread_aliases (
    site      TEXT NOT NULL,
    alias     TEXT NOT NULL,
    thread_id INTEGER NOT NULL REFERENCES threads (id),
    PRIMARY KEY (site, alias)
) STRICT;

CREATE TABLE comments (
    id               INTEGER PRIMARY KEY,
    site             TEXT NOT NULL,
    thread_id        INTEGER NOT NULL REFERENCES threads (id),
    parent_id        INTEGER REFERENCES comments (id),
    text             TEXT NOT NULL,
    text_format      TEXT NOT NULL,
    html             TEXT NOT NULL,
    author           TEXT,
    email            TEXT,
    website          TEXT,
    remote_addr      TEXT,
    session_id       TEXT,
    state            TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    edited_ms        INTEGER,
    source           TEXT,
    source_id        TEXT,
    parent_source_id TEXT
) STRICT;

CREATE INDEX comments_by_thread ON comments (thread_id, created_ms, id);
CREATE INDEX comments_by_parent ON comments (parent_id);
CREATE UNIQUE INDEX comments_by_source ON comments (site, source, source_id) WHERE source IS NOT NULL;

CREATE TABLE idempotency_keys (
    site         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    comment_id   INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (site, scope, key)
) STRICT;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_ms);
"#,
    // 2: what an import last wrote into a comment (`store::import_digest`), so that a re-import
    // updates upstream edits but never overwrites a comment edited, deleted or moderated here; and
    // the last import run that met the row, so a source id repeated within one export is a duplicate.
    r#"
ALTER TABLE comments ADD COLUMN source_digest TEXT;
ALTER TABLE comments ADD COLUMN import_run INTEGER;
"#,
    // 3: the thread list (`Store::threads`) ranks every thread of a site by its newest published
    // comment. With this index that is one seek per thread, and counting a thread's published
    // comments reads the index alone, instead of every comment row of the site.
    r#"
CREATE INDEX comments_by_thread_state ON comments (thread_id, state, created_ms);
"#,
];

/// Brings the database up to the newest schema; each step is its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "database schema version {current} is newer than this build knows ({}); upgrade afterword",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        txn.execute_batch(sql)?;
        txn.pragma_update(None, "user_version", index + 1)?;
        txn.commit()?;
    }
    Ok(())
}

pub fn schema_version_latest() -> usize {
    MIGRATIONS.len()
}
