//! [`GenericQueue`]: the one implementation behind [`Queue`](super::Queue),
//! [`LifoQueue`](super::LifoQueue), [`PriorityQueue`](super::PriorityQueue)
//! and [`Channel`](super::Channel), which differ only in their storage.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::storage::Storage;
use super::waiters::WaitList;
use crate::debug::WaitTag;
use crate::hub::Wake;

/// Why an item could not be put; the item comes back inside.
///
/// ```
/// use greenhub::sync::{PutError, Queue};
/// let q = Queue::bounded(1);
/// q.put("a").unwrap();
/// match q.try_put("b") {
///     Err(PutError::Full(item)) => assert_eq!(item, "b"), // not lost
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(PartialEq, Eq)]
pub enum PutError<T> {
    /// [`try_put`](GenericQueue::try_put): the queue is full (for a
    /// [`Channel`](super::Channel): no getter is waiting).
    Full(T),
    /// [`put_timeout`](GenericQueue::put_timeout): still full when the time
    /// ran out.
    TimedOut(T),
    /// The queue was [`close`](GenericQueue::close)d.
    Closed(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::bounded(0);
    /// assert_eq!(q.try_put(7).unwrap_err().into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::TimedOut(t) | PutError::Closed(t) => t,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::TimedOut(_) => f.write_str("TimedOut(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "the queue is full",
            PutError::TimedOut(_) => "timed out waiting for room in the queue",
            PutError::Closed(_) => "the queue is closed",
        })
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why no item could be taken.
///
/// ```
/// use greenhub::sync::{GetError, Queue};
/// let q = Queue::<u8>::new();
/// assert_eq!(q.try_get(), Err(GetError::Empty));
/// q.close();
/// assert_eq!(q.get(), Err(GetError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetError {
    /// [`try_get`](GenericQueue::try_get): the queue is empty.
    Empty,
    /// [`get_timeout`](GenericQueue::get_timeout): still empty when the
    /// time ran out.
    TimedOut,
    /// The queue was closed and every item has been taken.
    Closed,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GetError::Empty => "the queue is empty",
            GetError::TimedOut => "timed out waiting for an item",
            GetError::Closed => "the queue is closed and drained",
        })
    }
}

impl std::error::Error for GetError {}

/// [`task_done`](GenericQueue::task_done) was called more times than items
/// were put.
///
/// ```
/// let q = greenhub::sync::Queue::new();
/// q.put(1).unwrap();
/// q.get().unwrap();
/// assert!(q.task_done().is_ok());
/// assert_eq!(q.task_done(), Err(greenhub::sync::TaskDoneError));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than items were put")
    }
}

impl std::error::Error for TaskDoneError {}

/// A queue between green threads, generic over the order it keeps items in
/// (its [`Storage`]). Use it through [`Queue`](super::Queue),
/// [`LifoQueue`](super::LifoQueue), [`PriorityQueue`](super::PriorityQueue)
/// or [`Channel`](super::Channel).
///
/// - Parked getters and putters are served in arrival order: an item or a
///   free place goes straight to the longest waiting green thread.
/// - [`task_done`](GenericQueue::task_done) and
///   [`join`](GenericQueue::join) make it a `JoinableQueue`.
/// - [`close`](GenericQueue::close) ends it: puts fail, and getters get
///   [`GetError::Closed`] once the remaining items are taken.
/// - A getter killed (or timed out by `with_timeout`) after an item was
///   handed to it but before it ran puts the item back in front, so that it
///   goes to the next getter: no item is ever lost. For a bounded queue the
///   length may then exceed the capacity by that item for a moment.
///
/// ```
/// use greenhub::sync::Queue;
/// use std::rc::Rc;
///
/// let q = Rc::new(Queue::bounded(2));
/// let producer = {
///     let q = q.clone();
///     greenhub::spawn(move || {
///         for i in 0..5 { q.put(i).unwrap(); } // parks while 2 are queued
///         q.close();
///     })
/// };
/// let got: Vec<i32> = q.iter().collect(); // until closed and drained
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// producer.join().unwrap();
/// ```
pub struct GenericQueue<T, S> {
    items: RefCell<S>,
    /// `None`: unbounded. `Some(0)`: a rendezvous.
    capacity: Option<usize>,
    /// Parked getters; an item is handed into the slot of the first.
    getters: WaitList<T>,
    /// Parked putters, each offering its item in its slot.
    putters: WaitList<T>,
    /// Parked `join` callers, woken when `unfinished` drops to 0.
    joiners: WaitList<()>,
    /// Items put and not yet marked done with `task_done`.
    unfinished: Cell<usize>,
    closed: Cell<bool>,
    _items: PhantomData<T>,
}

impl<T, S: Storage<T>> GenericQueue<T, S> {
    pub(crate) fn with_capacity(capacity: Option<usize>) -> Self {
        GenericQueue {
            items: RefCell::new(S::default()),
            capacity,
            getters: WaitList::new(),
            putters: WaitList::new(),
            joiners: WaitList::new(),
            unfinished: Cell::new(0),
            closed: Cell::new(false),
            _items: PhantomData,
        }
    }

    /// Puts `item`, waiting while the queue is full (for a
    /// [`Channel`](super::Channel): until a getter takes it).
    ///
    /// # Errors
    /// [`PutError::Closed`] if the queue is closed (also while waiting).
    ///
    /// # Blocking
    /// Parks the current green thread while the queue is full.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::new();
    /// q.put(1).unwrap(); // an unbounded queue never parks
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None)
    }

    /// Like [`put`](GenericQueue::put), giving up after `timeout`.
    ///
    /// # Errors
    /// [`PutError::TimedOut`] when still full at the deadline;
    /// [`PutError::Closed`].
    ///
    /// # Blocking
    /// Parks the current green thread while the queue is full, at most until
    /// the time runs out.
    ///
    /// ```
    /// use greenhub::sync::{PutError, Queue};
    /// let q = Queue::bounded(1);
    /// q.put(1).unwrap();
    /// let err = q.put_timeout(2, std::time::Duration::from_millis(5)).unwrap_err();
    /// assert_eq!(err, PutError::TimedOut(2));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, crate::hub::deadline_after(timeout))
    }

    /// Puts `item` if that needs no waiting.
    ///
    /// # Errors
    /// [`PutError::Full`] or [`PutError::Closed`].
    ///
    /// ```
    /// use greenhub::sync::{PutError, Queue};
    /// let q = Queue::bounded(1);
    /// assert_eq!(q.try_put(1), Ok(()));
    /// assert_eq!(q.try_put(2), Err(PutError::Full(2)));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        if self.closed.get() {
            return Err(PutError::Closed(item));
        }
        self.offer(item).map_err(PutError::Full)
    }

    fn put_until(&self, mut item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        loop {
            if self.closed.get() {
                return Err(PutError::Closed(item));
            }
            item = match self.offer(item) {
                Ok(()) => return Ok(()),
                Err(item) => item,
            };
            // A killed putter's item was never put: dropping it is right.
            item = match self
                .putters
                .wait_as(WaitTag::QUEUE_PUT, deadline, Some(item), drop)
            {
                (None, _) => return Ok(()),
                (Some(item), Wake::TimedOut) if !self.closed.get() => return Err(PutError::TimedOut(item)),
                (Some(item), _) => item,
            };
        }
    }

    /// Delivers `item` to the first parked getter, or stores it if there is
    /// room; gives it back otherwise.
    fn offer(&self, item: T) -> Result<(), T> {
        if let Err(item) = self.getters.hand(item) {
            let mut items = self.items.borrow_mut();
            if self.capacity.is_some_and(|cap| items.len() >= cap) {
                return Err(item);
            }
            items.push(item);
        }
        self.count_put();
        Ok(())
    }

    /// Every item that gets in counts as unfinished until `task_done`.
    fn count_put(&self) {
        self.unfinished.set(self.unfinished.get() + 1);
    }

    /// Takes an item, waiting while the queue is empty.
    ///
    /// # Errors
    /// [`GetError::Closed`] once the queue is closed and empty.
    ///
    /// # Blocking
    /// Parks the current green thread while the queue is empty.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let q = Rc::new(greenhub::sync::Queue::new());
    /// let q2 = q.clone();
    /// greenhub::spawn(move || q2.put("late").unwrap());
    /// assert_eq!(q.get().unwrap(), "late");
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(None)
    }

    /// Like [`get`](GenericQueue::get), giving up after `timeout`.
    ///
    /// # Errors
    /// [`GetError::TimedOut`] when still empty at the deadline;
    /// [`GetError::Closed`].
    ///
    /// # Blocking
    /// Parks the current green thread while the queue is empty, at most until
    /// the time runs out.
    ///
    /// ```
    /// use greenhub::sync::{GetError, Queue};
    /// let q = Queue::<u8>::new();
    /// assert_eq!(q.get_timeout(std::time::Duration::from_millis(5)), Err(GetError::TimedOut));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(crate::hub::deadline_after(timeout))
    }

    /// Takes an item if one is there now.
    ///
    /// # Errors
    /// [`GetError::Empty`], or [`GetError::Closed`] if also closed.
    ///
    /// ```
    /// use greenhub::sync::{GetError, Queue};
    /// let q = Queue::new();
    /// assert_eq!(q.try_get(), Err(GetError::Empty));
    /// q.put(1).unwrap();
    /// assert_eq!(q.try_get(), Ok(1));
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        match self.take_now() {
            Some(item) => Ok(item),
            None if self.closed.get() => Err(GetError::Closed),
            None => Err(GetError::Empty),
        }
    }

    /// Runs `f` on the item the next [`get`](GenericQueue::get) would take,
    /// without taking it (gevent's `peek(block=False)`); `None` if the queue
    /// holds none. Never parks. The item is borrowed for the length of `f`,
    /// which must not touch the queue (it would panic: the queue is
    /// borrowed). A [`Channel`](super::Channel) stores no items, so it has
    /// none to show; an item offered by a parked putter of a full bounded
    /// queue is not shown either, only stored ones.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::new();
    /// assert_eq!(q.peek_with(|s: &String| s.len()), None);
    /// q.put(String::from("first")).unwrap();
    /// q.put(String::from("second")).unwrap();
    /// assert_eq!(q.peek_with(|s| s.len()), Some(5));
    /// assert_eq!(q.len(), 2); // nothing taken
    /// ```
    #[doc(alias = "peek_nowait")]
    pub fn peek_with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.items.borrow().peek().map(f)
    }

    /// A clone of the item the next [`get`](GenericQueue::get) would take,
    /// as [`peek_with`](GenericQueue::peek_with); `None` if there is none.
    ///
    /// ```
    /// let q = greenhub::sync::PriorityQueue::new();
    /// q.put(3).unwrap();
    /// q.put(1).unwrap();
    /// assert_eq!(q.peek(), Some(1)); // smallest first
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    #[must_use]
    pub fn peek(&self) -> Option<T>
    where
        T: Clone,
    {
        self.peek_with(T::clone)
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        loop {
            match self.try_get() {
                Err(GetError::Empty) => {}
                done => return done,
            }
            match self
                .getters
                .wait_as(WaitTag::QUEUE_GET, deadline, None, |item| self.give_back(item))
            {
                (Some(item), _) => return Ok(item),
                (None, Wake::TimedOut) => return Err(GetError::TimedOut),
                (None, Wake::Ready) => {}
            }
        }
    }

    /// An item stored or offered by a parked putter, if any.
    fn take_now(&self) -> Option<T> {
        let item = self.items.borrow_mut().pop();
        match item {
            Some(item) => {
                self.refill();
                Some(item)
            }
            // A rendezvous stores nothing: take straight from a putter.
            None => self.putters.take().inspect(|_| self.count_put()),
        }
    }

    /// Moves the items of parked putters into freed places, in their order.
    fn refill(&self) {
        let Some(cap) = self.capacity else { return };
        while self.items.borrow().len() < cap {
            match self.putters.take() {
                Some(item) => {
                    self.items.borrow_mut().push(item);
                    self.count_put();
                }
                None => break,
            }
        }
    }

    /// Returns an item handed to a getter that unwound before taking it: to
    /// the next getter, or back to the front of the queue.
    fn give_back(&self, item: T) {
        if let Err(item) = self.getters.hand(item) {
            self.items.borrow_mut().unpop(item);
        }
    }
}

impl<T, S: Storage<T>> GenericQueue<T, S> {
    /// Closes the queue: later puts fail with [`PutError::Closed`], parked
    /// putters are woken with that error (their items were not put), and
    /// getters receive the remaining items, then [`GetError::Closed`].
    /// Closing twice does nothing more.
    ///
    /// ```
    /// use greenhub::sync::{GetError, PutError, Queue};
    /// let q = Queue::new();
    /// q.put(1).unwrap();
    /// q.close();
    /// assert_eq!(q.put(2), Err(PutError::Closed(2)));
    /// assert_eq!(q.get(), Ok(1));
    /// assert_eq!(q.get(), Err(GetError::Closed));
    /// ```
    pub fn close(&self) {
        self.closed.set(true);
        self.putters.wake_all();
        // Parked getters exist only when nothing is stored; they re-check
        // and see the queue closed and drained.
        self.getters.wake_all();
    }

    /// Whether [`close`](GenericQueue::close) was called.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::<u8>::new();
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Marks one item taken earlier as processed (a `JoinableQueue`'s
    /// `task_done`); when every item put so far is, [`join`](GenericQueue::join)
    /// returns.
    ///
    /// # Errors
    /// [`TaskDoneError`] if every item put is already marked done.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::new();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err());
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let left = self.unfinished.get().checked_sub(1).ok_or(TaskDoneError)?;
        self.unfinished.set(left);
        if left == 0 {
            self.joiners.hand_all(|| ());
        }
        Ok(())
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](GenericQueue::task_done).
    ///
    /// # Blocking
    /// Parks the current green thread while items are unfinished.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let q = Rc::new(greenhub::sync::Queue::new());
    /// let worker = {
    ///     let q = q.clone();
    ///     greenhub::spawn(move || while let Ok(_job) = q.get() { q.task_done().unwrap(); })
    /// };
    /// for job in 0..3 { q.put(job).unwrap(); }
    /// q.join(); // all three processed
    /// q.close();
    /// worker.join().unwrap();
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Like [`join`](GenericQueue::join), giving up after `timeout`; returns
    /// whether every item was done.
    ///
    /// # Blocking
    /// Parks the current green thread while items are unfinished, at most
    /// until the time runs out.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::new();
    /// q.put(1).unwrap();
    /// assert!(!q.join_timeout(std::time::Duration::from_millis(5)));
    /// ```
    #[must_use = "false means items are still unfinished"]
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(crate::hub::deadline_after(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        while self.unfinished.get() > 0 {
            match self.joiners.wait_as(WaitTag::QUEUE_JOIN, deadline, None, drop) {
                (Some(()), _) => return true,
                (None, Wake::TimedOut) => return self.unfinished.get() == 0,
                (None, Wake::Ready) => {}
            }
        }
        true
    }

    /// How many items are stored (not counting the offers of parked putters).
    ///
    /// ```
    /// let q = greenhub::sync::Queue::new();
    /// q.put('x').unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// Whether no item is stored.
    ///
    /// ```
    /// assert!(greenhub::sync::Queue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the stored items fill the capacity (always false when
    /// unbounded, always true for a [`Channel`](super::Channel)).
    ///
    /// ```
    /// let q = greenhub::sync::Queue::bounded(1);
    /// assert!(!q.is_full());
    /// q.put(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.capacity.is_some_and(|cap| self.len() >= cap)
    }

    /// The capacity: `None` if unbounded.
    ///
    /// ```
    /// assert_eq!(greenhub::sync::Queue::<u8>::bounded(8).capacity(), Some(8));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// An iterator taking items with [`get`](GenericQueue::get) until the
    /// queue is closed and drained.
    ///
    /// # Blocking
    /// Its `next` parks the current green thread while the queue is empty.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::new();
    /// for i in 0..3 { q.put(i).unwrap(); }
    /// q.close();
    /// assert_eq!(q.iter().sum::<i32>(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T, S> {
        Iter { queue: self }
    }
}

/// The iterator of [`GenericQueue::iter`]: `next` is `get` until the queue
/// is closed and drained.
///
/// ```
/// let q = greenhub::sync::Queue::new();
/// q.put(1).unwrap();
/// q.close();
/// let mut it = q.iter();
/// assert_eq!(it.next(), Some(1));
/// assert_eq!(it.next(), None);
/// ```
pub struct Iter<'a, T, S> {
    queue: &'a GenericQueue<T, S>,
}

impl<T, S: Storage<T>> Iterator for Iter<'_, T, S> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.get().ok()
    }
}

impl<'a, T, S: Storage<T>> IntoIterator for &'a GenericQueue<T, S> {
    type Item = T;
    type IntoIter = Iter<'a, T, S>;

    fn into_iter(self) -> Iter<'a, T, S> {
        self.iter()
    }
}

impl<T, S> fmt::Debug for Iter<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<T, S: Storage<T>> fmt::Debug for GenericQueue<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("getters", &self.getters.count())
            .field("putters", &self.putters.count())
            .field("unfinished", &self.unfinished.get())
            .field("closed", &self.closed.get())
            .finish()
    }
}
