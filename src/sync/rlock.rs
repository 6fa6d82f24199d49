//! [`RLock`]: a lock the holding green thread may take again (gevent's
//! `RLock`, parking_lot's `ReentrantMutex`).

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use super::semaphore::Permits;
use crate::{Elapsed, Greenlet};

/// A re-entrant lock: the green thread holding it can lock it again without
/// waiting; it is free once every guard is dropped. Others park and get it
/// in arrival order. Guards give shared access (`&T`) only, since one green
/// thread may hold several; put a `Cell` or `RefCell` inside to mutate.
///
/// ```
/// use greenhub::sync::RLock;
///
/// let lock = RLock::new(());
/// let outer = lock.lock();
/// let inner = lock.lock(); // same green thread: no deadlock
/// drop(inner);
/// drop(outer);
/// assert!(!lock.is_locked());
/// ```
pub struct RLock<T> {
    permit: Permits,
    /// Id of the holding green thread (meaningful while `depth > 0`).
    owner: Cell<u64>,
    depth: Cell<usize>,
    value: T,
}

/// One level of an [`RLock`] hold; dropping the last one unlocks.
///
/// ```
/// let lock = greenhub::sync::RLock::new(5);
/// let outer = lock.lock();
/// let inner = lock.lock(); // the owner may take it again
/// assert_eq!(*inner + *outer, 10);
/// ```
///
/// # Panics
/// Dropped by another green thread than the one that locked (the guard was
/// moved there): the lock stays held and the drop panics saying so (or,
/// if that green thread is unwinding already, reports it on stderr).
#[must_use = "dropping the guard unlocks at once"]
pub struct RLockGuard<'a, T> {
    lock: &'a RLock<T>,
}

impl<T: Default> Default for RLock<T> {
    fn default() -> RLock<T> {
        RLock::new(T::default())
    }
}

impl<T> RLock<T> {
    /// An unlocked lock around `value`.
    ///
    /// ```
    /// let lock = greenhub::sync::RLock::new(3);
    /// assert_eq!(*lock.lock(), 3);
    /// ```
    pub fn new(value: T) -> RLock<T> {
        RLock {
            permit: Permits::new(1, Some(1)),
            owner: Cell::new(0),
            depth: Cell::new(0),
            value,
        }
    }

    /// Locks it: at once if free or already held by the current green
    /// thread, otherwise after waiting.
    ///
    /// # Blocking
    /// Parks the current green thread while another one holds the lock.
    ///
    /// ```
    /// let lock = greenhub::sync::RLock::new(());
    /// let _a = lock.lock();
    /// let _b = lock.lock();
    /// ```
    pub fn lock(&self) -> RLockGuard<'_, T> {
        match self.lock_until(None) {
            Ok(g) => g,
            Err(Elapsed) => crate::hub::cannot_wait_unwinding("RLock::lock"),
        }
    }

    /// Locks it if that needs no waiting.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let lock = Rc::new(greenhub::sync::RLock::new(()));
    /// let _held = lock.lock();
    /// let l = lock.clone();
    /// let other = greenhub::spawn(move || l.try_lock().is_some());
    /// assert!(!other.join().unwrap());
    /// ```
    #[must_use = "dropping the guard unlocks at once"]
    pub fn try_lock(&self) -> Option<RLockGuard<'_, T>> {
        let me = Greenlet::current().id();
        if self.reenter(me) {
            return Some(RLockGuard { lock: self });
        }
        let permit = self.permit.try_acquire()?;
        permit.forget();
        Some(self.take(me))
    }

    /// Like [`lock`](RLock::lock), giving up after `timeout`.
    ///
    /// # Errors
    /// [`Elapsed`] if the lock did not come in time.
    ///
    /// # Blocking
    /// Parks the current green thread while another one holds the lock, at
    /// most until the time runs out.
    ///
    /// ```
    /// let lock = greenhub::sync::RLock::new(());
    /// let _g = lock.lock_timeout(std::time::Duration::from_millis(5)).unwrap();
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_, T>, Elapsed> {
        self.lock_until(crate::hub::deadline_after(timeout))
    }

    fn lock_until(&self, deadline: Option<Instant>) -> Result<RLockGuard<'_, T>, Elapsed> {
        let me = Greenlet::current().id();
        if self.reenter(me) {
            return Ok(RLockGuard { lock: self });
        }
        // The permit stands for the whole hold; the outermost guard returns it.
        self.permit.acquire_until(deadline)?.forget();
        Ok(self.take(me))
    }

    fn reenter(&self, me: u64) -> bool {
        let held = self.depth.get() > 0 && self.owner.get() == me;
        if held {
            self.depth.set(self.depth.get() + 1);
        }
        held
    }

    fn take(&self, me: u64) -> RLockGuard<'_, T> {
        self.owner.set(me);
        self.depth.set(1);
        RLockGuard { lock: self }
    }

    /// Whether a green thread holds it.
    ///
    /// ```
    /// let lock = greenhub::sync::RLock::new(());
    /// assert!(!lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.depth.get() > 0
    }
}

impl<T> Deref for RLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.lock.value
    }
}

impl<T> Drop for RLockGuard<'_, T> {
    fn drop(&mut self) {
        let me = Greenlet::current().id();
        if self.lock.owner.get() != me {
            return released_by_non_owner(self.lock.owner.get(), me);
        }
        let depth = self.lock.depth.get() - 1;
        self.lock.depth.set(depth);
        if depth == 0 {
            self.lock.permit.put_back();
        }
    }
}

/// A guard moved to another green thread is dropped there: the lock is
/// not the dropper's to release (gevent raises "cannot release un-acquired
/// lock"). It stays held; the misuse is a panic, or, when the dropper is
/// unwinding already (a second panic would abort), a report on stderr.
#[cold]
fn released_by_non_owner(owner: u64, me: u64) {
    let msg = format!(
        "greenhub: an RLockGuard of green thread #{owner} was dropped by green thread #{me}; \
         only the holder can release an RLock, so it stays held (keep guards on the green \
         thread that locked)"
    );
    if std::thread::panicking() {
        eprintln!("{msg}");
    } else {
        panic!("{msg}");
    }
}

impl<T: fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.lock.value, f)
    }
}

impl<T: fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.is_locked().then(|| self.owner.get()))
            .field("depth", &self.depth.get())
            .field("value", &self.value)
            .finish()
    }
}
