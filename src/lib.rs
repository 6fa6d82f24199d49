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
//! With the `monkey` feature, `monkey::patch_all()` makes libc's blocking
//! calls (std's sockets, sleeps, DNS, child processes, and C libraries)
//! park the green thread instead of the OS thread, as gevent's
//! `monkey.patch_all()` does; see the `monkey` module.
//!
//! Kills and timeouts unwind the target's stack, so greenhub needs
//! `panic = "unwind"` (the default).

pub mod blocking;
pub mod greenlet;
pub mod hub;
#[cfg(feature = "monkey")]
pub mod monkey;
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
pub use hub::{now, run_forever, sleep, sleep_until, stop, yield_now, Wake};
pub use runtime::Runtime;
pub use stack::DEFAULT_STACK_SIZE;
pub use task::{
    current_name, join_all, join_all_timeout, spawn, spawn_later, Builder, JoinError, JoinHandle,
};
pub use timeout::{with_deadline, with_timeout, Elapsed};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
