//! Waiting on several things at once (asyncio's `wait`, `as_completed`,
//! `gather`; gevent's `iwait`, `joinall`).
//!
//! [`Waitable`] is what can be waited on: [`JoinHandle`]s,
//! and the events and results of [`sync`](crate::sync).
//!
//! - [`wait_any`] / [`wait`]: park until one, `count`, or all are ready;
//! - [`as_completed`] (gevent's `iwait`): iterate in finish order;
//! - [`gather`] / [`try_gather`]: every green thread's result in input order,
//!   errors as values, or fail-fast killing the rest;
//! - [`kill_all`].
//!
//! ```
//! use std::time::Duration;
//! use greenhub::{sleep, spawn, wait};
//!
//! let hs: Vec<_> = [200u64, 5]
//!     .into_iter()
//!     .map(|ms| spawn(move || { sleep(Duration::from_millis(ms)); ms }))
//!     .collect();
//! assert_eq!(wait::wait_any(&hs), 1);
//! let results: Vec<u64> = wait::gather(hs).into_iter().map(Result::unwrap).collect();
//! assert_eq!(results, [200, 5]);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::{park, Wake, Waker};
use crate::{JoinError, JoinHandle};

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
    ///
    /// ```
    /// use greenhub::wait::Waitable;
    /// let ev = greenhub::sync::Event::new();
    /// assert!(!ev.is_ready());
    /// ev.set();
    /// assert!(ev.is_ready());
    /// ```
    fn is_ready(&self) -> bool;
    /// Arranges for `waker` to be woken when it becomes ready (at once if it
    /// already is).
    ///
    /// ```
    /// use greenhub::wait::Waitable;
    /// use std::rc::Rc;
    /// let ev = Rc::new(greenhub::sync::Event::new());
    /// let setter = { let ev = ev.clone(); greenhub::spawn(move || ev.set()) };
    /// let why = greenhub::hub::park(None, |w| ev.register(w));
    /// assert_eq!(why, greenhub::Wake::Ready);
    /// setter.join().unwrap();
    /// ```
    fn register(&self, waker: &Waker);
}

/// Waiting on a shared reference waits on the item itself, so a slice of
/// references (`[&a, &b]`, or `[&a as &dyn Waitable, &event]` to mix
/// types) works wherever items are taken.
impl<W: Waitable + ?Sized> Waitable for &W {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
    fn register(&self, waker: &Waker) {
        (**self).register(waker)
    }
}

impl<W: Waitable + ?Sized> Waitable for Box<W> {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
    fn register(&self, waker: &Waker) {
        (**self).register(waker)
    }
}

impl<W: Waitable + ?Sized> Waitable for Rc<W> {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
    fn register(&self, waker: &Waker) {
        (**self).register(waker)
    }
}

/// Registers `waker` on each item, stopping once it has fired (an item was
/// already ready), since further registrations would only go stale.
fn register_all<'a, W: Waitable + 'a>(items: impl IntoIterator<Item = &'a W>, waker: &Waker) {
    for item in items {
        if !waker.is_waiting() {
            return;
        }
        item.register(waker);
    }
}

/// Parks until one of `items` is ready; returns the index of the first
/// ready one (the lowest index if several are).
///
/// # Panics
/// If `items` is empty (nothing could ever end the wait).
///
/// # Blocking
/// Parks the current green thread until an item is ready.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, spawn, wait::wait_any};
///
/// let slow = spawn(|| sleep(Duration::from_secs(60)));
/// let fast = spawn(|| sleep(Duration::from_millis(5)));
/// assert_eq!(wait_any(&[&slow, &fast]), 1);
/// slow.kill();
/// ```
#[doc(alias = "wait")]
pub fn wait_any<W: Waitable>(items: &[W]) -> usize {
    assert!(
        !items.is_empty(),
        "greenhub: wait_any on no items would wait forever"
    );
    wait_any_until(items, None).expect("greenhub: a wait without deadline ends ready")
}

/// Like [`wait_any`], giving up after `timeout`: `None` if no item became
/// ready in time. With no items it sleeps out the timeout.
///
/// # Blocking
/// Parks the current green thread until an item is ready or the time is up.
///
/// ```
/// use std::time::Duration;
/// use greenhub::wait::wait_any_timeout;
///
/// let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
/// assert_eq!(wait_any_timeout(&[&h], Duration::from_millis(5)), None);
/// h.kill();
/// assert_eq!(wait_any_timeout(&[&h], Duration::from_millis(5)), Some(0));
/// ```
pub fn wait_any_timeout<W: Waitable>(items: &[W], timeout: Duration) -> Option<usize> {
    wait_any_until(items, crate::hub::deadline_after(timeout))
}

fn wait_any_until<W: Waitable>(items: &[W], deadline: Option<Instant>) -> Option<usize> {
    loop {
        if let Some(i) = items.iter().position(W::is_ready) {
            return Some(i);
        }
        if crate::hub::park_as(crate::debug::WaitTag::WAIT_ANY, deadline, |w| {
            register_all(items, w)
        }) == Wake::TimedOut
        {
            return items.iter().position(W::is_ready);
        }
    }
}

/// Parks until `count` of `items` are ready (`None`: all of them; `Some(1)`:
/// asyncio's `FIRST_COMPLETED`) or `timeout` passes (`None`: no limit), as
/// asyncio's `wait` does. Returns the indices of the ready items and of the
/// others, each in input order; `done` holds every item ready at return,
/// which may be more than `count`.
///
/// Waiting for all takes one registration per park; waiting for some
/// registers on every pending item after each wake, O(pending) per wake.
///
/// # Blocking
/// Parks the current green thread until enough items are ready or the time
/// is up.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, spawn, wait::wait};
///
/// let hs: Vec<_> = [150u64, 2, 60_000]
///     .into_iter()
///     .map(|ms| spawn(move || sleep(Duration::from_millis(ms))))
///     .collect();
/// let (done, pending) = wait(&hs, None, Some(1)); // first completed
/// assert_eq!((done, pending), (vec![1], vec![0, 2]));
/// let (done, pending) = wait(&hs, Some(Duration::from_millis(400)), None);
/// assert_eq!((done, pending), (vec![0, 1], vec![2])); // timed out on the slow one
/// greenhub::wait::kill_all(&hs);
/// ```
pub fn wait<W: Waitable>(
    items: &[W],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> (Vec<usize>, Vec<usize>) {
    let deadline = timeout.and_then(crate::hub::deadline_after);
    let want = count.map_or(items.len(), |c| c.min(items.len()));
    let mut pending: VecDeque<usize> = (0..items.len()).filter(|&i| !items[i].is_ready()).collect();
    loop {
        let done = items.len() - pending.len();
        if done >= want {
            break;
        }
        // Every pending item is needed: wait for them one at a time, in
        // order, so each park registers once (join_all's way).
        let all = want - done == pending.len();
        let why = if all {
            let first = pending[0];
            crate::hub::park_as(crate::debug::WaitTag::WAIT_ANY, deadline, |w| {
                items[first].register(w)
            })
        } else {
            crate::hub::park_as(crate::debug::WaitTag::WAIT_ANY, deadline, |w| {
                register_all(pending.iter().map(|&i| &items[i]), w)
            })
        };
        if all {
            while pending.front().is_some_and(|&i| items[i].is_ready()) {
                pending.pop_front();
            }
        } else {
            pending.retain(|&i| !items[i].is_ready());
        }
        if why == Wake::TimedOut {
            break;
        }
    }
    (0..items.len()).partition(|&i| items[i].is_ready())
}

/// An iterator over items in the order they become ready (asyncio's
/// `as_completed`, gevent's `iwait`), made by [`as_completed`] or
/// [`as_completed_timeout`]. Yields each item with its input index; items
/// seen ready at the same wake come in input order.
///
/// Each wait registers on every item still pending (O(pending) per wake);
/// everything that finished meanwhile is collected at once, so a burst of
/// completions costs one wake. Over 10,000 green threads finishing one per
/// wake that is about 20 ns per pending item per wake (some 1.1 s in all);
/// finishing on timers, in bursts, it is a few milliseconds.
///
/// ```
/// let hs = vec![greenhub::spawn(|| 'a'), greenhub::spawn(|| 'b')];
/// let mut it = greenhub::wait::as_completed(&hs);
/// let (first, _) = it.next().unwrap();
/// assert_eq!(first, 0);
/// ```
pub struct AsCompleted<W> {
    /// The items by input index; emptied as each is yielded.
    items: Vec<Option<W>>,
    /// Indices not yet seen ready, in input order.
    pending: Vec<usize>,
    /// Indices seen ready, not yet yielded.
    ready: VecDeque<usize>,
    deadline: Option<Instant>,
    /// The deadline has passed: no more parking.
    timed_out: bool,
}

/// Iterates over `items` as they become ready, parking between them:
/// yields `(index, item)` pairs. Pass owned items (`Vec<JoinHandle<T>>`) to
/// get them back, e.g. to `join` each finished green thread, or references
/// (`&handles`) to keep them.
///
/// # Blocking
/// Each `next` parks the current green thread until another item is ready.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, spawn, wait::as_completed};
///
/// let hs: Vec<_> = [300u64, 100, 200]
///     .into_iter()
///     .map(|ms| spawn(move || { sleep(Duration::from_millis(ms)); ms }))
///     .collect();
/// let order: Vec<u64> = as_completed(hs).map(|(_, h)| h.join().unwrap()).collect();
/// assert_eq!(order, [100, 200, 300]);
/// ```
#[doc(alias = "iwait")]
pub fn as_completed<W: Waitable, I: IntoIterator<Item = W>>(items: I) -> AsCompleted<W> {
    AsCompleted::new(items, None)
}

/// Like [`as_completed`], but once `timeout` has passed it stops waiting:
/// it yields only items already ready, then `None`
/// ([`timed_out`](AsCompleted::timed_out) tells which end it was).
///
/// # Blocking
/// Each `next` parks the current green thread until another item is ready
/// or the time is up.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, spawn, wait::as_completed_timeout};
///
/// let hs = vec![spawn(|| ()), spawn(|| sleep(Duration::from_secs(60)))];
/// let mut it = as_completed_timeout(&hs, Duration::from_millis(10));
/// assert_eq!(it.next().map(|(i, _)| i), Some(0));
/// assert!(it.next().is_none());
/// assert!(it.timed_out());
/// hs[1].kill();
/// ```
#[doc(alias = "iwait")]
pub fn as_completed_timeout<W: Waitable, I: IntoIterator<Item = W>>(
    items: I,
    timeout: Duration,
) -> AsCompleted<W> {
    AsCompleted::new(items, crate::hub::deadline_after(timeout))
}

impl<W: Waitable> AsCompleted<W> {
    fn new<I: IntoIterator<Item = W>>(items: I, deadline: Option<Instant>) -> AsCompleted<W> {
        let items: Vec<Option<W>> = items.into_iter().map(Some).collect();
        AsCompleted {
            pending: (0..items.len()).collect(),
            items,
            ready: VecDeque::new(),
            deadline,
            timed_out: false,
        }
    }

    /// Whether the deadline of [`as_completed_timeout`] has passed.
    ///
    /// ```
    /// let h = greenhub::spawn(|| ());
    /// let mut it = greenhub::wait::as_completed([h]);
    /// assert!(it.next().is_some());
    /// assert!(!it.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// How many items have not been yielded yet.
    ///
    /// ```
    /// let hs = vec![greenhub::spawn(|| 1), greenhub::spawn(|| 2)];
    /// let mut it = greenhub::wait::as_completed(hs);
    /// assert_eq!(it.remaining(), 2);
    /// it.next();
    /// assert_eq!(it.remaining(), 1);
    /// ```
    pub fn remaining(&self) -> usize {
        self.pending.len() + self.ready.len()
    }

    /// Takes the items not yet yielded, with their indices, in input order
    /// (for instance to kill the green threads left after a timeout); the
    /// iterator then yields nothing more.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::wait::{as_completed_timeout, kill_all};
    ///
    /// let hs = vec![greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)))];
    /// let mut it = as_completed_timeout(hs, Duration::from_millis(5));
    /// assert!(it.next().is_none());
    /// let left: Vec<_> = it.drain_remaining().into_iter().map(|(_, h)| h).collect();
    /// kill_all(&left);
    /// ```
    pub fn drain_remaining(&mut self) -> Vec<(usize, W)> {
        let mut idx: Vec<usize> = self.pending.drain(..).chain(self.ready.drain(..)).collect();
        idx.sort_unstable();
        idx.into_iter()
            .filter_map(|i| self.items[i].take().map(|w| (i, w)))
            .collect()
    }

    /// Moves the pending items that are ready now to the ready queue.
    fn collect_ready(&mut self) {
        let (items, ready) = (&self.items, &mut self.ready);
        self.pending.retain(|&i| {
            let now = items[i].as_ref().is_some_and(W::is_ready);
            if now {
                ready.push_back(i);
            }
            !now
        });
    }
}

impl<W: Waitable> Iterator for AsCompleted<W> {
    type Item = (usize, W);

    fn next(&mut self) -> Option<(usize, W)> {
        loop {
            if let Some(i) = self.ready.pop_front() {
                let item = self.items[i].take().expect("greenhub: each item is yielded once");
                return Some((i, item));
            }
            if self.pending.is_empty() {
                return None;
            }
            self.collect_ready();
            if !self.ready.is_empty() {
                continue;
            }
            if self.timed_out {
                return None;
            }
            let (items, pending) = (&self.items, &self.pending);
            let why = park(self.deadline, |w| {
                register_all(pending.iter().filter_map(|&i| items[i].as_ref()), w)
            });
            // One more look at what is ready, then no more parking.
            self.timed_out = why == Wake::TimedOut;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let lower = if self.deadline.is_some() {
            self.ready.len()
        } else {
            self.remaining()
        };
        (lower, Some(self.remaining()))
    }
}

impl<W> fmt::Debug for AsCompleted<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("pending", &self.pending.len())
            .field("ready", &self.ready.len())
            .field("timed_out", &self.timed_out)
            .finish()
    }
}

/// Waits for every green thread in `handles` and returns their results in
/// input order, errors as values (asyncio's `gather` with
/// `return_exceptions=True`): a panic or kill in one does not stop the
/// others. The whole takes as long as the slowest, not the sum.
///
/// If the caller is killed or timed out while it waits, the green threads
/// not yet gathered are killed too.
///
/// # Blocking
/// Parks the current green thread until all have finished.
///
/// ```
/// use greenhub::{spawn, wait::gather};
///
/// let hs = vec![spawn(|| 1), spawn(|| panic!("two")), spawn(|| 3)];
/// let r = gather(hs);
/// assert_eq!(r[0].as_ref().ok(), Some(&1));
/// assert_eq!(r[1].as_ref().unwrap_err().panic_message(), Some("two"));
/// assert_eq!(r[2].as_ref().ok(), Some(&3));
/// ```
pub fn gather<T: 'static, I: IntoIterator<Item = JoinHandle<T>>>(handles: I) -> Vec<Result<T, JoinError>> {
    let mut rest = KillOnDrop(handles.into_iter().collect());
    let mut out = Vec::with_capacity(rest.0.len());
    while let Some(first) = rest.0.front() {
        // Wait while the guard still holds it, so an unwind here kills it.
        crate::join_all([first]);
        let h = rest.0.pop_front().expect("greenhub: the front handle is there");
        out.push(h.join());
    }
    out
}

/// Like [`gather`], but fails fast: at the first error (in finish order) it
/// kills the green threads still running, waits for them to end, and
/// returns that error; otherwise every value, in input order.
///
/// # Errors
/// The first [`JoinError`] seen: a panic, a kill, or a green thread that
/// could not start.
///
/// # Blocking
/// Parks the current green thread until all have finished, or one failed
/// and the rest have been killed.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, spawn, wait::try_gather};
///
/// let slow = spawn(|| { sleep(Duration::from_secs(60)); 0 });
/// let bad = spawn(|| -> i32 { panic!("bad input") });
/// let err = try_gather(vec![slow, bad]).unwrap_err();
/// assert_eq!(err.panic_message(), Some("bad input")); // and `slow` was killed
///
/// let ok = try_gather(vec![spawn(|| 1), spawn(|| 2)]).unwrap();
/// assert_eq!(ok, [1, 2]);
/// ```
pub fn try_gather<T: 'static, I: IntoIterator<Item = JoinHandle<T>>>(
    handles: I,
) -> Result<Vec<T>, JoinError> {
    let mut running = FailFast(as_completed(handles));
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None)
        .take(running.0.remaining())
        .collect();
    while let Some((i, h)) = running.0.next() {
        match h.join() {
            Ok(v) => out[i] = Some(v),
            Err(e) => {
                let mut rest = KillOnDrop(running.0.drain_remaining().into_iter().map(|(_, h)| h).collect());
                rest.kill_now();
                return Err(e);
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("greenhub: every green thread was gathered"))
        .collect())
}

/// Kills every green thread in `handles` (gevent's `killall`): the kills
/// are all delivered first, so they unwind together, each from where it is
/// paused; returns once all are dead. Finished ones are skipped.
///
/// # Blocking
/// Parks the current green thread until each target has unwound (not when
/// called from a hub callback, where the kills are only delivered).
///
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = (0..3).map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)))).collect();
/// greenhub::wait::kill_all(&hs);
/// assert!(hs.into_iter().all(|h| h.join().unwrap_err().is_killed()));
/// ```
#[doc(alias = "killall")]
pub fn kill_all<'a, T: 'a, I: IntoIterator<Item = &'a JoinHandle<T>>>(handles: I) {
    // Every kill is delivered first, so they all unwind in the same turn;
    // then one wait per green thread still unwinding.
    let unwinding: Vec<&JoinHandle<T>> = handles.into_iter().filter(|h| h.request_kill()).collect();
    if crate::hub::try_can_block() {
        crate::join_all(unwinding);
    }
}

/// Delivers a kill to every green thread in `handles` and returns at once,
/// before they unwind (as [`JoinHandle::kill_nowait`]).
///
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = (0..3).map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)))).collect();
/// greenhub::yield_now();
/// greenhub::wait::kill_all_nowait(&hs);
/// assert!(hs.iter().all(|h| !h.is_finished()));
/// greenhub::join_all(&hs);
/// ```
#[doc(alias = "killall")]
pub fn kill_all_nowait<'a, T: 'a, I: IntoIterator<Item = &'a JoinHandle<T>>>(handles: I) {
    for h in handles {
        h.kill_nowait();
    }
}

/// Like [`kill_all`], waiting at most `timeout` for the targets to unwind
/// (gevent's `killall(timeout=)`); returns whether all are dead.
///
/// # Blocking
/// Parks the current green thread until each target has unwound or the time
/// runs out (not inside a hub callback).
///
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = (0..3).map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)))).collect();
/// greenhub::yield_now();
/// assert!(greenhub::wait::kill_all_timeout(&hs, Duration::from_secs(5)));
/// ```
#[doc(alias = "killall")]
#[must_use = "false means some green threads are still unwinding"]
pub fn kill_all_timeout<'a, T: 'a, I: IntoIterator<Item = &'a JoinHandle<T>>>(
    handles: I,
    timeout: Duration,
) -> bool {
    let unwinding: Vec<&JoinHandle<T>> = handles.into_iter().filter(|h| h.request_kill()).collect();
    if !crate::hub::try_can_block() {
        return unwinding.iter().all(|h| h.is_finished());
    }
    crate::join_all_timeout(unwinding.iter().copied(), timeout).len() == unwinding.len()
}

/// Green threads to kill if the code waiting for them goes away (a kill or
/// timeout unwinding it, or an early drop).
pub(crate) struct KillOnDrop<T: 'static>(pub(crate) VecDeque<JoinHandle<T>>);

impl<T: 'static> KillOnDrop<T> {
    /// Kills them all and waits; each stays held until dead, so an unwind
    /// meanwhile still kills the rest.
    pub(crate) fn kill_now(&mut self) {
        while let Some(h) = self.0.front() {
            h.kill();
            self.0.pop_front();
        }
    }
}

impl<T: 'static> Drop for KillOnDrop<T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return self.kill_now();
        }
        // Parking here, during an unwind, would let a second throw unwind out
        // of a destructor and abort: have the hub deliver the kills instead.
        for h in self.0.drain(..) {
            if !h.is_finished() {
                crate::call_soon(move || h.kill());
            }
        }
    }
}

/// The green threads of [`try_gather`] not gathered yet: killed if it unwinds.
struct FailFast<T: 'static>(AsCompleted<JoinHandle<T>>);

impl<T: 'static> Drop for FailFast<T> {
    fn drop(&mut self) {
        let rest = self.0.drain_remaining().into_iter().map(|(_, h)| h);
        drop(KillOnDrop(rest.collect()));
    }
}
