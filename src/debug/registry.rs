//! The live green threads of this OS thread, for [`run_info`](super::run_info).
//!
//! A slab of record pointers: a green thread takes a slot when it is created
//! and gives it back when its record is dropped; the record keeps its slot
//! (+1) in `live_slot`. A push or a pop on a free list per spawn, nothing per
//! switch. The pointers are weak: a record removes itself in its `Drop`, so
//! every pointer listed is a live record of this OS thread.

use std::cell::RefCell;

use crate::greenlet::core::Inner;
use crate::greenlet::gref::GRef;

#[derive(Default)]
struct Slab {
    records: Vec<*const Inner>,
    free: Vec<u32>,
}

thread_local! {
    static LIVE: RefCell<Slab> = RefCell::new(Slab::default());
}

/// Lists `g` (called once, right after its record is made).
pub(crate) fn add(g: &GRef) {
    let p = GRef::as_ptr(g);
    let _ = LIVE.try_with(|live| {
        let mut live = live.borrow_mut();
        let index = match live.free.pop() {
            Some(i) => {
                live.records[i as usize] = p;
                i
            }
            None => {
                live.records.push(p);
                (live.records.len() - 1) as u32
            }
        };
        g.live_slot.set(index + 1);
    });
}

/// Unlists a record as it is dropped.
pub(crate) fn remove(g: &Inner) {
    let slot = g.live_slot.replace(0);
    if slot == 0 {
        return;
    }
    let _ = LIVE.try_with(|live| {
        let mut live = live.borrow_mut();
        live.records[slot as usize - 1] = std::ptr::null();
        live.free.push(slot - 1);
    });
}

/// Every listed green thread that has not ended, oldest slot first.
pub(crate) fn snapshot() -> Vec<GRef> {
    LIVE.with(|live| {
        live.borrow()
            .records
            .iter()
            .filter(|p| !p.is_null())
            // SAFETY: a listed pointer is a live record of this OS thread:
            // records unlist themselves in `Drop` (see `remove`), and the
            // list is thread-local. The clone keeps it alive past the borrow.
            .map(|&p| unsafe { GRef::clone_raw(p) })
            .filter(|g| !g.is_dead())
            .collect()
    })
}

/// How many green threads are listed (ended ones whose records are still
/// held included).
pub(crate) fn count() -> usize {
    LIVE.try_with(|live| {
        let live = live.borrow();
        live.records.len() - live.free.len()
    })
    .unwrap_or(0)
}
