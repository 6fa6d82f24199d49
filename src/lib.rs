//! # greenhub
//!
//! Stackful green threads with a gevent-style hub. Code reads like plain
//! blocking code — `sleep(d)`, `spawn(f)`, `join_all(..)` — while one OS
//! thread runs thousands of green threads: every call that would block parks
//! the current green thread and switches to the hub, which runs whatever is
//! ready and waits on epoll when nothing is.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let a = greenhub::spawn(|| { greenhub::sleep(Duration::from_millis(40)); "a" });
//! let b = greenhub::spawn(|| { greenhub::sleep(Duration::from_millis(20)); "b" });
//! greenhub::join_all([&a, &b]);
//! assert_eq!((a.join().unwrap(), b.join().unwrap()), ("a", "b"));
//! assert!(start.elapsed() < Duration::from_millis(200)); // concurrently, not 60 ms in a row
//! ```
//!
//! Two layers:
//! - [`Greenlet`]: greenlet's explicit `switch(value)` between green threads,
//!   parents, return values, `throw`/`kill`.
//! - The hub: [`spawn`], [`sleep`], [`yield_now`], [`join_all`],
//!   [`with_timeout`], callbacks ([`call_soon`], [`call_later`], [`call_at`]),
//!   [`run_forever`]/[`stop`], and [`hub::park`], the one primitive through
//!   which everything blocks.
//!
//! Green threads never move between OS threads, so `spawn` takes closures
//! that are not `Send`, and `thread_local!` values are sound inside them.
//!
//! Kills and timeouts unwind the target's stack, so greenhub needs
//! `panic = "unwind"` (the default).
//!
//! # Rules for destructors
//!
//! A kill ([`JoinHandle::kill`], [`Greenlet::kill`]) or an expired
//! [`with_timeout`] unwinds the target green thread with a panic payload,
//! running its destructors. Two facts of Rust constrain what a destructor
//! may do then: the unwinder cannot take a second panic out of a destructor
//! that runs during unwinding (the process aborts: "panic in a destructor
//! during cleanup"), and std's panic count, which `std::thread::panicking()`
//! reads and which poisons a `std::sync::Mutex` whose guard is dropped while
//! it is raised, belongs to the OS thread, shared by all its green threads,
//! and cannot be saved and restored around a switch on stable Rust.
//!
//! So **a green thread that is unwinding never switches away**. While
//! `std::thread::panicking()` is true in it, every park it makes returns at
//! once as if its deadline had passed:
//! - [`sleep`] and [`yield_now`] return at once;
//! - I/O is tried once: a read or write that would block fails with
//!   `ErrorKind::TimedOut`;
//! - waits report a timeout: `wait_timeout` gives false, [`Event::wait`]
//!   returns, `Queue::get` gives `GetError::TimedOut`, [`JoinHandle::join`]
//!   of a green thread still running gives [`JoinError::TimedOut`], and
//!   `kill` requests the kill without waiting for it to land;
//! - waits that can report nothing (`Mutex::lock`, `RLock::lock`,
//!   `Semaphore::acquire`, `Pool::spawn` on a full pool) succeed if that
//!   needs no waiting and otherwise panic with a message saying so (which,
//!   from a destructor during unwinding, aborts, as a deadlock would have
//!   hung): use their `try_` or `_timeout` forms in destructors;
//! - an explicit [`Greenlet::try_switch`] is refused with
//!   [`SwitchError::Unwinding`]; dropping or killing a paused greenlet
//!   still unwinds it (it comes straight back).
//!
//! Therefore no kill or timeout can reach a green thread while it unwinds
//! (one aimed at it stays pending until the unwind is over, or is moot once
//! it has ended), and no other green thread ever runs with the panic count
//! raised. gevent lets a `finally` block wait; in Rust, cleanup that must
//! wait for another green thread belongs in the normal path (before the
//! scope ends), or in a green thread spawned from the destructor, which
//! runs once the unwind is over:
//!
//! ```
//! use std::time::Duration;
//!
//! struct Flush;
//! impl Drop for Flush {
//!     fn drop(&mut self) {
//!         if std::thread::panicking() {
//!             // Blocking here would not wait: hand the slow part over.
//!             greenhub::spawn(|| greenhub::sleep(Duration::from_millis(1)));
//!         } else {
//!             greenhub::sleep(Duration::from_millis(1)); // waits as usual
//!         }
//!     }
//! }
//!
//! let h = greenhub::spawn(|| {
//!     let _f = Flush;
//!     greenhub::sleep(Duration::from_secs(60));
//! });
//! greenhub::yield_now();
//! h.kill(); // its destructor runs; a second kill could not reach it
//! assert!(h.join().unwrap_err().is_killed());
//! ```
//!
//! Values nobody will take are dropped where blocking and panicking are
//! handled: the result of a detached green thread (its [`JoinHandle`]
//! dropped) on that green thread's own stack as it ends, and a panic in
//! such a `Drop`, or in a callback's panic payload, is reported by the
//! panic hook and goes no further.

pub mod blocking;
pub mod greenlet;
pub mod hub;
pub mod net;
pub mod pool;
pub mod runtime;
pub mod server;
pub mod signal;
mod stack;
pub mod sync;
mod sys;
mod task;
pub mod thread;
mod timeout;
pub mod wait;

pub use greenlet::{Greenlet, GreenletExit, SwitchError};
pub use hub::callback::{call_at, call_later, call_soon, CallHandle};
pub use hub::{now, reinit_after_fork, run_forever, sleep, sleep_until, stop, yield_now, Wake};
pub use runtime::Runtime;
pub use stack::DEFAULT_STACK_SIZE;
#[cfg(doc)]
use sync::Event;
pub use task::{
    current_name, join_all, join_all_timeout, spawn, spawn_later, Builder, JoinError, JoinHandle,
};
pub use timeout::{with_deadline, with_timeout, Elapsed};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
