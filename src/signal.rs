//! Unix signals on the hub: [`wait`] parks the current green thread until a
//! signal arrives, [`on`] runs a callback on the hub each time it does, and
//! [`Signals`] receives every arrival from the moment it is created. With
//! them Ctrl+C becomes a graceful stop instead of a killed process (see
//! `examples/graceful_shutdown.rs`).
//!
//! # Design
//!
//! A signal handler may only call async-signal-safe functions, so greenhub's
//! handler (installed with `sigaction`) does two things: it marks the signal
//! pending and writes one byte to a process-wide self-pipe. One dispatcher
//! OS thread, started on first use, blocks reading that pipe and hands each
//! arrival to every hub that asked for that signal through the hub's inbox
//! (the same path as [`HubHandle::call_soon`](crate::thread::HubHandle::call_soon)),
//! so the hub wakes at once; there the waiting green threads wake and the
//! handlers run, as ordinary hub callbacks.
//!
//! Why not `signalfd`: it only sees a signal that is blocked in *every*
//! thread, so each thread the program or its libraries start would have to
//! block it first, or the default action (for SIGINT: death) wins. The
//! self-pipe works whatever the thread layout. Why not one pipe per hub
//! written by the handler: the handler could not safely walk a list that
//! hubs change concurrently, nor know a pipe is still open.
//!
//! Only the hubs that asked receive a signal; several green threads waiting
//! for the same signal on one hub all wake. Arrivals close together may
//! coalesce into one, as the kernel coalesces signals. greenhub's handler is
//! installed while anything in the process waits for that signal (a
//! [`Signals`], a [`SignalHandler`], a [`wait`] in progress); when the last
//! one is dropped, the disposition that was there before comes back (for
//! SIGINT usually the default: the next Ctrl+C ends the process).
//!
//! ```
//! use greenhub::signal::{self, SIGUSR1};
//!
//! let waiter = greenhub::spawn(|| signal::wait(SIGUSR1));
//! greenhub::yield_now(); // the waiter is subscribed now
//! signal::raise(SIGUSR1).unwrap();
//! waiter.join().unwrap().unwrap();
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::hub::{self, Wake, Waker};
use crate::sys::signal as sys;
use crate::thread::HubHandle;

/// Common signal numbers, re-exported from `libc` so callers need no
/// `libc` dependency of their own.
pub use libc::{SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

/// The process-wide side: which hubs want which signal.
struct Global {
    signals: HashMap<i32, Subscribed>,
}

/// One signal with greenhub's handler installed.
struct Subscribed {
    /// The disposition to put back when no hub wants the signal any more.
    saved: sys::SavedAction,
    /// The hubs that want it, by their id in this module.
    hubs: Vec<(u64, HubHandle)>,
}

fn global() -> &'static Mutex<Global> {
    static GLOBAL: OnceLock<Mutex<Global>> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        Mutex::new(Global {
            signals: HashMap::new(),
        })
    })
}

fn lock_global() -> std::sync::MutexGuard<'static, Global> {
    global().lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the self-pipe and its dispatcher thread, once per process.
fn ensure_dispatcher() -> io::Result<()> {
    static STARTED: OnceLock<Result<(), io::ErrorKind>> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        let read = sys::open_self_pipe().map_err(|e| e.kind())?;
        std::thread::Builder::new()
            .name("greenhub-signal".into())
            .spawn(move || while sys::wait_pending(&read, dispatch).is_ok() {})
            .map(drop)
            .map_err(|e| e.kind())
    });
    started.map_err(|kind| io::Error::new(kind, "greenhub: cannot start the signal dispatcher"))
}

/// On the dispatcher thread: hands one arrival to every hub that wants it,
/// forgetting hubs that have stopped.
fn dispatch(signo: i32) {
    let mut g = lock_global();
    let Some(sub) = g.signals.get_mut(&signo) else {
        return;
    };
    sub.hubs
        .retain(|(_, hub)| hub.call_soon(move || deliver(signo)).is_ok());
    if sub.hubs.is_empty() {
        if let Some(sub) = g.signals.remove(&signo) {
            sys::restore(signo, &sub.saved);
        }
    }
}

/// Adds this hub to the signal's subscribers, installing the handler if it
/// is the first.
fn subscribe_hub(signo: i32, hub_id: u64) -> io::Result<()> {
    ensure_dispatcher()?;
    let mut g = lock_global();
    if let Some(sub) = g.signals.get_mut(&signo) {
        sub.hubs.push((hub_id, crate::thread::current_hub()));
        return Ok(());
    }
    let saved = sys::install(signo)?;
    let hubs = vec![(hub_id, crate::thread::current_hub())];
    g.signals.insert(signo, Subscribed { saved, hubs });
    Ok(())
}

/// Removes this hub from the signal's subscribers, restoring the previous
/// disposition after the last.
fn unsubscribe_hub(signo: i32, hub_id: u64) {
    let mut g = lock_global();
    let Some(sub) = g.signals.get_mut(&signo) else {
        return;
    };
    sub.hubs.retain(|(id, _)| *id != hub_id);
    if sub.hubs.is_empty() {
        if let Some(sub) = g.signals.remove(&signo) {
            sys::restore(signo, &sub.saved);
        }
    }
}

/// A handler installed with `on`, shared with the callbacks running it.
type Handler = Rc<RefCell<dyn FnMut()>>;

/// This hub's side of one signal.
#[derive(Default)]
struct Local {
    /// Live `Signals` and handlers for it on this hub.
    users: usize,
    /// Arrivals delivered to this hub so far: a waiter returns once this
    /// passes the count it has seen, so an arrival between two waits of a
    /// `Signals` is not lost.
    arrivals: u64,
    waiters: Vec<Waker>,
    handlers: Vec<(u64, Handler)>,
}

/// The signal state of this OS thread's hub.
struct HubSignals {
    /// Tells this hub apart in the process-wide subscriber lists.
    id: u64,
    signals: RefCell<HashMap<i32, Local>>,
    next_handler: Cell<u64>,
}

thread_local! {
    static HUB_SIGNALS: HubSignals = HubSignals {
        id: {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        },
        signals: RefCell::new(HashMap::new()),
        next_handler: Cell::new(0),
    };
}

/// On the hub: one arrival of `signo`. Waiters wake; each handler runs as a
/// callback of its own, so one that panics does not keep the others from
/// running.
fn deliver(signo: i32) {
    let (waiters, handlers) = HUB_SIGNALS.with(|h| {
        let mut signals = h.signals.borrow_mut();
        let Some(local) = signals.get_mut(&signo) else {
            return (Vec::new(), Vec::new());
        };
        local.arrivals += 1;
        let handlers: Vec<_> = local.handlers.iter().map(|(_, f)| f.clone()).collect();
        (std::mem::take(&mut local.waiters), handlers)
    });
    for w in waiters {
        w.wake();
    }
    for f in handlers {
        crate::call_soon(move || (f.borrow_mut())());
    }
}

/// One user of a signal on this hub; unsubscribes when dropped.
struct Subscription {
    signo: i32,
    hub_id: u64,
}

impl Subscription {
    fn new(signo: i32) -> io::Result<Subscription> {
        if !sys::can_handle(signo) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("greenhub: signal {signo} cannot be waited for (invalid, uncatchable or a fault)"),
            ));
        }
        let (hub_id, first) = HUB_SIGNALS.with(|h| {
            let mut signals = h.signals.borrow_mut();
            let local = signals.entry(signo).or_default();
            local.users += 1;
            (h.id, local.users == 1)
        });
        let sub = Subscription { signo, hub_id };
        if first {
            // On failure `sub`'s drop undoes the local count.
            subscribe_hub(signo, hub_id)?;
        }
        Ok(sub)
    }

    fn arrivals(&self) -> u64 {
        HUB_SIGNALS.with(|h| h.signals.borrow().get(&self.signo).map_or(0, |l| l.arrivals))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let last = HUB_SIGNALS
            .try_with(|h| {
                let mut signals = h.signals.borrow_mut();
                let local = signals.get_mut(&self.signo)?;
                local.users -= 1;
                (local.users == 0).then(|| signals.remove(&self.signo))
            })
            .map_or(true, |removed| removed.is_some());
        if last {
            unsubscribe_hub(self.signo, self.hub_id);
        }
    }
}

/// A subscription to one signal on this hub: receives every arrival from
/// the moment it is created, so none is lost between two calls of
/// [`recv`](Signals::recv). `!Send`: it belongs to the hub that made it.
///
/// ```compile_fail
/// let s = greenhub::signal::Signals::new(greenhub::signal::SIGUSR2).unwrap();
/// std::thread::spawn(move || s.signal()); // Signals is not Send
/// ```
///
/// ```
/// use greenhub::signal::{self, Signals, SIGUSR2};
///
/// let usr2 = Signals::new(SIGUSR2).unwrap();
/// signal::raise(SIGUSR2).unwrap(); // arrives before anyone waits: kept
/// usr2.recv();
/// ```
pub struct Signals {
    sub: Subscription,
    /// Arrivals already returned by `recv`.
    seen: Cell<u64>,
    _not_send: std::marker::PhantomData<Rc<()>>,
}

impl Signals {
    /// Subscribes this hub to `signo`, installing greenhub's handler for it
    /// if nothing in the process waits for it yet.
    ///
    /// # Errors
    /// `InvalidInput` for a signal that cannot be handled this way (SIGKILL,
    /// SIGSTOP, the fault signals SIGSEGV, SIGBUS, SIGILL and SIGFPE, or no
    /// signal at all); the OS error if the handler or the dispatcher cannot
    /// be set up.
    ///
    /// ```
    /// use greenhub::signal::{Signals, SIGHUP};
    /// let hup = Signals::new(SIGHUP).unwrap();
    /// assert_eq!(hup.signal(), SIGHUP);
    /// assert!(Signals::new(9).is_err()); // SIGKILL cannot be caught
    /// ```
    pub fn new(signo: i32) -> io::Result<Signals> {
        let sub = Subscription::new(signo)?;
        let seen = Cell::new(sub.arrivals());
        Ok(Signals {
            sub,
            seen,
            _not_send: std::marker::PhantomData,
        })
    }

    /// The signal number.
    ///
    /// ```
    /// let s = greenhub::signal::Signals::new(greenhub::signal::SIGWINCH).unwrap();
    /// assert_eq!(s.signal(), greenhub::signal::SIGWINCH);
    /// ```
    pub fn signal(&self) -> i32 {
        self.sub.signo
    }

    /// Waits for the next arrival not yet received (returns at once if one
    /// came since the last call, or since creation).
    ///
    /// # Blocking
    /// Parks the current green thread until the signal arrives.
    ///
    /// ```
    /// use greenhub::signal::{self, Signals, SIGUSR1};
    /// let usr1 = Signals::new(SIGUSR1).unwrap();
    /// greenhub::spawn(|| signal::raise(SIGUSR1).unwrap());
    /// usr1.recv();
    /// ```
    pub fn recv(&self) {
        self.recv_until(None);
    }

    /// [`recv`](Signals::recv), giving up after `timeout`.
    ///
    /// # Errors
    /// `TimedOut` if the signal did not arrive in time.
    ///
    /// # Blocking
    /// Parks the current green thread for at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let alarm = greenhub::signal::Signals::new(greenhub::signal::SIGALRM).unwrap();
    /// let err = alarm.recv_timeout(Duration::from_millis(5)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<()> {
        if self.recv_until(crate::hub::deadline_after(timeout)) {
            Ok(())
        } else {
            Err(io::ErrorKind::TimedOut.into())
        }
    }

    /// Parks until an unseen arrival or `deadline`; returns whether one came.
    fn recv_until(&self, deadline: Option<Instant>) -> bool {
        let signo = self.sub.signo;
        loop {
            let arrivals = self.sub.arrivals();
            if arrivals > self.seen.get() {
                self.seen.set(arrivals);
                return true;
            }
            let why = hub::park_as(crate::debug::WaitTag::SIGNAL, deadline, |w| {
                HUB_SIGNALS.with(|h| {
                    if let Some(local) = h.signals.borrow_mut().get_mut(&signo) {
                        local.waiters.retain(Waker::is_waiting);
                        local.waiters.push(w.clone());
                    }
                })
            });
            if why == Wake::TimedOut && self.sub.arrivals() == self.seen.get() {
                return false;
            }
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("signal", &self.sub.signo)
            .finish()
    }
}

/// Parks the current green thread until `signo` arrives (asyncio's
/// `loop.add_signal_handler` with a future, gevent's `signal_handler` +
/// `Event`). Only arrivals after the call count; to miss none between two
/// waits, keep a [`Signals`].
///
/// # Errors
/// As [`Signals::new`].
///
/// # Blocking
/// Parks until the signal arrives.
///
/// ```
/// use greenhub::signal::{self, SIGUSR1};
/// greenhub::spawn(|| signal::raise(SIGUSR1).unwrap());
/// signal::wait(SIGUSR1).unwrap();
/// ```
#[doc(alias = "KeyboardInterrupt")]
pub fn wait(signo: i32) -> io::Result<()> {
    Signals::new(signo)?.recv();
    Ok(())
}

/// [`wait`], giving up after `timeout`.
///
/// # Errors
/// As [`Signals::new`]; `TimedOut` if the signal did not arrive in time.
///
/// # Blocking
/// Parks for at most `timeout`.
///
/// ```
/// use std::time::Duration;
/// let r = greenhub::signal::wait_timeout(greenhub::signal::SIGUSR2, Duration::from_millis(5));
/// assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// ```
pub fn wait_timeout(signo: i32, timeout: Duration) -> io::Result<()> {
    Signals::new(signo)?.recv_timeout(timeout)
}

/// A handler installed with [`on`]; dropping it (or [`cancel`]) removes it.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// let count = Rc::new(Cell::new(0));
/// let c = count.clone();
/// let handler = greenhub::signal::on(greenhub::signal::SIGUSR2, move || c.set(c.get() + 1)).unwrap();
/// // SAFETY: raise only sends a signal to this process, whose handler is installed.
/// unsafe { libc::raise(libc::SIGUSR2) };
/// while count.get() == 0 {
///     greenhub::sleep(std::time::Duration::from_millis(1));
/// }
/// drop(handler); // removed: SIGUSR2 is no longer handled here
/// ```
///
/// [`cancel`]: SignalHandler::cancel
#[must_use = "dropping the handle removes the handler at once"]
pub struct SignalHandler {
    sub: Subscription,
    id: u64,
    _not_send: std::marker::PhantomData<Rc<()>>,
}

/// Runs `f` on this hub, as a callback, each time `signo` arrives, until the
/// returned handle is dropped or cancelled (asyncio's
/// `loop.add_signal_handler`). Like every callback `f` must not block:
/// spawn a green thread from it for blocking work.
///
/// # Errors
/// As [`Signals::new`].
///
/// ```
/// use greenhub::signal::{self, SIGUSR2};
/// use std::{cell::Cell, rc::Rc};
///
/// let hits = Rc::new(Cell::new(0));
/// let h = hits.clone();
/// let handler = signal::on(SIGUSR2, move || h.set(h.get() + 1)).unwrap();
/// let waiter = signal::Signals::new(SIGUSR2).unwrap();
/// signal::raise(SIGUSR2).unwrap();
/// waiter.recv();
/// greenhub::yield_now(); // the handler runs as a callback on the hub
/// assert_eq!(hits.get(), 1);
/// handler.cancel();
/// ```
#[doc(alias = "add_signal_handler")]
pub fn on(signo: i32, f: impl FnMut() + 'static) -> io::Result<SignalHandler> {
    let sub = Subscription::new(signo)?;
    let id = HUB_SIGNALS.with(|h| {
        let id = h.next_handler.get();
        h.next_handler.set(id + 1);
        if let Some(local) = h.signals.borrow_mut().get_mut(&signo) {
            local.handlers.push((id, Rc::new(RefCell::new(f))));
        }
        id
    });
    Ok(SignalHandler {
        sub,
        id,
        _not_send: std::marker::PhantomData,
    })
}

impl SignalHandler {
    /// Removes the handler (as dropping it does); arrivals from now on do
    /// not run it.
    ///
    /// ```
    /// let handler = greenhub::signal::on(greenhub::signal::SIGHUP, || {}).unwrap();
    /// handler.cancel();
    /// ```
    pub fn cancel(self) {}

    /// The signal number.
    ///
    /// ```
    /// let h = greenhub::signal::on(greenhub::signal::SIGHUP, || {}).unwrap();
    /// assert_eq!(h.signal(), greenhub::signal::SIGHUP);
    /// ```
    pub fn signal(&self) -> i32 {
        self.sub.signo
    }
}

impl Drop for SignalHandler {
    fn drop(&mut self) {
        let _ = HUB_SIGNALS.try_with(|h| {
            if let Some(local) = h.signals.borrow_mut().get_mut(&self.sub.signo) {
                local.handlers.retain(|(id, _)| *id != self.id);
            }
        });
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signal", &self.sub.signo)
            .finish()
    }
}

/// Sends `signo` to this process (Python's `signal.raise_signal`), for
/// tests and self-triggered shutdowns.
///
/// # Errors
/// The OS error (`EINVAL` for an invalid signal).
///
/// ```
/// let usr1 = greenhub::signal::Signals::new(greenhub::signal::SIGUSR1).unwrap();
/// greenhub::signal::raise(greenhub::signal::SIGUSR1).unwrap();
/// usr1.recv();
/// ```
pub fn raise(signo: i32) -> io::Result<()> {
    sys::raise_in_process(signo)
}
