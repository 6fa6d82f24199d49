//! Back-off after `accept` ran out of a resource: with the process out of
//! fds (`EMFILE`), the system out of them (`ENFILE`) or of buffers
//! (`ENOBUFS`, `ENOMEM`), the connection stays queued and accept fails at
//! once, so a loop that retries at once spins (and, never parking, starves
//! every other green thread, including the ones whose ending would free an
//! fd). gevent's server sleeps and retries; so do `StreamServer` and every
//! listener's `accept`: 5 ms, doubling up to 1 s while the shortage lasts.

use std::io;
use std::time::Duration;

/// First pause after accept ran out of a resource; it doubles up to
/// [`MAX`] while the shortage lasts.
pub(crate) const START: Duration = Duration::from_millis(5);
pub(crate) const MAX: Duration = Duration::from_secs(1);

/// Out of fds or memory: retrying at once would spin until something frees.
pub(crate) fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The pause after `steps` failures in a row (`steps` >= 1).
pub(crate) fn delay(steps: u8) -> Duration {
    let doublings = u32::from(steps.saturating_sub(1).min(16));
    START.saturating_mul(1 << doublings).min(MAX)
}

/// The failure count after an accept that gave `result`: back to 0 on
/// success, one more when out of resources, unchanged otherwise.
pub(crate) fn next<T>(steps: u8, result: &io::Result<T>) -> u8 {
    match result {
        Ok(_) => 0,
        Err(e) if is_out_of_resources(e) => steps.saturating_add(1),
        Err(_) => steps,
    }
}
