//! The two halves of SQLite concurrency: one writer thread fed by a bounded channel, and a
//! bounded pool of read-only connections used from `spawn_blocking`.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::StoreError;

pub type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// Starts the writer thread that owns `conn`; it ends when every sender is dropped.
pub fn spawn_writer(mut conn: Connection, queue_len_max: usize) -> Result<mpsc::Sender<WriteJob>, StoreError> {
    let (sender, mut receiver) = mpsc::channel::<WriteJob>(queue_len_max.max(1));
    std::thread::Builder::new()
        .name("afterword-sqlite-writer".into())
        .spawn(move || {
            while let Some(job) = receiver.blocking_recv() {
                // A panicking job must not take the only writer down with it; its caller sees
                // the dropped reply as an internal error.
                if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
                    tracing::error!("a SQLite write job panicked; the writer carries on");
                }
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
    Ok(sender)
}

/// Runs `work` in a `BEGIN IMMEDIATE` transaction after bumping the commit counter, so every
/// write has a position strictly above every earlier one.
pub fn run_write<T>(
    conn: &mut Connection,
    work: impl FnOnce(&Transaction<'_>, u64) -> Result<T, StoreError>,
) -> Result<(T, u64), StoreError> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pos: i64 = txn.query_row(
        "UPDATE commit_counter SET commit_pos = commit_pos + 1 WHERE only_row = 1 RETURNING commit_pos",
        [],
        |row| row.get(0),
    )?;
    let pos = u64::try_from(pos).map_err(|_| StoreError::Internal("negative commit position".into()))?;
    let value = work(&txn, pos)?;
    txn.commit()?;
    Ok((value, pos))
}

/// Sends a job to the writer and waits for its reply.
pub async fn submit_write<T: Send + 'static>(
    writer: &mpsc::Sender<WriteJob>,
    queue_wait_ms_max: u64,
    work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (reply, replied) = oneshot::channel();
    let job: WriteJob = Box::new(move |conn| {
        let _ = reply.send(work(conn));
    });
    writer.send_timeout(job, Duration::from_millis(queue_wait_ms_max)).await.map_err(|e| match e {
        mpsc::error::SendTimeoutError::Timeout(_) => StoreError::Unavailable("the write queue is full".into()),
        mpsc::error::SendTimeoutError::Closed(_) => StoreError::Unavailable("the writer has stopped".into()),
    })?;
    replied.await.map_err(|_| StoreError::Internal("the write job ended without a reply".into()))?
}

/// Read-only connections, at most `readers_max` in use at once.
pub struct ReaderPool {
    path: PathBuf,
    busy_timeout_ms: u64,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    wait_ms_max: u64,
}

impl ReaderPool {
    pub fn new(path: &Path, readers_max: usize, busy_timeout_ms: u64, wait_ms_max: u64) -> Self {
        Self {
            path: path.to_owned(),
            busy_timeout_ms,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(readers_max.max(1)),
            wait_ms_max,
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(Duration::from_millis(self.busy_timeout_ms))?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let reused = self.idle.lock().map_err(|_| StoreError::Internal("reader pool poisoned".into()))?.pop();
        match reused {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Runs `work` in one read snapshot and returns the commit position that snapshot holds.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(T, u64), StoreError> {
        let permit = tokio::time::timeout(Duration::from_millis(self.wait_ms_max), self.permits.acquire())
            .await
            .map_err(|_| StoreError::Unavailable("every reader is busy".into()))?
            .map_err(|_| StoreError::Unavailable("the reader pool is closed".into()))?;
        let pool = Arc::clone(self);
        let outcome = tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = read_in_snapshot(&conn, work);
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?;
        drop(permit);
        outcome
    }
}

fn read_in_snapshot<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<(T, u64), StoreError> {
    // A deferred transaction takes its snapshot at the first read: the counter and the rows
    // below come from the same snapshot, so the position covers exactly what was returned.
    let txn = conn.unchecked_transaction()?;
    let pos: i64 = txn.query_row("SELECT commit_pos FROM commit_counter WHERE only_row = 1", [], |row| row.get(0))?;
    let value = work(&txn)?;
    txn.commit()?;
    let pos = u64::try_from(pos).map_err(|_| StoreError::Internal("negative commit position".into()))?;
    Ok((value, pos))
}
