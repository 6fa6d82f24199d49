//! Waiting on several things at once (asyncio's `wait`, `as_completed`,
//! `gather`; gevent's `iwait`, `joinall`).
//!
//! [`Waitable`] is what can be waited on: [`JoinHandle`](crate::JoinHandle)s,
//! and the events and results of [`sync`](crate::sync).

use crate::hub::Waker;

/// Something a green thread can wait for: it becomes ready once, and stays
/// ready.
///
/// A waiter checks [`is_ready`](Waitable::is_ready), and if not, parks
/// (through [`hub::park`](crate::hub::park)) after calling
/// [`register`](Waitable::register) with its waker on every item it waits
/// for; the first to become ready wakes it, and the other registrations go
/// stale (implementations drop stale wakers, see
/// [`Waker::is_waiting`]).
///
/// ```
/// use greenhub::wait::Waitable;
/// let h = greenhub::spawn(|| 1);
/// assert!(!h.is_ready());
/// greenhub::hub::park(None, |w| h.register(w));
/// assert!(h.is_ready());
/// ```
pub trait Waitable {
    /// Whether it is ready (a wait on it returns at once).
    fn is_ready(&self) -> bool;
    /// Arranges for `waker` to be woken when it becomes ready (at once if it
    /// already is).
    fn register(&self, waker: &Waker);
}
