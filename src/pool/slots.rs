//! The places of a [`Pool`](super::Pool): the permits of the sync module's
//! semaphore core, held by value so a place can move into the green thread
//! that uses it.
//!
//! That core hands a freed permit to the first parked waiter, so a newcomer
//! cannot take it first, and a waiter killed or timed out after being
//! handed one gives it back; a `Place` gives its permit back when dropped,
//! so no place is lost when a holder is killed, waiting or running.

use std::rc::Rc;
use std::time::Instant;

use crate::sync::Permits;

pub(super) struct Slots {
    size: usize,
    permits: Permits,
}

/// A held place, given back when dropped.
pub(super) struct Place(Rc<Slots>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.permits.put_back();
    }
}

impl Slots {
    pub(super) fn new(size: usize) -> Slots {
        Slots {
            size,
            permits: Permits::new(size, None),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn free(&self) -> usize {
        self.permits.available()
    }

    /// Whether a place can be taken now without jumping the queue (while
    /// green threads wait, no permit is free: freed ones go to them).
    pub(super) fn can_take(&self) -> bool {
        self.permits.available() > 0
    }

    /// Takes a place, parking in line until one is handed over; `None` if
    /// `deadline` passed first.
    pub(super) fn acquire(self: &Rc<Self>, deadline: Option<Instant>) -> Option<Place> {
        self.permits.take_until(deadline).then(|| Place(self.clone()))
    }

    /// Parks in line until a place is free, then leaves it to the next in
    /// line, if any; false if `deadline` passed first.
    pub(super) fn wait_available(self: &Rc<Self>, deadline: Option<Instant>) -> bool {
        self.can_take() || self.acquire(deadline).is_some()
    }
}
