//! The hub's timers, ordered by deadline, FIFO among equal deadlines.
//!
//! A `BTreeMap` keyed by `(deadline, sequence)` rather than a binary heap:
//! a park with a deadline that is woken early removes its timer at once, so
//! a busy socket with a long read timeout never piles up stale entries.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use super::callback::CallSlot;
use super::Waker;
use crate::greenlet::gref::GRef;

/// Identifies one timer, for removal.
pub(crate) type TimerKey = (Instant, u64);

/// What happens when a timer fires.
pub(crate) enum Action {
    /// End a park with `Wake::TimedOut` (also starts `spawn_later` tasks).
    Wake(Waker),
    /// Queue a `call_later`/`call_at` callback.
    Call(Rc<CallSlot>),
    /// Unwind a `with_timeout` section: the green thread and the section's token.
    Throw(GRef, u32),
}

#[derive(Default)]
pub(crate) struct Timers {
    map: BTreeMap<TimerKey, Action>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn insert(&mut self, deadline: Instant, action: Action) -> TimerKey {
        let key = (deadline, self.next_seq);
        self.next_seq += 1;
        self.map.insert(key, action);
        key
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Action> {
        self.map.remove(&key)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.first_key_value().map(|(k, _)| k.0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Action> {
        match self.map.first_entry() {
            Some(e) if e.key().0 <= now => Some(e.remove()),
            _ => None,
        }
    }
}
