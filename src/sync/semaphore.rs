//! [`Semaphore`] and [`BoundedSemaphore`]: counted permits, handed to parked
//! green threads in arrival order.

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use super::waiters::WaitList;
use crate::debug::WaitTag;
use crate::hub::Wake;
use crate::Elapsed;

/// The permit count and its FIFO of waiters, shared by both semaphores and
/// the locks.
///
/// Invariant: while green threads wait, `permits` is 0, because a released
/// permit goes straight to the first waiter. So a permit taken without
/// waiting never jumps the queue.
pub(crate) struct Permits {
    permits: Cell<usize>,
    /// `Some(n)`: a bounded semaphore, never more than `n` permits.
    bound: Option<usize>,
    waiters: WaitList<()>,
}

impl Permits {
    pub(crate) fn new(permits: usize, bound: Option<usize>) -> Permits {
        Permits {
            permits: Cell::new(permits),
            bound,
            waiters: WaitList::new(),
        }
    }

    pub(crate) fn available(&self) -> usize {
        self.permits.get()
    }

    pub(crate) fn try_take(&self) -> bool {
        let n = self.permits.get();
        if n == 0 {
            return false;
        }
        self.permits.set(n - 1);
        true
    }

    /// Takes a permit, parking until one is handed over or `deadline`.
    /// Returns whether it got one.
    pub(crate) fn take_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            match self
                .waiters
                .wait_as(WaitTag::LOCK, deadline, None, |()| self.put_back())
            {
                (Some(()), _) => return true,
                (None, Wake::TimedOut) => return false,
                (None, Wake::Ready) => {}
            }
        }
    }

    pub(crate) fn acquire(&self) -> SemaphorePermit<'_> {
        if !self.take_until(None) {
            crate::hub::cannot_wait_unwinding("acquiring a permit (Semaphore, Mutex)");
        }
        SemaphorePermit { permits: self }
    }

    pub(crate) fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_take().then(|| SemaphorePermit { permits: self })
    }

    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> Result<SemaphorePermit<'_>, Elapsed> {
        if self.take_until(deadline) {
            Ok(SemaphorePermit { permits: self })
        } else {
            Err(Elapsed)
        }
    }

    /// Returns a permit: to the first waiter, or to the count.
    pub(crate) fn put_back(&self) {
        if self.waiters.hand(()).is_err() {
            self.permits.set(self.permits.get() + 1);
        }
    }

    /// Returns a permit unless that would exceed the bound. Permits in use
    /// or in flight to a woken waiter count as taken.
    fn release(&self) -> Result<(), ReleaseError> {
        match self.bound {
            Some(bound) if self.permits.get() >= bound => Err(ReleaseError),
            _ => {
                self.put_back();
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Permits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.permits.get())
            .field("waiters", &self.waiters.count())
            .finish()
    }
}

/// [`BoundedSemaphore::release`] would have raised the count above its
/// initial value.
///
/// ```
/// let sem = greenhub::sync::BoundedSemaphore::new(1);
/// assert_eq!(sem.release(), Err(greenhub::sync::ReleaseError));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseError;

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released more times than it was acquired")
    }
}

impl std::error::Error for ReleaseError {}

/// A permit from a [`Semaphore`] or [`BoundedSemaphore`]; dropping it
/// returns the permit (to the first parked waiter, if any). It is dropped
/// when its green thread is killed or times out while holding it, so a dying
/// holder never leaks a permit.
///
/// ```
/// let sem = greenhub::sync::Semaphore::new(1);
/// let permit = sem.acquire();
/// assert_eq!(sem.available(), 0);
/// drop(permit);
/// assert_eq!(sem.available(), 1);
/// ```
#[must_use = "dropping the permit returns it at once"]
pub struct SemaphorePermit<'a> {
    permits: &'a Permits,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken without holding a guard (tokio's `forget`):
    /// return it later with `release`.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available(), 0);
    /// sem.release();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.permits.put_back();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// A counting semaphore (gevent's `Semaphore`): at most `n` holders at a
/// time; others park and are served in arrival order.
///
/// ```
/// use greenhub::sync::Semaphore;
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let sem = Rc::new(Semaphore::new(2));
/// let busy = Rc::new(Cell::new(0));
/// let hs: Vec<_> = (0..6).map(|_| {
///     let (sem, busy) = (sem.clone(), busy.clone());
///     greenhub::spawn(move || {
///         let _permit = sem.acquire();
///         busy.set(busy.get() + 1);
///         assert!(busy.get() <= 2);
///         greenhub::sleep(Duration::from_millis(1));
///         busy.set(busy.get() - 1);
///     })
/// }).collect();
/// greenhub::join_all(&hs);
/// ```
pub struct Semaphore {
    permits: Permits,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// ```
    /// assert_eq!(greenhub::sync::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Permits::new(permits, None),
        }
    }

    /// Takes a permit, waiting for one if none is available.
    ///
    /// # Blocking
    /// Parks the current green thread until a permit is handed to it.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// let permit = sem.acquire();
    /// assert_eq!(sem.available(), 0);
    /// drop(permit);
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.permits.acquire()
    }

    /// Takes a permit if one is available now.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// let held = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// ```
    #[must_use = "dropping the permit returns it at once"]
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.try_acquire()
    }

    /// Like [`acquire`](Semaphore::acquire), giving up after `timeout`.
    ///
    /// # Errors
    /// [`Elapsed`] if no permit came in time.
    ///
    /// # Blocking
    /// Parks the current green thread until a permit is handed to it or the
    /// time runs out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = greenhub::sync::Semaphore::new(0);
    /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, Elapsed> {
        self.permits.acquire_until(crate::hub::deadline_after(timeout))
    }

    /// How many permits can be taken without waiting.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(2);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        self.permits.available()
    }

    /// Adds one permit (gevent's `release`), handing it to the first waiter
    /// if there is one. It can raise the count above its initial value; see
    /// [`BoundedSemaphore`] for a semaphore that refuses that.
    ///
    /// # Panics
    /// When called (through `Deref`) on the semaphore inside a
    /// [`BoundedSemaphore`] and the release would exceed its bound; call
    /// [`BoundedSemaphore::release`] to get an error instead.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(0);
    /// sem.release();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn release(&self) {
        if self.permits.release().is_err() {
            panic!("greenhub: BoundedSemaphore released more times than it was acquired");
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.permits.fmt(f)
    }
}

/// A semaphore whose count never exceeds its initial value (gevent's
/// `BoundedSemaphore`): a [`release`](BoundedSemaphore::release) without a
/// matching acquire is an error instead of a silent extra permit.
///
/// It is a [`Semaphore`] (through `Deref`, as gevent's is a subclass):
/// `acquire`, `try_acquire`, `acquire_timeout` and `available` are
/// `Semaphore`'s; only `release` differs.
///
/// ```
/// use greenhub::sync::BoundedSemaphore;
/// let sem = BoundedSemaphore::new(1);
/// sem.acquire().forget();
/// assert!(sem.release().is_ok());
/// assert!(sem.release().is_err()); // one acquire, one release
/// ```
pub struct BoundedSemaphore {
    sem: Semaphore,
}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits, never more.
    ///
    /// ```
    /// let sem = greenhub::sync::BoundedSemaphore::new(2);
    /// let _held = sem.acquire();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore {
                permits: Permits::new(permits, Some(permits)),
            },
        }
    }

    /// Returns a permit taken earlier and [`forget`](SemaphorePermit::forget)ten.
    ///
    /// # Errors
    /// [`ReleaseError`] if every permit is already back (the count would
    /// exceed its initial value); nothing changes then.
    ///
    /// ```
    /// let sem = greenhub::sync::BoundedSemaphore::new(1);
    /// assert_eq!(sem.release(), Err(greenhub::sync::ReleaseError));
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.sem.permits.release()
    }
}

impl Deref for BoundedSemaphore {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.sem
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.sem.permits.fmt(f)
    }
}
