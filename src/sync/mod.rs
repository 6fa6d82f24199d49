//! Coordination between green threads (gevent's `event`, `queue`, `lock`,
//! `local`): types that park the current green thread instead of blocking the
//! OS thread, all through the hub's one park/wake mechanism.
//!
//! - [`Event`]: a flag to wait for; [`AsyncResult`]: a value to wait for.
//!   Both are [`Waitable`](crate::wait::Waitable), so they can be waited on
//!   together with [`JoinHandle`](crate::JoinHandle)s.
//! - [`Queue`], [`LifoQueue`], [`PriorityQueue`], [`Channel`]: one
//!   [`GenericQueue`] with four storage orders.
//! - [`Semaphore`], [`BoundedSemaphore`], [`Mutex`], [`RLock`].
//! - [`Local`]: a value per green thread.
//!
//! Every waiting call is served in arrival order: what frees up (a permit,
//! an item, a place in a bounded queue) is handed directly to the green
//! thread that has waited longest, so a newcomer never takes it first. Each
//! waiting call has a `_timeout` variant. A green thread killed (or cut short
//! by [`with_timeout`](crate::with_timeout)) while waiting, even right after
//! something was handed to it, leaves the structure as if it had never
//! waited: what it was handed goes to the next waiter.
//!
//! The types are `!Send` and `!Sync`, like the green threads that use them;
//! share them between green threads with an `Rc` (an [`AsyncResult`] is
//! itself a shared handle).
//!
//! ```compile_fail
//! let q = greenhub::sync::Queue::<u8>::new();
//! std::thread::spawn(move || q.len()); // the queue is not Send
//! ```
//!
//! # Thread-locals
//!
//! Green threads never move between OS threads, so std's `thread_local!` is
//! sound inside them: every green thread of an OS thread sees that thread's
//! one value, which stays put while they switch. It is per OS thread, not
//! per green thread; use [`Local`] for a value per green thread.
//!
//! ```
//! use std::cell::Cell;
//! thread_local!(static HITS: Cell<u32> = const { Cell::new(0) });
//!
//! let h = greenhub::spawn(|| {
//!     HITS.with(|h| h.set(h.get() + 1));
//!     greenhub::yield_now(); // still on the same OS thread afterwards
//!     HITS.with(Cell::get)
//! });
//! HITS.with(|h| h.set(h.get() + 1));
//! assert_eq!(h.join().unwrap(), 2); // shared with the main green thread
//! ```

mod event;
mod local;
mod mutex;
mod queue;
mod result;
mod rlock;
mod semaphore;
pub(crate) use semaphore::Permits;
mod storage;
mod waiters;

pub use event::Event;
pub use local::Local;
pub use mutex::{Mutex, MutexGuard};
pub use queue::{GenericQueue, GetError, Iter, PutError, TaskDoneError};
pub use result::{AsyncError, AsyncResult, ResultState};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, ReleaseError, Semaphore, SemaphorePermit};
pub use storage::{Channel, Fifo, Lifo, LifoQueue, Priority, PriorityQueue, Queue, Rendezvous, Storage};
