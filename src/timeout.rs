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
    match hub::deadline_after(timeout) {
        Some(deadline) => with_deadline(deadline, f),
        // Past the clock's range: the time never runs out.
        None => Ok(f()),
    }
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
    // Unless it did land, in a patched libc call, which cannot unwind
    // through its C frame: that call failed with ETIMEDOUT instead, and the
    // section ends with the timeout all the same.
    #[cfg(feature = "monkey")]
    let deferred = crate::monkey::take_deferred(&cur, token);
    if cur.throw.get() == token {
        cur.throw.set(core::THROW_NONE);
        #[cfg(feature = "monkey")]
        if deferred {
            return Err(Elapsed);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::greenlet::core::token_before;

    #[test]
    fn tokens_order_across_the_wrap() {
        assert!(token_before(2, 3));
        assert!(!token_before(3, 2));
        assert!(!token_before(5, 5));
        assert!(
            token_before(u32::MAX, 2),
            "the wrap: MAX was issued just before 2"
        );
        assert!(!token_before(2, u32::MAX));
        assert!(token_before(u32::MAX - 10, 7));
    }

    /// An outer section issued just before the token counter wraps and an
    /// inner one just after, both expiring in the same hub turn: the outer
    /// one must win (before the fix the inner one did, and the outer
    /// section went on past its deadline).
    #[test]
    fn outer_timeout_wins_across_the_token_wrap() {
        std::thread::spawn(|| {
            hub::with(|h| h.next_token.set(u32::MAX));
            let victim = crate::spawn(|| {
                with_timeout(Duration::from_millis(6), || {
                    with_timeout(Duration::from_millis(5), || crate::sleep(Duration::from_secs(5)))
                })
            });
            crate::yield_now();
            // Both deadlines pass while the hub is held up here, so both
            // throws are delivered in one turn.
            std::thread::sleep(Duration::from_millis(30));
            assert_eq!(
                victim.join().unwrap(),
                Err(Elapsed),
                "the outer section must expire"
            );
        })
        .join()
        .unwrap();
    }
}
