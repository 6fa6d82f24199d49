//! Groups and pools of green threads (gevent's `pool`).
//!
//! A [`Group`] is a set of green threads joined or killed together; a
//! [`Pool`] is a group with a bound on how many run at once, whose `spawn`
//! parks while it is full.
//!
//! Results: [`Group::spawn`] and [`Pool::spawn`] return the green thread's
//! [`JoinHandle`]; the group itself keeps only a way to kill each member,
//! dropped as the member ends, so a long-lived group holds only its live
//! members. `map`, `imap` (input order) and `imap_unordered` (finish
//! order), on both, hand back the values.
//!
//! ```
//! use std::time::Duration;
//! use greenhub::pool::Pool;
//!
//! let pool = Pool::new(2);
//! let squares = pool.map(|x: u64| { greenhub::sleep(Duration::from_millis(x)); x * x }, [3, 1, 2]);
//! assert_eq!(squares, [9, 1, 4]);
//! ```

use std::fmt;
use std::panic;
use std::rc::Rc;
use std::time::Duration;

use crate::{JoinError, JoinHandle};

mod group;
mod imap;
mod slots;

pub use group::Group;
use imap::Runner;
pub use imap::{Imap, ImapUnordered};
use slots::Slots;

/// A [`Group`] with a bound: at most `size` members run at once, and
/// [`spawn`](Pool::spawn) parks while the pool is full (gevent's `Pool`).
/// Green threads waiting for a place get one in the order they came; one
/// killed or timed out while waiting, and a member killed at any point,
/// gives its place back. Cloning gives another handle to the same pool.
///
/// ```
/// use std::time::Duration;
/// use greenhub::pool::Pool;
///
/// let pool = Pool::new(1);
/// pool.spawn(|| greenhub::sleep(Duration::from_millis(10)));
/// assert!(pool.is_full());
/// pool.spawn(|| ()); // parks until the first has finished
/// assert_eq!(pool.free_count(), 0);
/// pool.join();
/// assert_eq!(pool.free_count(), 1);
/// ```
#[derive(Clone)]
pub struct Pool {
    group: Group,
    slots: Rc<Slots>,
}

impl Pool {
    /// A pool running at most `size` green threads at once.
    ///
    /// # Panics
    /// If `size` is 0 (nothing could ever run).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(10);
    /// assert_eq!(pool.size(), 10);
    /// ```
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "greenhub: a Pool needs a size of at least 1");
        Pool {
            group: Group::new(),
            slots: Rc::new(Slots::new(size)),
        }
    }

    /// The bound given to [`new`](Pool::new).
    ///
    /// ```
    /// assert_eq!(greenhub::pool::Pool::new(3).size(), 3);
    /// ```
    pub fn size(&self) -> usize {
        self.slots.size()
    }

    /// How many more green threads could start now without waiting.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(3);
    /// pool.spawn(|| ());
    /// assert_eq!(pool.free_count(), 2);
    /// ```
    pub fn free_count(&self) -> usize {
        self.slots.free()
    }

    /// Whether a `spawn` now would park.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(1);
    /// assert!(!pool.is_full());
    /// pool.spawn(|| ());
    /// assert!(pool.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        !self.slots.can_take()
    }

    /// Waits until the pool has a free place and no earlier waiter is
    /// ahead; a `spawn` right after may still park if others wait too.
    ///
    /// # Blocking
    /// Parks the current green thread while the pool is full.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(1);
    /// pool.spawn(|| greenhub::sleep(Duration::from_millis(5)));
    /// pool.wait_available();
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    pub fn wait_available(&self) {
        self.slots.wait_available(None);
    }

    /// Like [`wait_available`](Pool::wait_available), giving up after
    /// `timeout`; returns whether a place came free in time.
    ///
    /// # Blocking
    /// Parks the current green thread while the pool is full, up to `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(1);
    /// pool.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// assert!(!pool.wait_available_timeout(Duration::from_millis(5)));
    /// pool.kill();
    /// assert!(pool.wait_available_timeout(Duration::ZERO));
    /// ```
    #[must_use = "false means no place came free in time"]
    pub fn wait_available_timeout(&self, timeout: Duration) -> bool {
        self.slots.wait_available(crate::hub::deadline_after(timeout))
    }

    /// Spawns `f` in the pool, first parking while the pool is full.
    ///
    /// # Blocking
    /// Parks the current green thread until a place is free.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(4);
    /// let h = pool.spawn(|| "done");
    /// assert_eq!(h.join().unwrap(), "done");
    /// ```
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        let place = self.take_place();
        self.group.spawn(move || {
            let _place = place;
            f()
        })
    }

    /// Parks in line for a place (a wait without deadline always gets one).
    fn take_place(&self) -> slots::Place {
        // A wait without deadline gets a place, unless its caller unwinds.
        self.slots
            .acquire(None)
            .unwrap_or_else(|| crate::hub::cannot_wait_unwinding("Pool::spawn on a full pool"))
    }

    /// Adds a green thread spawned elsewhere, as [`Group::add`], first
    /// parking while the pool is full; it holds a place until it ends.
    ///
    /// # Blocking
    /// Parks the current green thread until a place is free.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(1);
    /// pool.add(greenhub::spawn(|| ()));
    /// assert!(pool.is_full());
    /// pool.join();
    /// assert!(!pool.is_full());
    /// ```
    pub fn add<T: 'static>(&self, handle: JoinHandle<T>) {
        let place = self.take_place();
        self.group.spawn(move || {
            let _place = place;
            group::watch(handle)
        });
    }

    /// Runs `f` on every item, at most [`size`](Pool::size) at once, and
    /// returns the results in input order.
    ///
    /// # Panics
    /// Re-raises the first panic of `f` (in finish order) after killing the
    /// other calls; panics too if a call was killed or could not start. If
    /// the caller is killed or timed out, the calls it started are killed.
    ///
    /// # Blocking
    /// Parks the current green thread until every call has finished.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(3);
    /// let lens = pool.map(|s: &str| s.len(), ["a", "bcd", "ef"]);
    /// assert_eq!(lens, [1, 3, 2]);
    /// ```
    pub fn map<A: 'static, T: 'static>(
        &self,
        f: impl Fn(A) -> T + 'static,
        items: impl IntoIterator<Item = A>,
    ) -> Vec<T> {
        map_with(Runner::Pool(self.clone()), f, items)
    }

    /// Runs `f` on every item, at most [`size`](Pool::size) at once, and
    /// iterates over the results in the order the calls finish. Calls start
    /// as the iterator is advanced, filling the free places; dropping it
    /// early kills the calls it started.
    ///
    /// # Panics
    /// `next` re-raises a panic of `f` after killing the other calls, and
    /// panics if a call was killed or could not start.
    ///
    /// # Blocking
    /// `next` parks the current green thread until a call has finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(3);
    /// let sleep_then = |ms: u64| { greenhub::sleep(Duration::from_millis(ms)); ms };
    /// let order: Vec<u64> = pool.imap_unordered(sleep_then, [90, 30, 60]).collect();
    /// assert_eq!(order, [30, 60, 90]);
    /// ```
    pub fn imap_unordered<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: IntoIterator<Item = A>>(
        &self,
        f: F,
        items: I,
    ) -> ImapUnordered<T, F, I::IntoIter> {
        ImapUnordered::new(Runner::Pool(self.clone()), f, items.into_iter())
    }

    /// Runs `f` on every item, at most [`size`](Pool::size) at once, and
    /// iterates over the results in input order (gevent's `Pool.imap`).
    /// Calls start as the iterator is advanced; a finished result waits for
    /// its turn, and at most `size` calls are started and not yet handed
    /// out, so a slow call holds back the start of new ones. Dropping the
    /// iterator early kills the calls it started.
    ///
    /// # Panics
    /// `next` re-raises a panic of `f` (when its turn comes) after killing
    /// the other calls, and panics if a call was killed or could not start.
    ///
    /// # Blocking
    /// `next` parks the current green thread until the next call in input
    /// order has finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(2);
    /// let sleep_then = |ms: u64| { greenhub::sleep(Duration::from_millis(ms)); ms };
    /// let order: Vec<u64> = pool.imap(sleep_then, [30, 10, 20, 5]).collect();
    /// assert_eq!(order, [30, 10, 20, 5]);
    /// ```
    pub fn imap<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: IntoIterator<Item = A>>(
        &self,
        f: F,
        items: I,
    ) -> Imap<T, F, I::IntoIter> {
        Imap::new(Runner::Pool(self.clone()), f, items.into_iter())
    }

    /// Runs `f` in the pool and returns its result (gevent's `Pool.apply`):
    /// waits for a place, then for the call. Called from a member of a full
    /// pool, it runs `f` right here instead, since waiting for a place the
    /// caller itself holds could deadlock (as gevent does).
    ///
    /// # Panics
    /// Re-raises a panic of `f`; panics if the call was killed or could not
    /// start.
    ///
    /// # Blocking
    /// Parks the current green thread until a place is free and `f` has
    /// finished.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// assert_eq!(pool.apply(|| 6 * 7), 42);
    /// ```
    pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> T {
        if self.is_full() && self.group.contains_current() {
            return f();
        }
        self.spawn(f).join().unwrap_or_else(|e| reraise(e))
    }

    /// Spawns `f` in the pool like [`spawn`](Pool::spawn), and runs
    /// `callback` with its value when it returns one (gevent's
    /// `apply_async(func, callback=)`). The callback runs on the hub as a
    /// [`JoinHandle::link_value`] callback: it must not block. The value
    /// stays in the handle for `join`.
    ///
    /// # Blocking
    /// Parks the current green thread until a place is free.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// let pool = greenhub::pool::Pool::new(2);
    /// let total = Rc::new(Cell::new(0));
    /// for i in 1..=3 {
    ///     let t = total.clone();
    ///     pool.apply_async(move || i * 10, move |v| t.set(t.get() + v));
    /// }
    /// pool.join();
    /// greenhub::yield_now(); // the last callback runs on the next hub turn
    /// assert_eq!(total.get(), 60);
    /// ```
    pub fn apply_async<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
        callback: impl FnOnce(&T) + 'static,
    ) -> JoinHandle<T> {
        let h = self.spawn(f);
        h.link_value(callback);
        h
    }

    /// How many members are alive.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// pool.spawn(|| ());
    /// assert_eq!(pool.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether no member is alive.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// pool.spawn(|| ());
    /// pool.join();
    /// assert!(pool.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// Waits until every member has ended, as [`Group::join`].
    ///
    /// # Blocking
    /// Parks the current green thread until the pool is empty.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// let h = pool.spawn(|| greenhub::sleep(std::time::Duration::from_millis(5)));
    /// pool.join();
    /// assert!(h.is_finished());
    /// ```
    pub fn join(&self) {
        self.group.join();
    }

    /// Like [`join`](Pool::join), giving up after `timeout`; returns whether
    /// the pool emptied in time.
    ///
    /// # Blocking
    /// Parks the current green thread until the pool is empty or the time is up.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(2);
    /// pool.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// assert!(!pool.join_timeout(Duration::from_millis(5)));
    /// pool.kill();
    /// ```
    #[must_use = "false means members are still running"]
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.group.join_timeout(timeout)
    }

    /// Kills every member and waits until all have ended, as [`Group::kill`].
    ///
    /// # Blocking
    /// Parks the current green thread until the members have unwound.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// let h = pool.spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    /// pool.kill();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn kill(&self) {
        self.group.kill();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size())
            .field("free", &self.free_count())
            .field("len", &self.len())
            .finish()
    }
}

/// `map` for a pool or a group: the calls in finish order, put back in
/// input order.
fn map_with<A: 'static, T: 'static>(
    runner: Runner,
    f: impl Fn(A) -> T + 'static,
    items: impl IntoIterator<Item = A>,
) -> Vec<T> {
    let mut out: Vec<Option<T>> = Vec::new();
    let calls = ImapUnordered::new(
        runner,
        move |(i, item)| (i, f(item)),
        items.into_iter().enumerate(),
    );
    for (i, value) in calls {
        if out.len() <= i {
            out.resize_with(i + 1, || None);
        }
        out[i] = Some(value);
    }
    out.into_iter()
        .map(|v| v.expect("greenhub: every call of map gave a value"))
        .collect()
}

/// Re-raises a failed pool call in the caller.
fn reraise(e: JoinError) -> ! {
    match e {
        JoinError::Panicked(p) => panic::resume_unwind(p.into_payload()),
        other => panic!("greenhub: a pool call failed: {other}"),
    }
}
