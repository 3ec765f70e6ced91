//! The real clock: the one place that reads wall-clock time for the rest of the system.

use chrono::{DateTime, Utc};

/// `model::Clock` backed by the system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl model::Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
