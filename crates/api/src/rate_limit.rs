//! Write rate limits per client address and per session (GCRA via governor, in-process).
//! Scaled-out deployments will share them through Redis; the rule stays the same.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use model::SessionId;

use crate::config::RateLimits;
use crate::error::ApiError;

/// Above this many tracked keys, keys whose allowance has fully refilled are dropped.
const TRACKED_KEYS_MAX: usize = 100_000;

pub struct WriteLimiter {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_session: DefaultKeyedRateLimiter<SessionId>,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl WriteLimiter {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            by_address: RateLimiter::keyed(quota(limits.writes_per_minute_per_address, limits.write_burst)),
            by_session: RateLimiter::keyed(quota(limits.writes_per_minute_per_session, limits.write_burst)),
        }
    }

    /// Takes one write from both allowances, or says how long to wait.
    pub fn check(&self, address: IpAddr, session: Option<SessionId>) -> Result<(), ApiError> {
        if self.by_address.len() > TRACKED_KEYS_MAX {
            self.by_address.retain_recent();
        }
        if self.by_session.len() > TRACKED_KEYS_MAX {
            self.by_session.retain_recent();
        }
        let now = DefaultClock::default().now();
        if let Err(not_until) = self.by_address.check_key(&address) {
            return Err(retry_after(not_until.wait_time_from(now)));
        }
        if let Some(session) = session {
            if let Err(not_until) = self.by_session.check_key(&session) {
                return Err(retry_after(not_until.wait_time_from(now)));
            }
        }
        Ok(())
    }
}

fn retry_after(wait: std::time::Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited { retry_after_s: seconds.max(1) }
}
