//! The FIFO wait list every type in `sync` parks through.
//!
//! Parked green threads wait in arrival order, each with a hand-off slot.
//! Service is strictly FIFO because whatever frees up (a permit, an item, a
//! flag) is put straight into the slot of the first live waiter instead of
//! being left for whoever looks next: a green thread arriving later cannot
//! barge ahead of one already parked and served. The slot also carries
//! values the other way: a parked putter offers its item in its slot and a
//! getter takes it from there.
//!
//! The danger of handing things over is the gap between the hand-off and the
//! moment the receiver runs: it may be killed, or cut short by
//! `with_timeout`, in that gap. The receiver's [`Pending`] guard then returns
//! what it was handed to the structure (`give_back`), which passes it on to
//! the next waiter, so nothing is ever lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use crate::debug::WaitTag;
use crate::hub::{self, Wake, Waker};

/// One parked green thread: how to wake it and what it was handed (or is
/// offering). `waker` is `None` only while the entry is kept for reuse.
struct Entry<T> {
    waker: Option<Waker>,
    slot: Cell<Option<T>>,
}

impl<T> Entry<T> {
    #[inline]
    fn is_waiting(&self) -> bool {
        self.waker.as_ref().is_some_and(Waker::is_waiting)
    }

    #[inline]
    fn wake(&self) {
        if let Some(w) = &self.waker {
            w.wake();
        }
    }
}

/// Parked green threads in arrival order. Entries whose park already ended
/// (timed out, killed, woken through another registration) are stale: the
/// hand-off functions skip them and [`WaitList::push`] sweeps them out in
/// amortised O(1), so a list waited on with timeouts in a loop does not grow.
pub(crate) struct WaitList<T> {
    entries: RefCell<VecDeque<Rc<Entry<T>>>>,
    /// Length at which the next sweep of stale entries happens.
    sweep_at: Cell<usize>,
    /// The entry of the last finished wait, reused by the next so that a
    /// wait allocates nothing in the common case (ping-pong, producer and
    /// consumer taking turns).
    spare: Cell<Option<Rc<Entry<T>>>>,
}

/// Smallest `sweep_at`: below this, stale entries cost less than sweeping.
const MIN_SWEEP: usize = 16;

impl<T> WaitList<T> {
    pub(crate) fn new() -> WaitList<T> {
        WaitList {
            entries: RefCell::new(VecDeque::new()),
            sweep_at: Cell::new(MIN_SWEEP),
            spare: Cell::new(None),
        }
    }

    #[inline(always)]
    fn entry(&self, waker: &Waker, offer: Option<T>) -> Rc<Entry<T>> {
        if let Some(mut e) = self.spare.take() {
            if let Some(fresh) = Rc::get_mut(&mut e) {
                fresh.waker = Some(waker.clone());
                fresh.slot = Cell::new(offer);
                return e;
            }
        }
        Rc::new(Entry {
            waker: Some(waker.clone()),
            slot: Cell::new(offer),
        })
    }

    /// Keeps a finished waiter's entry for the next wait, if nothing else
    /// refers to it (a timed-out entry may still sit in the list).
    #[inline(always)]
    fn recycle(&self, mut e: Rc<Entry<T>>) {
        if let Some(done) = Rc::get_mut(&mut e) {
            // No stale waker kept alive: it would pin its green thread's record.
            done.waker = None;
            self.spare.set(Some(e));
        }
    }

    #[inline(always)]
    fn push(&self, entry: Rc<Entry<T>>) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= self.sweep_at.get() {
            entries.retain(|e| e.is_waiting());
            self.sweep_at.set((entries.len() * 2).max(MIN_SWEEP));
        }
        entries.push_back(entry);
    }

    /// Adds a waker that only wants to be woken (a [`Waitable`]
    /// registration); its slot stays unused.
    ///
    /// [`Waitable`]: crate::wait::Waitable
    pub(crate) fn register(&self, waker: &Waker) {
        self.push(self.entry(waker, None));
    }

    /// Parks the current green thread at the back of the list until it is
    /// woken or `deadline` passes. Its slot starts as `offer`; returns what
    /// the slot holds at the end (a value handed to it, or the offer nobody
    /// took) and why the park ended.
    ///
    /// If the park unwinds (kill, `with_timeout`), whatever the slot holds
    /// goes to `give_back`.
    #[allow(dead_code)] // every caller in greenhub says what it waits on (`wait_as`)
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
        offer: Option<T>,
        give_back: impl FnOnce(T),
    ) -> (Option<T>, Wake) {
        self.wait_as(WaitTag::PARK, deadline, offer, give_back)
    }

    /// [`wait`](WaitList::wait), saying what it waits on (for
    /// `debug::run_info`).
    pub(crate) fn wait_as(
        &self,
        tag: WaitTag,
        deadline: Option<Instant>,
        offer: Option<T>,
        give_back: impl FnOnce(T),
    ) -> (Option<T>, Wake) {
        let mut pending = Pending {
            list: self,
            entry: None,
            give_back: Some(give_back),
        };
        let why = hub::park_as(tag, deadline, |w| {
            let entry = self.entry(w, offer);
            self.push(entry.clone());
            pending.entry = Some(entry);
        });
        (pending.finish(), why)
    }

    /// The first entry whose park is still waiting, removed from the list;
    /// stale entries in front of it are dropped.
    #[inline(always)]
    fn pop_live(&self) -> Option<Rc<Entry<T>>> {
        let mut entries = self.entries.borrow_mut();
        while let Some(e) = entries.pop_front() {
            if e.is_waiting() {
                return Some(e);
            }
        }
        None
    }

    /// Hands `value` to the first live waiter and wakes it; gives the value
    /// back if nobody waits.
    #[inline]
    pub(crate) fn hand(&self, value: T) -> Result<(), T> {
        match self.pop_live() {
            Some(e) => {
                e.slot.set(Some(value));
                e.wake();
                Ok(())
            }
            None => Err(value),
        }
    }

    /// Takes the value the first live waiter offers and wakes it.
    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        while let Some(e) = self.pop_live() {
            e.wake();
            if let Some(v) = e.slot.take() {
                return Some(v);
            }
        }
        None
    }

    /// Wakes every waiter, handing each the value `make` returns.
    pub(crate) fn hand_all(&self, mut make: impl FnMut() -> T) {
        while let Some(e) = self.pop_live() {
            e.slot.set(Some(make()));
            e.wake();
        }
    }

    /// Wakes every waiter without handing anything (they re-check the
    /// structure, e.g. see that it was closed).
    pub(crate) fn wake_all(&self) {
        while let Some(e) = self.pop_live() {
            e.wake();
        }
    }

    /// How many green threads are parked here.
    pub(crate) fn count(&self) -> usize {
        self.entries.borrow().iter().filter(|e| e.is_waiting()).count()
    }
}

impl<T> fmt::Debug for WaitList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitList")
            .field("waiting", &self.count())
            .finish()
    }
}

/// A parked waiter's claim on its slot. Dropped during an unwind, it returns
/// an unclaimed hand-off to the structure.
struct Pending<'a, T, F: FnOnce(T)> {
    list: &'a WaitList<T>,
    entry: Option<Rc<Entry<T>>>,
    give_back: Option<F>,
}

impl<T, F: FnOnce(T)> Pending<'_, T, F> {
    /// The normal end of a wait: the caller takes the slot's content.
    fn finish(mut self) -> Option<T> {
        self.give_back = None;
        let e = self.entry.take()?;
        let value = e.slot.take();
        self.list.recycle(e);
        value
    }
}

impl<T, F: FnOnce(T)> Drop for Pending<'_, T, F> {
    fn drop(&mut self) {
        let value = self.entry.take().and_then(|e| e.slot.take());
        if let (Some(v), Some(give_back)) = (value, self.give_back.take()) {
            give_back(v);
        }
    }
}
