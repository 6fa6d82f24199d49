//! Timeouts over any blocking section (gevent's `Timeout`, asyncio's
//! `wait_for`).

use std::any::TypeId;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::greenlet::core::{self, TimeoutUnwind};
use crate::hub::{self, timers::Action};

/// The time of a [`with_timeout`] section ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, Elapsed)
    }
}

/// Runs `f` in the current green thread, giving up after `timeout`: if `f`
/// is still blocked then, it is unwound from the point where it waits
/// (destructors run) and `Err(Elapsed)` is returned. Timeouts nest; each
/// catches only its own expiry. A section that never blocks cannot be cut
/// short: the timeout takes effect at its next blocking call.
///
/// # Blocking
/// As `f`.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, with_timeout, Elapsed};
///
/// let r = with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(5)));
/// assert_eq!(r, Err(Elapsed));
/// let r = with_timeout(Duration::from_secs(5), || 42);
/// assert_eq!(r, Ok(42));
/// ```
pub fn with_timeout<T>(timeout: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    match hub::deadline_after(timeout) {
        Some(deadline) => with_deadline(deadline, f),
        // Past the clock's range: the time never runs out.
        None => Ok(f()),
    }
}

/// [`with_timeout`] with an absolute deadline.
///
/// # Blocking
/// As `f`.
pub fn with_deadline<T>(deadline: Instant, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let cur = core::current();
    let token = hub::with(|h| h.token());
    let key = hub::with(|h| {
        h.timers
            .borrow_mut()
            .insert(deadline, Action::Throw(cur.clone(), token))
    });
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    hub::with(|h| h.timers.borrow_mut().remove(key));
    // A throw that fired but did not land (the section ended first) must
    // not hit whatever this green thread does next.
    if cur.throw.get() == token {
        cur.throw.set(core::THROW_NONE);
    }
    match result {
        Ok(v) => Ok(v),
        Err(p) if (*p).type_id() == TypeId::of::<TimeoutUnwind>() => {
            let ours = p.downcast_ref::<TimeoutUnwind>().is_some_and(|t| t.0 == token);
            if ours {
                Err(Elapsed)
            } else {
                panic::resume_unwind(p)
            }
        }
        Err(p) => panic::resume_unwind(p),
    }
}
