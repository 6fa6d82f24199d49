//! [`Local`]: green-thread-local values (gevent's `local`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::{Rc, Weak};

use crate::greenlet::core::{self, Inner};

/// One green thread's value, with a weak link to that green thread to tell
/// when it has ended.
struct Slot<T> {
    owner: Weak<Inner>,
    value: Rc<T>,
}

impl<T> Slot<T> {
    fn owner_alive(&self) -> bool {
        self.owner.upgrade().is_some_and(|g| !g.is_dead())
    }
}

/// A value per green thread: each green thread that calls
/// [`with`](Local::with) sees its own value, made by the init function on
/// its first use, as `thread_local!` does per OS thread. A green thread's
/// value is dropped after it ends.
///
/// Values of ended green threads are swept out while the `Local` is used
/// (amortised: each sweep follows as many accesses as there are values) and
/// when it is dropped; a `Local` that is no longer touched keeps them until
/// then.
///
/// ```
/// use greenhub::sync::Local;
/// use std::{cell::Cell, rc::Rc};
///
/// let counter = Rc::new(Local::new(|| Cell::new(0)));
/// let hs: Vec<_> = (1..=3).map(|n| {
///     let counter = counter.clone();
///     greenhub::spawn(move || {
///         for _ in 0..n {
///             counter.with(|c| c.set(c.get() + 1));
///             greenhub::yield_now();
///         }
///         counter.with(Cell::get)
///     })
/// }).collect();
/// let counts: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(counts, [1, 2, 3]); // each counted only its own increments
/// ```
pub struct Local<T> {
    init: Box<dyn Fn() -> T>,
    slots: RefCell<HashMap<u64, Slot<T>>>,
    /// Accesses left before the next sweep for ended green threads.
    until_sweep: Cell<usize>,
}

impl<T: 'static> Local<T> {
    /// A green-thread-local value made by `init` on each green thread's first
    /// use.
    ///
    /// ```
    /// let name = greenhub::sync::Local::new(|| String::from("unnamed"));
    /// assert_eq!(name.with(|n| n.len()), 7);
    /// ```
    pub fn new(init: impl Fn() -> T + 'static) -> Local<T> {
        Local {
            init: Box::new(init),
            slots: RefCell::new(HashMap::new()),
            until_sweep: Cell::new(0),
        }
    }

    /// Runs `f` with the current green thread's value, making it first if
    /// needed. `f` may block; other green threads using this `Local`
    /// meanwhile see their own values.
    ///
    /// # Blocking
    /// Only if `f` or the init function blocks.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// let log = greenhub::sync::Local::new(|| RefCell::new(Vec::new()));
    /// log.with(|l| l.borrow_mut().push("one"));
    /// assert_eq!(log.with(|l| l.borrow().len()), 1);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let value = self.get();
        f(&value)
    }

    fn get(&self) -> Rc<T> {
        let me = core::current();
        let mine = self.slots.borrow().get(&me.id).map(|s| s.value.clone());
        if let Some(value) = mine {
            self.tick();
            return value;
        }
        // No borrow is held while `init` runs: it may use this `Local`, or block.
        let value = Rc::new((self.init)());
        let slot = Slot {
            owner: Rc::downgrade(&me),
            value: value.clone(),
        };
        let replaced = self.slots.borrow_mut().insert(me.id, slot);
        drop(replaced);
        self.tick();
        value
    }

    /// Counts an access; sweeps when enough have happened.
    fn tick(&self) {
        match self.until_sweep.get() {
            0 => self.sweep(),
            n => self.until_sweep.set(n - 1),
        }
    }

    /// Drops the values of green threads that have ended.
    fn sweep(&self) {
        let ended: Vec<Slot<T>> = {
            let mut slots = self.slots.borrow_mut();
            let dead: Vec<u64> = slots
                .iter()
                .filter(|(_, s)| !s.owner_alive())
                .map(|(&id, _)| id)
                .collect();
            let ended = dead.iter().filter_map(|id| slots.remove(id)).collect();
            self.until_sweep.set(slots.len());
            ended
        };
        // Dropped outside the borrow: a value's destructor may use this `Local`.
        drop(ended);
    }

    /// How many green threads have a value here, counting ended ones not yet
    /// swept out.
    ///
    /// ```
    /// let l = greenhub::sync::Local::new(|| 0);
    /// l.with(|_| ());
    /// assert_eq!(l.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// Whether no green thread has a value here.
    ///
    /// ```
    /// assert!(greenhub::sync::Local::new(|| 0).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("values", &self.slots.borrow().len())
            .finish_non_exhaustive()
    }
}
