//! Callbacks on the hub, as asyncio's loop has them: `call_soon`,
//! `call_later`, `call_at`.
//!
//! A callback runs on the hub itself, between green threads, and must not
//! block (it panics if it tries); spawn a green thread for blocking work.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::timers::{Action, TimerKey};
use super::{with, Ready};

/// A callback waiting to run; emptied when it runs or is cancelled.
pub(crate) struct CallSlot {
    f: Cell<Option<Box<dyn FnOnce()>>>,
}

impl CallSlot {
    pub(crate) fn take(&self) -> Option<Box<dyn FnOnce()>> {
        self.f.take()
    }
}

/// A scheduled callback, returned by [`call_soon`], [`call_later`] and
/// [`call_at`] (asyncio's `Handle`/`TimerHandle`). Dropping it does not
/// cancel the callback.
///
/// ```
/// let handle = greenhub::call_soon(|| println!("ran"));
/// assert!(handle.is_pending());
/// greenhub::yield_now();
/// assert!(!handle.is_pending());
/// ```
#[doc(alias = "TimerHandle")]
pub struct CallHandle {
    slot: Rc<CallSlot>,
    timer: Option<TimerKey>,
}

impl CallHandle {
    /// Cancels the callback if it has not run yet; returns whether it was
    /// still pending.
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenhub::call_later(Duration::from_millis(1), || panic!("cancelled"));
    /// assert!(h.cancel());
    /// greenhub::sleep(Duration::from_millis(5));
    /// assert!(!h.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        let pending = self.slot.f.take().is_some();
        if let Some(key) = self.timer {
            with(|h| h.timers.borrow_mut().remove(key));
        }
        pending
    }

    /// Whether the callback still waits to run.
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenhub::call_later(Duration::from_millis(1), || ());
    /// assert!(h.is_pending());
    /// greenhub::sleep(Duration::from_millis(5));
    /// assert!(!h.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        // Take and put back: `Cell<Option<Box<..>>>` has no peek.
        let f = self.slot.f.take();
        let pending = f.is_some();
        self.slot.f.set(f);
        pending
    }
}

impl fmt::Debug for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallHandle")
            .field("pending", &self.is_pending())
            .finish()
    }
}

pub(crate) fn slot(f: impl FnOnce() + 'static) -> Rc<CallSlot> {
    Rc::new(CallSlot {
        f: Cell::new(Some(Box::new(f))),
    })
}

/// Queues a boxed callback on this OS thread's hub, if it still exists
/// (a green thread can die while the hub is torn down).
pub(crate) fn soon(f: Box<dyn FnOnce()>) {
    let slot = Rc::new(CallSlot {
        f: Cell::new(Some(f)),
    });
    let _ = super::try_with(|h| h.push(Ready::call(slot)));
}

/// Runs `f` on the hub as soon as possible: after what is already queued,
/// before any timer due later. The one exception is an overloaded hub: when
/// a turn runs the queue for longer than its slice (about 250 us), the next
/// turn runs the timers and I/O that came due first, so a flood of queued
/// work cannot hold them up (as gevent bounds its callbacks by its switch
/// interval).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// greenhub::call_soon(move || l.borrow_mut().push("soon"));
/// greenhub::yield_now();
/// assert_eq!(*log.borrow(), ["soon"]);
/// ```
pub fn call_soon(f: impl FnOnce() + 'static) -> CallHandle {
    let slot = slot(f);
    with(|h| h.push(Ready::call(slot.clone())));
    CallHandle { slot, timer: None }
}

/// Runs `f` on the hub after `delay`.
///
/// ```
/// use std::time::Duration;
/// greenhub::call_later(Duration::from_millis(5), || println!("later"));
/// greenhub::sleep(Duration::from_millis(10));
/// ```
pub fn call_later(delay: Duration, f: impl FnOnce() + 'static) -> CallHandle {
    match super::deadline_after(delay) {
        Some(when) => call_at(when, f),
        // Past the clock's range: never due, but still cancellable.
        None => CallHandle {
            slot: slot(f),
            timer: None,
        },
    }
}

/// Runs `f` on the hub at `when` (on the [`now`](crate::now) clock). Timers
/// fire in deadline order, FIFO among equal deadlines.
///
/// ```
/// use std::time::Duration;
/// let at = greenhub::now() + Duration::from_millis(5);
/// greenhub::call_at(at, || println!("at"));
/// greenhub::sleep(Duration::from_millis(10));
/// ```
pub fn call_at(when: Instant, f: impl FnOnce() + 'static) -> CallHandle {
    let slot = slot(f);
    let key = with(|h| h.timers.borrow_mut().insert(when, Action::Call(slot.clone())));
    CallHandle {
        slot,
        timer: Some(key),
    }
}
