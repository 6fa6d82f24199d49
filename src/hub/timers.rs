//! The hub's timers, ordered by deadline, FIFO among equal deadlines.
//!
//! A `BTreeMap` keyed by `(deadline, sequence)`: a park with a deadline
//! that is woken early removes its timer at once, so a busy socket with a
//! long read timeout never piles up stale entries. A 4-ary heap with a slab
//! was tried and measured (`cargo bench --bench timers -- gate`): inserting a
//! million timers took half the time, but popping them in deadline order,
//! the part that decides lateness, was 2.5 to 4 times slower (each pop sifts
//! through cold levels of a million-entry heap), so the map stayed.

use std::collections::{BTreeMap, VecDeque};
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

impl Action {
    /// The address of what firing this touches first, to prefetch.
    pub(crate) fn prefetch_addr(&self) -> usize {
        match self {
            Action::Wake(w) => GRef::as_ptr(w.target()) as usize,
            Action::Throw(g, _) => GRef::as_ptr(g) as usize,
            Action::Call(c) => Rc::as_ptr(c) as usize,
        }
    }
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

    /// Every timer's action, in deadline order (for the hub's teardown).
    pub(crate) fn into_actions(self) -> impl Iterator<Item = Action> {
        self.map.into_values()
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Action> {
        self.map.remove(&key)
    }

    /// Removes the timer at `deadline` that would wake `g` (a waiting green
    /// thread that does not know its timer's key: one parked before it
    /// started, `spawn_when_readable_timeout`). Returns whether there was one.
    pub(crate) fn remove_wake_of(
        &mut self,
        deadline: Instant,
        g: *const crate::greenlet::core::Inner,
    ) -> bool {
        let found = self
            .map
            .range((deadline, 0)..=(deadline, u64::MAX))
            .find(|(_, a)| matches!(a, Action::Wake(w) if std::ptr::eq(GRef::as_ptr(w.target()), g)))
            .map(|(k, _)| *k);
        found.is_some_and(|k| self.map.remove(&k).is_some())
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.first_key_value().map(|(k, _)| k.0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many timers are pending (for `debug::run_info`).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every pending timer, earliest first (for `debug::run_info`).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Instant, &Action)> {
        self.map.iter().map(|(k, a)| (k.0, a))
    }

    /// Moves up to `max` timers due at `now` to `out`, earliest first.
    pub(crate) fn pop_due_into(&mut self, now: Instant, out: &mut VecDeque<Action>, max: usize) {
        for _ in 0..max {
            match self.map.first_entry() {
                Some(e) if e.key().0 <= now => out.push_back(e.remove()),
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A callback action that logs `seq` when run.
    fn logging(log: &Rc<std::cell::RefCell<Vec<u64>>>, seq: u64) -> Action {
        let log = log.clone();
        Action::Call(crate::hub::callback::slot(move || log.borrow_mut().push(seq)))
    }

    /// Deadline order, FIFO among equal deadlines, removals honoured, the
    /// heap compacted: checked against a sorted list on a pseudo-random mix.
    #[test]
    fn pops_in_deadline_then_insertion_order_with_removals() {
        let base = Instant::now();
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut t = Timers::default();
        let mut model: Vec<(u64, u64, TimerKey)> = Vec::new(); // (ms, seq, key)
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for seq in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = x % 50;
            let key = t.insert(base + Duration::from_millis(ms), logging(&log, seq));
            model.push((ms, seq, key));
            if x.is_multiple_of(3) {
                let victim = model.remove((x as usize / 3) % model.len());
                assert!(t.remove(victim.2).is_some());
                assert!(t.remove(victim.2).is_none(), "removed once");
            }
        }
        model.sort();
        let mut out = VecDeque::new();
        for (ms, _, key) in &model {
            assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(*ms)));
            t.pop_due_into(base + Duration::from_millis(60), &mut out, 1);
            match out.pop_front() {
                Some(Action::Call(c)) => (c.take().expect("not run yet"))(),
                _ => panic!("a due callback"),
            }
            assert!(t.remove(*key).is_none(), "a fired timer is gone");
        }
        let expected: Vec<u64> = model.iter().map(|m| m.1).collect();
        assert_eq!(*log.borrow(), expected, "deadline order, FIFO among equals");
        assert!(t.is_empty());
        t.pop_due_into(base + Duration::from_secs(1), &mut out, 1);
        assert!(out.is_empty());
    }

    /// `pop_due_into` takes at most `max`, earliest first, and leaves what
    /// is not due yet.
    #[test]
    fn pop_due_into_takes_due_timers_in_order_up_to_max() {
        let base = Instant::now();
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut t = Timers::default();
        for seq in 0..20u64 {
            // Deadlines 19, 18, .. 0 ms: inserted in reverse order.
            t.insert(base + Duration::from_millis(19 - seq), logging(&log, seq));
        }
        let mut out = VecDeque::new();
        t.pop_due_into(base + Duration::from_millis(9), &mut out, 4);
        assert_eq!(out.len(), 4, "at most max");
        t.pop_due_into(base + Duration::from_millis(9), &mut out, 100);
        assert_eq!(out.len(), 10, "only those due by 9 ms");
        for a in out.drain(..) {
            match a {
                Action::Call(c) => (c.take().expect("not run yet"))(),
                _ => panic!("a callback"),
            }
        }
        let fired: Vec<u64> = (10..20).rev().collect();
        assert_eq!(*log.borrow(), fired, "earliest deadline first");
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(10)));
    }

    /// Many early removals (a socket read with a long timeout, answered at
    /// once, in a loop) do not grow the heap.
    #[test]
    fn removed_timers_do_not_pile_up() {
        let far = Instant::now() + Duration::from_secs(3600);
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut t = Timers::default();
        for seq in 0..100_000 {
            let key = t.insert(far, logging(&log, seq));
            t.remove(key);
        }
        assert_eq!(t.map.len(), 0, "removed timers are gone from the map");
        assert!(t.is_empty());
    }
}
