//! Fitting the server's file descriptors into the process's open-file limit.
//!
//! Every client connection holds a descriptor, and so does every cached body kept in a memory
//! file for `sendfile`. Many systems start services with a soft limit of 1,024 (systemd's
//! default) under a far higher hard limit, while `limits.connections_max` defaults to 10,000:
//! left alone, accepting would fail with "too many open files" long before the bound, and
//! the cache's memory files could take the descriptors the store needs. So `serve` raises the
//! soft limit to the hard one (as nginx's `worker_rlimit_nofile` or Go's runtime do) and,
//! if the configured bounds still do not fit, lowers them to what does and says so.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use api::Limits;

/// Descriptors kept for everything that is neither a connection nor a memory file: the
/// listener, the store's connections and files, replica connections, logs. Under a small
/// limit, a quarter of it (so connections always get at least half).
pub const RESERVED_FDS: u64 = 256;

/// Memory files (cached bodies) may take at most this share of the limit: they only make
/// reads faster, connections are the service itself.
const MEMORY_FILES_SHARE_DIVISOR: u64 = 4;

/// What fitting lowered, for the log.
#[derive(Debug, PartialEq, Eq)]
struct Fitted {
    connections_max_lowered_from: Option<usize>,
    cache_files_max_lowered_from: Option<usize>,
}

/// Raises the soft open-file limit to the hard one, then fits the connection and memory-file
/// bounds under it (nothing to fit when the limit is unlimited).
pub fn raise_and_fit(limits: &mut Limits) {
    let Some(limit) = raise_soft_limit() else {
        return;
    };
    let fitted = fit(limits, limit);
    if let Some(from) = fitted.connections_max_lowered_from {
        tracing::warn!(
            "limits.connections_max lowered from {from} to {} to fit the open-file limit ({limit}); \
             raise it (ulimit -n, systemd LimitNOFILE=) to allow more connections",
            limits.connections_max
        );
    }
    if let Some(from) = fitted.cache_files_max_lowered_from {
        tracing::info!(
            "limits.cache_files_max lowered from {from} to {} (a quarter of the open-file limit, {limit})",
            limits.cache_files_max
        );
    }
}

/// The soft limit in effect after raising it as far as the hard limit allows.
fn raise_soft_limit() -> Option<u64> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let soft = current?;
    let Some(hard) = maximum else {
        // An unlimited hard limit: the kernel still caps descriptors at `fs.nr_open`, so ask
        // for nothing and keep the soft limit.
        return Some(soft);
    };
    if hard <= soft {
        return Some(soft);
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) }) {
        Ok(()) => Some(hard),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit from {soft} to {hard}");
            Some(soft)
        }
    }
}

/// Lowers `limits.cache_files_max` to its share of `limit`, then `limits.connections_max` to
/// what is left after the reserve and the memory files.
fn fit(limits: &mut Limits, limit: u64) -> Fitted {
    let mut fitted = Fitted { connections_max_lowered_from: None, cache_files_max_lowered_from: None };
    let files_share = usize::try_from(limit / MEMORY_FILES_SHARE_DIVISOR).unwrap_or(usize::MAX);
    if limits.cache_files_max > files_share {
        fitted.cache_files_max_lowered_from = Some(limits.cache_files_max);
        limits.cache_files_max = files_share;
    }
    let files = u64::try_from(limits.cache_files_max).unwrap_or(u64::MAX);
    let reserved = RESERVED_FDS.min(limit / 4);
    let for_connections = limit.saturating_sub(reserved).saturating_sub(files).max(1);
    let for_connections = usize::try_from(for_connections).unwrap_or(usize::MAX);
    if limits.connections_max > for_connections {
        fitted.connections_max_lowered_from = Some(limits.connections_max);
        limits.connections_max = for_connections;
    }
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(connections_max: usize, cache_files_max: usize) -> Limits {
        Limits { connections_max, cache_files_max, ..Limits::default() }
    }

    #[test]
    fn a_systemd_default_limit_lowers_both_bounds_to_fit() {
        let mut limits = configured(10_000, 1_024);
        let fitted = fit(&mut limits, 1_024);
        assert_eq!(limits.cache_files_max, 256);
        assert_eq!(limits.connections_max, 1_024 - 256 - 256);
        assert_eq!(fitted.cache_files_max_lowered_from, Some(1_024));
        assert_eq!(fitted.connections_max_lowered_from, Some(10_000));
    }

    #[test]
    fn bounds_that_fit_are_left_alone() {
        let mut limits = configured(10_000, 1_024);
        let fitted = fit(&mut limits, 1_048_576);
        assert_eq!((limits.connections_max, limits.cache_files_max), (10_000, 1_024));
        assert_eq!(fitted.connections_max_lowered_from, None);
        assert_eq!(fitted.cache_files_max_lowered_from, None);
    }

    #[test]
    fn a_small_limit_leaves_half_of_it_to_connections() {
        let mut limits = configured(10_000, 1_024);
        fit(&mut limits, 256);
        assert_eq!((limits.connections_max, limits.cache_files_max), (128, 64));
        let mut limits = configured(10_000, 1_024);
        fit(&mut limits, 100);
        assert_eq!((limits.connections_max, limits.cache_files_max), (50, 25));
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let Rlimit { maximum, .. } = getrlimit(Resource::Nofile);
        let raised = raise_soft_limit();
        let Rlimit { current, .. } = getrlimit(Resource::Nofile);
        assert_eq!(raised, current, "reports the limit in effect");
        if maximum.is_some() {
            assert_eq!(current, maximum);
        }
    }
}
