//! Seeing what the hub is doing: green thread names in panic messages, a
//! blocking monitor, run info (every live green thread and what it waits
//! on), a dump of it on SIGQUIT, a switch hook, and (feature `tracing`)
//! tracing spans kept per green thread.
//!
//! # Environment variables
//!
//! Read once, when the process's first hub is created:
//!
//! | variable | effect |
//! |---|---|
//! | `GREENHUB_MONITOR=1` | starts the [blocking monitor](monitor) |
//! | `GREENHUB_MAX_BLOCKING_MS=N` | its threshold (default 100 ms) |
//! | `GREENHUB_DUMP_ON_SIGQUIT=1` | every hub prints its [`run_info`] on SIGQUIT (see [`dump_on_sigquit`]) |
//!
//! # Panics name the green thread
//!
//! A panic in a green thread reads
//! `green thread 'panicker' (#12) panicked at src/main.rs:9:13:` instead of
//! std's `thread 'main' panicked at ...`. See [`install_panic_hook`] for how
//! this coexists with a panic hook of your own. A join of it returns
//! [`JoinError::Panicked`](crate::JoinError::Panicked) with a
//! [`Panic`](crate::Panic) that names it the same way:
//! `green thread 'panicker' (#12) panicked: boom`.
//!
//! # The blocking monitor
//!
//! A green thread that computes for a long time, or calls something that
//! blocks the OS thread (`std::thread::sleep`, a std `Mutex`, a regular file,
//! a C library's socket), stops every other green thread of its hub. The
//! monitor is one watchdog thread that notices a hub that has not switched
//! for longer than a threshold and reports it once per stall:
//!
//! ```text
//! greenhub monitor: the hub of thread 'main' (ThreadId(1)) has not switched for 104 ms:
//!   green thread 'busy' (#3), spawned at examples/debug_blocking.rs:20:9, has been running all that time
//!   (it computes, or it blocks the OS thread: std::thread::sleep, a std Mutex, file or foreign I/O)
//! ```
//!
//! What it cannot see: the blocked thread's stack (no backtrace: taking one
//! from another thread needs a signal handler that walks frames, and std's
//! unwinder is not async-signal-safe; rather than a report that could
//! deadlock in `malloc`, it names the green thread and where it was spawned),
//! a stall shorter than the threshold, and a hub that is stalled because
//! *another* OS thread holds a lock it waits for (it names the waiting green
//! thread, not the holder). A green thread spawned before the monitor was
//! started with [`monitor::start`] is reported by id and spawn site, without
//! its name.
//!
//! # Run info
//!
//! [`run_info`] lists every live green thread of the current hub, as
//! `gevent.util.print_run_info()` does:
//!
//! ```text
//! hub of thread 'main': 4 turns, 0 ready, 1 timers, 2 fds registered (1 waited on), stacks: 2 in use, 0 pooled
//!   #0 main: running
//!   #7 'reader' spawned at src/main.rs:12:5: parked: read on fd 5 for 1520 ms
//!   #8 spawned at src/main.rs:16:5: parked: sleep for 60 ms, wakes in 940 ms
//!   #9 'waiter' spawned at src/main.rs:18:5: parked: join of #7 for 1519 ms
//! ```
//!
//! Each line: id, name, spawn site, then its state: `running` (the caller),
//! `ready` (queued to run), `parked: <what it waits on>` (sleep; read or
//! write on fd N; Event; Queue get/put/join; join of #id; remote call (a
//! blocking call on the thread pool or a call to another hub); lock; signal;
//! a plain `hub::park`), `waiting for a switch` (a [`Greenlet`](crate::Greenlet)
//! paused in `switch`) or `not started`. A park says how long it has
//! waited ("for N ms") and, if it has a deadline, how long it has left.
//! The time waited comes from the hub's own clock readings (at each turn
//! that has timers, each wake from the poller, each look at the clock in a
//! long batch, and every 64 turns), copied into the record when it parks:
//! no clock read per park, which costs about 25 ns on the project's
//! test machine, against about 60 ns for a whole channel hand-off. It can therefore overstate by about a turn, or by as long as
//! the green thread computed without switching just before it parked.
//!
//! # Switch hook and tracing
//!
//! [`set_switch_hook`] calls a function on every switch (greenlet's
//! `settrace`). With the feature `tracing`, the span a green thread entered
//! is current only while that green thread runs, and a green thread spawned
//! inside a span runs in a span of its own (`green_thread{id, name}`) whose
//! parent is that span.

use std::panic::Location;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

use crate::greenlet::core::Inner;
use crate::greenlet::gref::GRef;

pub mod monitor;
mod panic_hook;
pub(crate) use panic_hook::describe as describe_green_thread;
mod run_info;
mod sigquit;
mod switch_hook;
#[cfg(feature = "tracing")]
mod trace;

pub use panic_hook::install_panic_hook;
pub use run_info::{run_info, RunInfo};
pub use sigquit::dump_on_sigquit;
pub use switch_hook::{set_switch_hook, SwitchHook};

/// Which per-switch machinery is on, process-wide: one relaxed load per
/// switch decides whether any of it runs (see `switch_in`).
static ACTIVE: AtomicU8 = AtomicU8::new(0);
const MONITOR: u8 = 1;
const HOOK: u8 = 2;
const TRACE: u8 = 4;
const DUMP: u8 = 8;

fn activate(bit: u8) {
    ACTIVE.fetch_or(bit, Ordering::Relaxed);
}

fn active(bit: u8) -> bool {
    ACTIVE.load(Ordering::Relaxed) & bit != 0
}

/// A green thread is about to run (the root included, when the trampoline
/// returns to it).
#[inline(always)]
pub(crate) fn switch_in(g: &Inner) {
    let bits = ACTIVE.load(Ordering::Relaxed) & (MONITOR | HOOK | TRACE);
    if bits == 0 {
        return;
    }
    // The monitor alone (the `GREENHUB_MONITOR=1` case) publishes inline:
    // an out-of-line call that loads `ACTIVE` again cost about 30
    // instructions per switch (callgrind), 8% of a greenlet switch.
    if bits == MONITOR {
        monitor::running(g.id, g.site.get());
        return;
    }
    switch_in_slow(g, bits);
}

#[cold]
#[inline(never)]
fn switch_in_slow(g: &Inner, bits: u8) {
    if bits & MONITOR != 0 {
        monitor::running(g.id, g.site.get());
    }
    if bits & HOOK != 0 {
        switch_hook::switched_to(g.id);
    }
    #[cfg(feature = "tracing")]
    if bits & TRACE != 0 {
        trace::switch_to(g.id);
    }
}

/// The hub runs a callback: a stall now is the callback's, not the last
/// green thread's. (Nothing is published when a green thread suspends: a
/// check there measured as one more on every switch, and the hub's own work
/// between green threads is bounded; callbacks are user code.)
#[inline(always)]
pub(crate) fn in_callback() {
    if ACTIVE.load(Ordering::Relaxed) & MONITOR != 0 {
        monitor::running(monitor::HUB, None);
    }
}

/// The hub is about to sleep in the poller (`true`), or woke (`false`).
#[inline(always)]
pub(crate) fn hub_idle(idle: bool) {
    if ACTIVE.load(Ordering::Relaxed) & MONITOR != 0 {
        monitor::running(if idle { monitor::IDLE } else { monitor::HUB }, None);
    }
}

/// Once per process, as the first hub or green thread is created: the
/// panic hook, and the environment variables.
#[inline]
pub(crate) fn on_hub_created() {
    static ONCE: Once = Once::new();
    if ONCE.is_completed() {
        return;
    }
    ONCE.call_once(|| {
        panic_hook::install_panic_hook();
        if env_flag("GREENHUB_MONITOR") {
            monitor::start(monitor::Config::from_env());
        }
        if env_flag("GREENHUB_DUMP_ON_SIGQUIT") {
            activate(DUMP);
        }
        #[cfg(feature = "tracing")]
        activate(TRACE);
    });
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A green thread was created at `site`: record it, and let the monitor and
/// tracing know.
#[inline]
pub(crate) fn created(g: &GRef, site: &'static Location<'static>) {
    on_hub_created();
    g.site.set(Some(site));
    if ACTIVE.load(Ordering::Relaxed) & (MONITOR | TRACE | DUMP) != 0 {
        created_slow(g);
    }
}

#[cold]
fn created_slow(g: &GRef) {
    if active(MONITOR) {
        monitor::note_name(g);
    }
    if active(DUMP) {
        sigquit::ensure_hub_listens();
    }
    #[cfg(feature = "tracing")]
    if active(TRACE) {
        trace::created(g);
    }
}

/// A green thread ended.
#[inline]
pub(crate) fn ended(g: &Inner) {
    if ACTIVE.load(Ordering::Relaxed) & (MONITOR | TRACE) != 0 {
        ended_slow(g);
    }
}

#[cold]
fn ended_slow(g: &Inner) {
    if active(MONITOR) {
        monitor::forget_name(g.id);
    }
    #[cfg(feature = "tracing")]
    if active(TRACE) {
        trace::ended(g.id);
    }
}

/// What a parked green thread waits on, for [`run_info`]: a kind in the
/// high byte, an argument (an fd) in the low 24 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitTag(pub(crate) u32);

impl WaitTag {
    pub(crate) const PARK: WaitTag = WaitTag(0);
    pub(crate) const SLEEP: WaitTag = WaitTag(1 << 24);
    const READ: u32 = 2;
    const WRITE: u32 = 3;
    pub(crate) const EVENT: WaitTag = WaitTag(4 << 24);
    pub(crate) const QUEUE_GET: WaitTag = WaitTag(5 << 24);
    pub(crate) const QUEUE_PUT: WaitTag = WaitTag(6 << 24);
    pub(crate) const QUEUE_JOIN: WaitTag = WaitTag(7 << 24);
    pub(crate) const JOIN: WaitTag = WaitTag(8 << 24);
    pub(crate) const REMOTE: WaitTag = WaitTag(9 << 24);
    pub(crate) const LOCK: WaitTag = WaitTag(10 << 24);
    pub(crate) const SIGNAL: WaitTag = WaitTag(11 << 24);
    pub(crate) const RESULT: WaitTag = WaitTag(12 << 24);
    pub(crate) const WAIT_ANY: WaitTag = WaitTag(13 << 24);
    pub(crate) const RUN_FOREVER: WaitTag = WaitTag(14 << 24);
    pub(crate) const SELECT: WaitTag = WaitTag(15 << 24);
    /// Not started yet: starts after a delay (`spawn_later`).
    pub(crate) const START_LATER: WaitTag = WaitTag(16 << 24);
    const START_READABLE: u32 = 17;

    /// Waiting to read `fd` (fds past 2^24 show as that).
    pub(crate) fn read(fd: i32) -> WaitTag {
        WaitTag(Self::READ << 24 | (fd.max(0) as u32).min(0xff_ffff))
    }

    /// Waiting to write `fd`.
    pub(crate) fn write(fd: i32) -> WaitTag {
        WaitTag(Self::WRITE << 24 | (fd.max(0) as u32).min(0xff_ffff))
    }

    /// Not started yet: starts once `fd` is readable (`spawn_when_readable`).
    pub(crate) fn start_readable(fd: i32) -> WaitTag {
        WaitTag(Self::START_READABLE << 24 | (fd.max(0) as u32).min(0xff_ffff))
    }

    /// How `run_info` says it.
    pub(crate) fn describe(self) -> String {
        let arg = self.0 & 0xff_ffff;
        match self.0 >> 24 {
            0 => "hub::park".into(),
            1 => "sleep".into(),
            Self::READ => format!("read on fd {arg}"),
            Self::WRITE => format!("write on fd {arg}"),
            4 => "Event".into(),
            5 => "Queue get".into(),
            6 => "Queue put".into(),
            7 => "Queue join".into(),
            8 => "join".into(),
            9 => "remote call".into(),
            10 => "lock".into(),
            11 => "signal".into(),
            12 => "AsyncResult".into(),
            13 => "wait (any of several)".into(),
            14 => "run_forever".into(),
            15 => "select (readiness of several fds)".into(),
            16 => "its start (spawn_later), no stack yet".into(),
            Self::START_READABLE => format!("fd {arg} to be readable to start, no stack yet"),
            k => format!("wait kind {k}"),
        }
    }
}
