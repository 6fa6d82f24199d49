//! # greenhub
//!
//! Stackful green threads with a gevent-style hub. Code reads like plain
//! blocking code — `sleep(d)`, `spawn(f)`, `join_all(..)` — while one OS
//! thread runs thousands of green threads: every call that would block parks
//! the current green thread and switches to the hub, which runs whatever is
//! ready and waits on epoll (kqueue on macOS and FreeBSD) when nothing is.
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
//! With the `monkey` feature, `monkey::patch_all()` makes libc's blocking
//! calls (std's sockets, sleeps, DNS, child processes, and C libraries)
//! park the green thread instead of the OS thread, as gevent's
//! `monkey.patch_all()` does; see the `monkey` module.
//!
//! Kills and timeouts unwind the target's stack, so greenhub needs
//! `panic = "unwind"` (the default).
//!
//! # Timeouts
//!
//! Every timed call is the untimed one with a `_timeout` suffix taking a
//! `Duration` (turned into a deadline once, so retries inside never stretch
//! it); [`with_deadline`], [`hub::park`] and [`hub::wait_readable`] take
//! the deadline itself. What a timed call returns follows one rule, by what
//! the untimed call returns:
//!
//! | the untimed call returns | the timed call returns | calls |
//! |---|---|---|
//! | nothing (it only waits) | `bool`, `true` if it finished in time; `#[must_use]` | `Event::wait_timeout`, `Queue::join_timeout`, `Group`/`Pool::join_timeout`, `Pool::wait_available_timeout`, `JoinHandle::kill_timeout`, `wait::kill_all_timeout` |
//! | `io::Result` (an fd is involved) | the same, with `ErrorKind::TimedOut` | `accept_timeout`, `connect_timeout`, `TcpStream::connect_with`, `set_read_timeout`/`set_write_timeout`, `hub::wait_readable`, `signal::wait_timeout`, `Signals::recv_timeout` |
//! | a value that can fail otherwise | its own error type, with a `TimedOut` case | `JoinHandle`/`RemoteJoinHandle::join_timeout` → `JoinError::TimedOut`; `get_timeout` → `GetError::TimedOut`, `AsyncError::TimedOut`; `put_timeout` → `PutError::TimedOut(item)` (the item comes back) |
//! | a value that cannot fail | `Result<_, Elapsed>` | `with_timeout`, `with_deadline`, `Mutex`/`RLock::lock_timeout`, `Semaphore::acquire_timeout` |
//! | one answer about many items | the part that is ready when time runs out | `wait::wait_any_timeout` → `Option<usize>`, `join_all_timeout` → the finished indices, `as_completed_timeout` (ends early; `timed_out()` says so), `select::select` → an empty `Selected`, `hub::park` → `Wake::TimedOut` |
//!
//! The last row is the one exception to "a timeout is an error or
//! `false`": for several items, what did finish is the useful answer, as
//! gevent's `wait(timeout=)` and `select` return it.
//!
//! A timeout whose deadline lies past what `Instant` can hold
//! (`Duration::MAX` and the like) means "never": the call waits as its
//! untimed form does (`call_later`/`spawn_later` never come due), instead
//! of panicking on std's overflow.
//!
//! ```
//! use std::time::Duration;
//! use greenhub::sync::{Event, GetError, Queue};
//! let short = Duration::from_millis(5);
//! assert!(!Event::new().wait_timeout(short)); // waits only: bool
//! assert_eq!(Queue::<u8>::new().get_timeout(short), Err(GetError::TimedOut)); // its own error
//! let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
//! assert!(greenhub::join_all_timeout([&h], short).is_empty()); // the part that finished
//! h.kill();
//! ```
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
//!
//! # Debugging
//!
//! A green thread that computes for long or blocks its OS thread
//! (`std::thread::sleep`, a std `Mutex`, file I/O) stalls every other green
//! thread of its hub. `GREENHUB_MONITOR=1` in the environment starts a
//! watchdog that reports such stalls on stderr (which green thread, where it
//! was spawned, for how long; threshold `GREENHUB_MAX_BLOCKING_MS`, default
//! 100 ms); [`debug::run_info`] lists every live green thread of the hub and
//! what it waits on, and `GREENHUB_DUMP_ON_SIGQUIT=1` prints that on
//! SIGQUIT. Panics in green threads name them. The [`debug`] module has the
//! details, what a report looks like, and what the monitor cannot see; the
//! feature `tracing` keeps tracing's current span per green thread.

pub mod blocking;
pub mod debug;
pub mod greenlet;
pub mod hub;
mod link;
#[cfg(feature = "monkey")]
pub mod monkey;
#[doc(alias = "socket")]
pub mod net;
pub mod pool;
pub mod runtime;
pub mod select;
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
    current_name, join_all, join_all_timeout, spawn, spawn_later, Builder, JoinError, JoinHandle, Panic,
};
pub use timeout::{with_deadline, with_timeout, Elapsed};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
