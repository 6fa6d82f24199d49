//! Timeouts over any blocking section (gevent's `Timeout`, asyncio's
//! `wait_for`).

use std::any::TypeId;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::greenlet::core::{self, TimeoutUnwind};
use crate::hub::{self, timers::Action};

/// The time of a [`with_timeout`] section ran out. Converts to an
/// `io::Error` of kind `TimedOut`, so `?` works in I/O code.
///
/// ```
/// use std::time::Duration;
/// fn slow() -> std::io::Result<()> {
///     greenhub::with_timeout(Duration::from_millis(1), || greenhub::sleep(Duration::from_secs(5)))?;
///     Ok(())
/// }
/// assert_eq!(slow().unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// ```
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
#[doc(alias = "Timeout")]
#[doc(alias = "wait_for")]
pub fn with_timeout<T>(timeout: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    with_deadline(Instant::now() + timeout, f)
}

/// [`with_timeout`] with an absolute deadline: several sections can share
/// one deadline without a retry stretching it.
///
/// # Blocking
/// As `f`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(30);
/// let first = greenhub::with_deadline(deadline, || greenhub::sleep(Duration::from_millis(10)));
/// assert!(first.is_ok());
/// let second = greenhub::with_deadline(deadline, || greenhub::sleep(Duration::from_secs(5)));
/// assert_eq!(second, Err(greenhub::Elapsed)); // the same deadline, 20 ms later
/// ```
#[doc(alias = "Timeout")]
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
