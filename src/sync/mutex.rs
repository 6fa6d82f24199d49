//! [`Mutex`]: a green lock around a value (gevent's `Semaphore(1)` used as
//! a lock, with the data inside as in std).

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::semaphore::{Permits, SemaphorePermit};
use crate::Elapsed;

/// A lock for green threads: [`lock`](Mutex::lock) parks (never spins)
/// while another green thread holds it, and waiters get it in arrival order.
///
/// Green threads switch only where they block, so a `Mutex` is needed only
/// when a critical section blocks (does I/O, sleeps, waits) while it must
/// stay exclusive. There is no poisoning: a holder that panics or is killed
/// drops its guard while unwinding, which releases the lock.
///
/// ```
/// use greenhub::sync::Mutex;
/// use std::{rc::Rc, time::Duration};
///
/// let log = Rc::new(Mutex::new(Vec::new()));
/// let hs: Vec<_> = (0..3).map(|i| {
///     let log = log.clone();
///     greenhub::spawn(move || {
///         let mut log = log.lock();
///         log.push(i);
///         greenhub::sleep(Duration::from_millis(1)); // still exclusive
///         log.push(i);
///     })
/// }).collect();
/// greenhub::join_all(&hs);
/// assert_eq!(*log.lock(), [0, 0, 1, 1, 2, 2]);
/// ```
#[doc(alias = "Lock")]
pub struct Mutex<T> {
    permit: Permits,
    value: RefCell<T>,
}

/// Access to a [`Mutex`]'s value; dropping it unlocks.
///
/// ```
/// let m = greenhub::sync::Mutex::new(vec![1]);
/// let mut guard = m.lock();
/// guard.push(2); // DerefMut to the value
/// drop(guard); // unlocked
/// assert_eq!(*m.lock(), [1, 2]);
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct MutexGuard<'a, T> {
    // Declared first so the borrow ends before the permit goes back.
    value: RefMut<'a, T>,
    _permit: SemaphorePermit<'a>,
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(5);
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            permit: Permits::new(1, Some(1)),
            value: RefCell::new(value),
        }
    }

    /// Locks it, waiting while another green thread holds it.
    ///
    /// # Blocking
    /// Parks the current green thread until the lock is handed to it.
    ///
    /// # Panics
    /// Relocking from the green thread that holds it would wait forever; on
    /// the main green thread with nothing else to run, `park` panics ("would
    /// block forever"). Use [`RLock`](super::RLock) for re-entrant locking.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(0);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 1);
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.guard(self.permit.acquire())
    }

    /// Locks it if it is free now.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(());
    /// let held = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(held);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[must_use = "dropping the guard unlocks at once"]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.permit.try_acquire().map(|p| self.guard(p))
    }

    /// Like [`lock`](Mutex::lock), giving up after `timeout`.
    ///
    /// # Errors
    /// [`Elapsed`] if the lock did not come in time.
    ///
    /// # Blocking
    /// Parks the current green thread until the lock is handed to it or the
    /// time runs out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = greenhub::sync::Mutex::new(());
    /// let _held = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>, Elapsed> {
        let permit = self.permit.acquire_until(crate::hub::deadline_after(timeout))?;
        Ok(self.guard(permit))
    }

    fn guard<'a>(&'a self, permit: SemaphorePermit<'a>) -> MutexGuard<'a, T> {
        MutexGuard {
            value: self
                .value
                .try_borrow_mut()
                .expect("greenhub: a Mutex permit guarantees sole access to its value"),
            _permit: permit,
        }
    }

    /// Whether a green thread holds it.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(());
    /// let _g = m.lock();
    /// assert!(m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.permit.available() == 0
    }

    /// The value, through exclusive access to the mutex (no locking needed).
    ///
    /// ```
    /// let mut m = greenhub::sync::Mutex::new(1);
    /// *m.get_mut() = 2;
    /// assert_eq!(m.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Consumes the mutex, returning the value.
    ///
    /// ```
    /// assert_eq!(greenhub::sync::Mutex::new("v").into_inner(), "v");
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.value.try_borrow() {
            Ok(v) if !self.is_locked() => d.field("value", &*v),
            _ => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}
