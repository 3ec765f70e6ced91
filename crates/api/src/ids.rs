//! Where an app server's comment ids come from: a node id fixed for the process (embedded
//! SQLite: node 0) or one leased from the shared store (PostgreSQL), which may be lost and
//! re-acquired as another node id. No lease held, no ids (DESIGN "IDs").

use std::sync::{Arc, Mutex, PoisonError};

use model::{CommentId, IdError, IdGenerator};
use store::NodeLease;

pub enum IdSource {
    /// A node id this process owns outright, already resumed after the highest stored id.
    Fixed(IdGenerator),
    /// A node id leased from the store and renewed in the background.
    Leased(Arc<NodeLease>),
}

impl From<IdGenerator> for IdSource {
    fn from(generator: IdGenerator) -> Self {
        IdSource::Fixed(generator)
    }
}

impl From<Arc<NodeLease>> for IdSource {
    fn from(lease: Arc<NodeLease>) -> Self {
        IdSource::Leased(lease)
    }
}

pub(crate) struct Ids {
    lease: Option<Arc<NodeLease>>,
    current: Mutex<Current>,
}

/// The generator for the lease epoch it was made for (0 for a fixed node id).
struct Current {
    epoch: u64,
    generator: Option<IdGenerator>,
}

impl Ids {
    pub fn new(source: IdSource) -> Self {
        let (lease, current) = match source {
            IdSource::Fixed(generator) => (None, Current { epoch: 0, generator: Some(generator) }),
            IdSource::Leased(lease) => (Some(lease), Current { epoch: 0, generator: None }),
        };
        Self { lease, current: Mutex::new(current) }
    }

    /// The next id, with `now_unix_ms` read under the lock: readings taken before it could
    /// reach the generator out of order and look like a clock going backwards.
    pub fn next_id(&self, now_unix_ms: impl FnOnce() -> i64) -> Result<CommentId, IdError> {
        // The generator's state stays consistent even if a holder panicked: take it back.
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lease) = &self.lease {
            let held = lease.current().ok_or(IdError::NotLeased)?;
            if current.epoch != held.epoch || current.generator.is_none() {
                let mut generator = IdGenerator::new(held.node)?;
                if let Some(last) = held.resume_after {
                    generator.resume_after(last);
                }
                *current = Current { epoch: held.epoch, generator: Some(generator) };
            }
        }
        match current.generator.as_mut() {
            Some(generator) => generator.next_id(now_unix_ms()),
            None => Err(IdError::NotLeased),
        }
    }
}
