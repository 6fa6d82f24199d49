//! [`Event`]: a flag green threads wait on (gevent's and asyncio's `Event`).

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::waiters::WaitList;
use crate::debug::WaitTag;
use crate::hub::{Wake, Waker};
use crate::wait::Waitable;

/// A flag that green threads can wait to be set.
///
/// [`set`](Event::set) wakes every waiting green thread; waits that begin
/// while it is set return at once, until [`clear`](Event::clear). A waiter
/// woken by `set` returns `true` even if the flag is cleared again before it
/// runs (as in gevent and Python's `threading`). Share it between green
/// threads with an `Rc`.
///
/// ```
/// use greenhub::sync::Event;
/// use std::rc::Rc;
///
/// let ready = Rc::new(Event::new());
/// let r = ready.clone();
/// let waiter = greenhub::spawn(move || { r.wait(); "go" });
/// greenhub::yield_now();
/// assert!(!waiter.is_finished());
/// ready.set();
/// assert_eq!(waiter.join().unwrap(), "go");
/// ```
pub struct Event {
    flag: Cell<bool>,
    waiters: WaitList<()>,
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl Event {
    /// A new event, not set.
    ///
    /// ```
    /// assert!(!greenhub::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event {
            flag: Cell::new(false),
            waiters: WaitList::new(),
        }
    }

    /// Sets the flag and wakes every green thread waiting for it.
    ///
    /// ```
    /// let e = greenhub::sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// e.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        if !self.flag.replace(true) {
            self.waiters.hand_all(|| ());
        }
    }

    /// Clears the flag: later waits park until the next [`set`](Event::set).
    ///
    /// ```
    /// let e = greenhub::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.wait_timeout(std::time::Duration::from_millis(1)));
    /// ```
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let e = greenhub::sync::Event::new();
    /// assert!(!e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Waits until the flag is set.
    ///
    /// # Blocking
    /// Parks the current green thread until the flag is set (returns at once
    /// if it is).
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = std::rc::Rc::new(greenhub::sync::Event::new());
    /// let e2 = e.clone();
    /// greenhub::call_later(Duration::from_millis(5), move || e2.set());
    /// e.wait();
    /// assert!(e.is_set());
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` for the flag; returns whether it was set.
    ///
    /// # Blocking
    /// Parks the current green thread until the flag is set or the time runs
    /// out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = greenhub::sync::Event::new();
    /// assert!(!e.wait_timeout(Duration::from_millis(5)));
    /// e.set();
    /// assert!(e.wait_timeout(Duration::from_millis(5)));
    /// ```
    #[must_use = "false means the event was not set in time"]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::hub::deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.flag.get() {
                return true;
            }
            match self.waiters.wait_as(WaitTag::EVENT, deadline, None, drop) {
                (Some(()), _) => return true,
                (None, Wake::TimedOut) => return self.flag.get(),
                (None, Wake::Ready) => {}
            }
        }
    }
}

impl Waitable for Event {
    fn is_ready(&self) -> bool {
        self.flag.get()
    }

    fn register(&self, waker: &Waker) {
        if self.flag.get() {
            waker.wake();
        } else {
            self.waiters.register(waker);
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.flag.get())
            .field("waiters", &self.waiters.count())
            .finish()
    }
}
