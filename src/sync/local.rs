//! [`Local`]: green-thread-local values (gevent's `local`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::greenlet::core;

type Slots<T> = Rc<RefCell<HashMap<u64, Rc<T>>>>;

/// A value per green thread: each green thread that calls
/// [`with`](Local::with) sees its own value, made by the init function on
/// its first use, as `thread_local!` does per OS thread. A green thread's
/// value is dropped as it ends (on its own stack, after its function
/// returned or unwound). The root green thread's value lives as long as the
/// `Local`.
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
#[doc(alias = "local")]
pub struct Local<T> {
    init: Box<dyn Fn() -> T>,
    /// Shared with each green thread's exit hook, weakly.
    slots: Slots<T>,
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
            slots: Rc::new(RefCell::new(HashMap::new())),
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
        let id = core::with_current(|g| g.id);
        if let Some(value) = self.slots.borrow().get(&id) {
            return value.clone();
        }
        // No borrow is held while `init` runs: it may use this `Local`, or block.
        let value = Rc::new((self.init)());
        let replaced = self.slots.borrow_mut().insert(id, value.clone());
        if replaced.is_none() {
            let slots = Rc::downgrade(&self.slots);
            core::on_exit(Box::new(move || {
                let ended = slots.upgrade().and_then(|s| s.borrow_mut().remove(&id));
                // Dropped outside the borrow: its destructor may use a Local.
                drop(ended);
            }));
        }
        drop(replaced);
        value
    }

    /// How many green threads have a value here.
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
