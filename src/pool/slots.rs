//! The places of a [`Pool`](super::Pool): a counter and a FIFO of parked
//! green threads, served through the hub's park/wake.
//!
//! A place freed while others wait is handed to the first of them (counted
//! as used from then on), so a newcomer cannot take it first. Every place
//! is held by a value whose `Drop` gives it back, so none is lost when a
//! holder is killed, whether it was waiting, had just been handed one, or
//! was running.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use crate::hub::{park, Wake, Waker};

pub(super) struct Slots {
    size: usize,
    /// Places held by running members, or handed to waiters not yet resumed.
    used: Cell<usize>,
    /// Parked green threads, first come first served.
    waiters: RefCell<VecDeque<Rc<Waiter>>>,
}

struct Waiter {
    /// The waker of its current park.
    waker: RefCell<Option<Waker>>,
    /// A place was handed to it.
    granted: Cell<bool>,
}

/// A held place, given back when dropped.
pub(super) struct Place(Rc<Slots>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.used.set(self.0.used.get() - 1);
        self.0.hand_over();
    }
}

/// A waiter's entry in the queue; dropped without being turned into a
/// `Place` (timed out, killed), it leaves the queue or gives back the place
/// it was handed.
struct Ticket {
    slots: Option<Rc<Slots>>,
    me: Rc<Waiter>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(slots) = self.slots.take() else {
            return;
        };
        if self.me.granted.get() {
            drop(Place(slots));
        } else {
            slots.waiters.borrow_mut().retain(|w| !Rc::ptr_eq(w, &self.me));
        }
    }
}

impl Slots {
    pub(super) fn new(size: usize) -> Slots {
        Slots {
            size,
            used: Cell::new(0),
            waiters: RefCell::new(VecDeque::new()),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn free(&self) -> usize {
        self.size.saturating_sub(self.used.get())
    }

    /// Whether a place can be taken now without jumping the queue.
    pub(super) fn can_take(&self) -> bool {
        self.used.get() < self.size && self.waiters.borrow().is_empty()
    }

    /// Hands free places to the first waiters.
    fn hand_over(&self) {
        while self.used.get() < self.size {
            let Some(w) = self.waiters.borrow_mut().pop_front() else {
                return;
            };
            self.used.set(self.used.get() + 1);
            w.granted.set(true);
            let waker = w.waker.borrow().clone();
            if let Some(k) = waker {
                k.wake();
            }
        }
    }

    /// Takes a place, parking in line until one is handed over; `None` if
    /// `deadline` passed first.
    pub(super) fn acquire(self: &Rc<Self>, deadline: Option<Instant>) -> Option<Place> {
        if self.can_take() {
            self.used.set(self.used.get() + 1);
            return Some(Place(self.clone()));
        }
        let mut ticket = Ticket {
            slots: Some(self.clone()),
            me: Rc::new(Waiter {
                waker: RefCell::new(None),
                granted: Cell::new(false),
            }),
        };
        self.waiters.borrow_mut().push_back(ticket.me.clone());
        loop {
            let why = park(deadline, |w| *ticket.me.waker.borrow_mut() = Some(w.clone()));
            if ticket.me.granted.get() {
                return ticket.slots.take().map(Place);
            }
            if why == Wake::TimedOut {
                return None;
            }
        }
    }

    /// Parks in line until a place is free, then leaves it to the next in
    /// line, if any; false if `deadline` passed first.
    pub(super) fn wait_available(self: &Rc<Self>, deadline: Option<Instant>) -> bool {
        self.can_take() || self.acquire(deadline).is_some()
    }
}
