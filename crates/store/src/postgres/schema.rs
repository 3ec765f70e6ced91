//! PostgreSQL schema migrations, applied in order under a session advisory lock so that
//! several app servers starting at once migrate exactly once; tracked in `schema_migrations`.

use deadpool_postgres::Object;

use crate::StoreError;

/// The advisory lock key migrations hold: "afterwrd" in ASCII, so it is recognisable in
/// `pg_locks` and unlikely to collide with another application's key.
const MIGRATION_LOCK_KEY: i64 = 0x6166_7465_7277_7264;

/// Each entry moves the schema from version `i` to `i + 1`. Never edit a released entry.
/// Times are Unix milliseconds in `bigint`s, as in the SQLite schema, so both stores map rows
/// the same way.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE threads (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site       text NOT NULL,
    key        text NOT NULL,
    title      text,
    created_ms bigint NOT NULL,
    UNIQUE (site, key)
);

-- Other names a thread is known by: an exporter's page id, its old URL.
CREATE TABLE thread_aliases (
    site      text NOT NULL,
    alias     text NOT NULL,
    thread_id bigint NOT NULL REFERENCES threads (id),
    PRIMARY KEY (site, alias)
);

CREATE TABLE comments (
    id               bigint PRIMARY KEY,
    site             text NOT NULL,
    thread_id        bigint NOT NULL REFERENCES threads (id),
    parent_id        bigint REFERENCES comments (id),
    text             text NOT NULL,
    text_format      text NOT NULL,
    html             text NOT NULL,
    author           text,
    email            text,
    website          text,
    remote_addr      text,
    session_id       text,
    state            text NOT NULL,
    created_ms       bigint NOT NULL,
    edited_ms        bigint,
    source           text,
    source_id        text,
    parent_source_id text,
    -- What an import last wrote (`store::import_digest`): a re-import updates upstream edits
    -- but never overwrites a comment edited, deleted or moderated here.
    source_digest    text,
    -- The last import run that met the row (`ImportBatch::run_id`): a source id repeated
    -- within one export is a duplicate.
    import_run       bigint
);

CREATE INDEX comments_by_thread ON comments (thread_id, created_ms, id);
CREATE INDEX comments_by_parent ON comments (parent_id);
CREATE UNIQUE INDEX comments_by_source ON comments (site, source, source_id) WHERE source IS NOT NULL;

-- `position` is filled in after COMMIT (a write's position exists only then); a replay that
-- finds it empty reports the primary's position at the time of the replay, also after it.
CREATE TABLE idempotency_keys (
    site         text NOT NULL,
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    comment_id   bigint NOT NULL,
    position     bigint,
    created_ms   bigint NOT NULL,
    PRIMARY KEY (site, scope, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_ms);

-- Node ids leased by app servers (DESIGN "IDs"); times are the database's clock.
CREATE TABLE node_leases (
    node_id     integer PRIMARY KEY CHECK (node_id BETWEEN 0 AND 1023),
    holder      text NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
"#,
    // 2: the thread list (`Store::threads`) ranks every thread of a site by its newest published
    // comment. With this index that is one seek per thread, and counting a thread's published
    // comments is an index-only scan, instead of reading every comment row of the site.
    r#"
CREATE INDEX comments_by_thread_state ON comments (thread_id, state, created_ms);
"#,
];

pub fn schema_version_latest() -> usize {
    MIGRATIONS.len()
}

/// Brings the database up to the newest schema; each step is its own transaction. The lock is
/// a session lock: if this connection dies mid-way, PostgreSQL releases it.
pub async fn migrate(client: &mut Object) -> Result<usize, StoreError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let outcome = migrate_locked(client).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await;
    let version = outcome?;
    unlocked?;
    Ok(version)
}

async fn migrate_locked(client: &mut Object) -> Result<usize, StoreError> {
    let tracked: bool =
        client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]).await?.try_get(0)?;
    if !tracked {
        client
            .batch_execute(
                "CREATE TABLE schema_migrations (
                     version    integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await?;
    }
    let row = client.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await?;
    let current = usize::try_from(row.try_get::<_, i32>(0)?).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "database schema version {current} is newer than this build knows ({}); upgrade afterword",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(index + 1).map_err(|_| StoreError::Internal("too many migrations".into()))?;
        let txn = client.transaction().await?;
        txn.batch_execute(sql).await?;
        txn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&version]).await?;
        txn.commit().await?;
    }
    Ok(MIGRATIONS.len())
}
