//! The orders a [`GenericQueue`](super::GenericQueue) can keep its items
//! in, and the queue types named after them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;

use super::queue::GenericQueue;

/// A FIFO queue (gevent's `Queue`, asyncio's `Queue`): unbounded, or bounded
/// so that `put` parks while it is full.
///
/// ```
/// let q = greenhub::sync::Queue::new();
/// q.put(1).unwrap();
/// q.put(2).unwrap();
/// assert_eq!(q.get().unwrap(), 1);
/// ```
#[doc(alias = "JoinableQueue")]
pub type Queue<T> = GenericQueue<T, Fifo<T>>;

/// A LIFO queue (gevent's `LifoQueue`): the newest item comes out first.
///
/// ```
/// let q = greenhub::sync::LifoQueue::new();
/// q.put(1).unwrap();
/// q.put(2).unwrap();
/// assert_eq!(q.get().unwrap(), 2);
/// ```
pub type LifoQueue<T> = GenericQueue<T, Lifo<T>>;

/// A priority queue (gevent's `PriorityQueue`, Python's `heapq`): the
/// smallest item comes out first.
///
/// ```
/// let q = greenhub::sync::PriorityQueue::new();
/// for x in [5, 1, 3] { q.put(x).unwrap(); }
/// assert_eq!(q.get().unwrap(), 1);
/// ```
pub type PriorityQueue<T> = GenericQueue<T, Priority<T>>;

/// A rendezvous channel (gevent's `Channel`, Go's unbuffered `chan`): `put`
/// waits until a getter takes the item.
///
/// ```
/// use std::rc::Rc;
/// let ch = Rc::new(greenhub::sync::Channel::new());
/// let c = ch.clone();
/// let getter = greenhub::spawn(move || c.get().unwrap());
/// ch.put("hi").unwrap(); // returns once the getter has it
/// assert_eq!(getter.join().unwrap(), "hi");
/// ```
pub type Channel<T> = GenericQueue<T, Rendezvous<T>>;

/// How a queue stores its items: which one comes out next. Implemented by
/// [`Fifo`], [`Lifo`], [`Priority`] and [`Rendezvous`]; sealed.
///
/// ```
/// use greenhub::sync::{GenericQueue, Storage};
/// // Code generic over every kind of queue.
/// fn drain<T, S: Storage<T>>(q: &GenericQueue<T, S>) -> Vec<T> {
///     std::iter::from_fn(|| q.try_get().ok()).collect()
/// }
/// let q = greenhub::sync::LifoQueue::new();
/// q.put(1).unwrap();
/// q.put(2).unwrap();
/// assert_eq!(drain(&q), [2, 1]);
/// ```
pub trait Storage<T>: sealed::Ops<T> {}

pub(crate) mod sealed {
    /// The operations a queue needs from its storage.
    pub trait Ops<T>: Default {
        fn push(&mut self, item: T);
        fn pop(&mut self) -> Option<T>;
        /// Puts back an item that was taken but not delivered, so that it
        /// comes out next again.
        fn unpop(&mut self, item: T);
        /// The item `pop` would take next.
        fn peek(&self) -> Option<&T>;
        fn len(&self) -> usize;
    }
}

/// First in, first out: the storage of [`Queue`].
///
/// ```
/// let q: greenhub::sync::GenericQueue<u8, greenhub::sync::Fifo<u8>> = greenhub::sync::Queue::new();
/// assert!(q.is_empty());
/// ```
pub struct Fifo<T>(VecDeque<T>);

/// Last in, first out: the storage of [`LifoQueue`].
///
/// ```
/// let q: greenhub::sync::GenericQueue<u8, greenhub::sync::Lifo<u8>> = greenhub::sync::LifoQueue::new();
/// assert!(q.is_empty());
/// ```
pub struct Lifo<T>(Vec<T>);

/// Smallest first: the storage of [`PriorityQueue`].
///
/// ```
/// let q: greenhub::sync::GenericQueue<u8, greenhub::sync::Priority<u8>> = greenhub::sync::PriorityQueue::new();
/// assert!(q.is_empty());
/// ```
pub struct Priority<T>(BinaryHeap<Reverse<T>>);

/// First in, first out, holding nothing in the normal course: the storage of
/// [`Channel`]. An item handed to a getter that died before taking it lands
/// here, to be served first.
///
/// ```
/// let q: greenhub::sync::GenericQueue<u8, greenhub::sync::Rendezvous<u8>> = greenhub::sync::Channel::new();
/// assert!(q.is_empty());
/// ```
pub struct Rendezvous<T>(Fifo<T>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T: Ord> Default for Priority<T> {
    fn default() -> Self {
        Priority(BinaryHeap::new())
    }
}

impl<T> Default for Rendezvous<T> {
    fn default() -> Self {
        Rendezvous(Fifo::default())
    }
}

impl<T> sealed::Ops<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn unpop(&mut self, item: T) {
        self.0.push_front(item);
    }
    fn peek(&self) -> Option<&T> {
        self.0.front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T> sealed::Ops<T> for Rendezvous<T> {
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn unpop(&mut self, item: T) {
        self.0.unpop(item);
    }
    fn peek(&self) -> Option<&T> {
        self.0.peek()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T> sealed::Ops<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn unpop(&mut self, item: T) {
        self.0.push(item);
    }
    fn peek(&self) -> Option<&T> {
        self.0.last()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T: Ord> sealed::Ops<T> for Priority<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(x)| x)
    }
    fn unpop(&mut self, item: T) {
        self.push(item);
    }
    fn peek(&self) -> Option<&T> {
        self.0.peek().map(|Reverse(x)| x)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<T> Storage<T> for Fifo<T> {}
impl<T> Storage<T> for Lifo<T> {}
impl<T: Ord> Storage<T> for Priority<T> {}
impl<T> Storage<T> for Rendezvous<T> {}

impl<T> Queue<T> {
    /// An unbounded queue.
    ///
    /// ```
    /// let q = greenhub::sync::Queue::new();
    /// q.put("a").unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn new() -> Queue<T> {
        GenericQueue::with_capacity(None)
    }

    /// A queue holding at most `capacity` items; `put` parks while it is
    /// full. `bounded(0)` behaves as a [`Channel`].
    ///
    /// ```
    /// let q = greenhub::sync::Queue::bounded(1);
    /// q.put(1).unwrap();
    /// assert!(q.is_full());
    /// assert!(q.try_put(2).is_err());
    /// ```
    pub fn bounded(capacity: usize) -> Queue<T> {
        GenericQueue::with_capacity(Some(capacity))
    }
}

impl<T> LifoQueue<T> {
    /// An unbounded LIFO queue.
    ///
    /// ```
    /// let q = greenhub::sync::LifoQueue::<u8>::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn new() -> LifoQueue<T> {
        GenericQueue::with_capacity(None)
    }

    /// A LIFO queue holding at most `capacity` items.
    ///
    /// ```
    /// let q = greenhub::sync::LifoQueue::bounded(2);
    /// q.put(1).unwrap();
    /// assert_eq!(q.capacity(), Some(2));
    /// ```
    pub fn bounded(capacity: usize) -> LifoQueue<T> {
        GenericQueue::with_capacity(Some(capacity))
    }
}

impl<T: Ord> PriorityQueue<T> {
    /// An unbounded priority queue.
    ///
    /// ```
    /// let q = greenhub::sync::PriorityQueue::<u8>::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn new() -> PriorityQueue<T> {
        GenericQueue::with_capacity(None)
    }

    /// A priority queue holding at most `capacity` items.
    ///
    /// ```
    /// let q = greenhub::sync::PriorityQueue::bounded(1);
    /// q.put(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn bounded(capacity: usize) -> PriorityQueue<T> {
        GenericQueue::with_capacity(Some(capacity))
    }
}

impl<T> Channel<T> {
    /// A new channel.
    ///
    /// ```
    /// let ch = greenhub::sync::Channel::<u8>::new();
    /// assert!(ch.try_put(1).is_err()); // nobody is waiting to take it
    /// ```
    pub fn new() -> Channel<T> {
        GenericQueue::with_capacity(Some(0))
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue::new()
    }
}

impl<T> Default for LifoQueue<T> {
    fn default() -> LifoQueue<T> {
        LifoQueue::new()
    }
}

impl<T: Ord> Default for PriorityQueue<T> {
    fn default() -> PriorityQueue<T> {
        PriorityQueue::new()
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Channel<T> {
        Channel::new()
    }
}

impl<T> fmt::Debug for Fifo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fifo({} items)", self.0.len())
    }
}

impl<T> fmt::Debug for Lifo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lifo({} items)", self.0.len())
    }
}

impl<T> fmt::Debug for Priority<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Priority({} items)", self.0.len())
    }
}

impl<T> fmt::Debug for Rendezvous<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rendezvous({} items)", self.0 .0.len())
    }
}
