//! Across OS threads: hand work to a hub from anywhere ([`HubHandle`]), and
//! run a hub on an OS thread of its own ([`spawn_hub`]).
//!
//! Green threads never move between OS threads: a closure handed to another
//! hub runs there, and its result comes back through a [`RemoteJoinHandle`].
//! Work handed in goes through the hub's inbox (a lock-free
//! `crossbeam_queue::SegQueue`) and one eventfd write wakes the hub's poller,
//! however many submissions arrive before it drains them.

use std::any::TypeId;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::greenlet::core::KillUnwind;
use crate::hub::remote::{Inbox, RemoteWait, RemoteWaker};
use crate::hub::{self, Wake};
use crate::task::Join;
use crate::task::Panic;
use crate::JoinError;

/// The hub behind a [`HubHandle`] has stopped taking work.
///
/// ```
/// let hub = greenhub::thread::spawn_hub("short-lived").unwrap();
/// hub.stop();
/// assert_eq!(hub.call_soon(|| ()), Err(greenhub::thread::Stopped));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the hub has stopped and takes no more work")
    }
}

impl std::error::Error for Stopped {}

/// A handle to one OS thread's hub, usable from any OS thread (`Send +
/// Sync + Clone`): hand it callbacks and green threads to run there.
///
/// ```
/// let hub = greenhub::thread::spawn_hub("worker").unwrap();
/// let answer = hub.spawn(|| 6 * 7).unwrap();
/// assert_eq!(answer.join().unwrap(), 42);
/// hub.stop();
/// ```
#[derive(Clone)]
pub struct HubHandle {
    inbox: Arc<Inbox>,
}

/// A handle to this OS thread's hub, for other threads to hand it work.
///
/// # Panics
/// If the hub's eventfd cannot be created (the process is out of fds).
///
/// ```
/// let me = greenhub::thread::current_hub();
/// std::thread::spawn(move || me.call_soon(|| println!("on the main hub")).unwrap())
///     .join()
///     .unwrap();
/// greenhub::yield_now();
/// greenhub::sleep(std::time::Duration::from_millis(10));
/// ```
pub fn current_hub() -> HubHandle {
    let inbox = hub::with(|h| h.inbox()).expect("greenhub: cannot create the hub's inbox eventfd");
    HubHandle { inbox }
}

impl HubHandle {
    /// Runs `f` on that hub as a callback, soon (it wakes the hub at once).
    /// Like all callbacks it must not block; spawn for blocking work.
    ///
    /// # Errors
    /// [`Stopped`] if the hub takes no more work.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let hub = greenhub::thread::spawn_hub("callbacks").unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// hub.call_soon(move || tx.send(std::thread::current().name().map(str::to_owned)).unwrap()).unwrap();
    /// assert_eq!(rx.recv().unwrap().as_deref(), Some("callbacks"));
    /// hub.stop();
    /// ```
    #[doc(alias = "call_soon_threadsafe")]
    pub fn call_soon(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Stopped> {
        self.inbox.call(Box::new(f)).map_err(|_| Stopped)
    }

    /// Spawns `f` as a green thread on that hub; its result comes back
    /// through the returned handle.
    ///
    /// # Errors
    /// [`Stopped`] if the hub takes no more work. If the hub stops after
    /// accepting it but before running it, `join` returns
    /// [`JoinError::HubStopped`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let hub = greenhub::thread::spawn_hub("sleepers").unwrap();
    /// // Both sleep on the other hub at once, while this thread waits.
    /// let a = hub.spawn(|| { greenhub::sleep(Duration::from_millis(20)); 1 }).unwrap();
    /// let b = hub.spawn(|| { greenhub::sleep(Duration::from_millis(20)); 2 }).unwrap();
    /// assert_eq!(a.join().unwrap() + b.join().unwrap(), 3);
    /// hub.stop();
    /// ```
    #[doc(alias = "run_coroutine_threadsafe")]
    #[track_caller]
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<RemoteJoinHandle<T>, Stopped> {
        let site = std::panic::Location::caller();
        let shared = Arc::new(Shared::new());
        let completer = Completer {
            shared: shared.clone(),
            started: false,
        };
        self.call_soon(move || {
            let task = crate::Builder::new()
                .spawn_at(site, move || completer.run(f))
                .expect("greenhub: the default stack size is valid");
            REMOTE_TASKS.with(|tasks| {
                let mut tasks = tasks.borrow_mut();
                if tasks.len() >= 64 && tasks.len().is_power_of_two() {
                    tasks.retain(|t| !t.is_finished());
                }
                tasks.push(task);
            });
        })?;
        Ok(RemoteJoinHandle { shared })
    }

    /// Makes that hub's [`run_forever`](crate::run_forever) return. For a
    /// hub started by [`spawn_hub`], also waits until its OS thread has
    /// stopped taking work: submissions after this returns fail with
    /// [`Stopped`], and none accepted earlier runs after it returns.
    ///
    /// # Blocking
    /// Parks (a green thread) or blocks (a plain OS thread) until a
    /// [`spawn_hub`] hub has stopped; never waits on its own hub.
    ///
    /// ```
    /// let hub = greenhub::thread::spawn_hub("stopped").unwrap();
    /// hub.stop();
    /// assert!(hub.is_stopped());
    /// assert!(hub.spawn(|| ()).is_err());
    /// ```
    pub fn stop(&self) {
        if self.call_soon(crate::stop).is_err() || !self.inbox.owns_thread() || self.is_current() {
            return;
        }
        let Ok((wait, waker)) = RemoteWait::new() else {
            return;
        };
        if self.inbox.on_close(waker) {
            // Gives up only when the caller unwinds (parks return at once then).
            while !wait.is_done() && wait.park(None) == Wake::Ready {}
        }
    }

    /// Whether the hub takes no more work.
    ///
    /// ```
    /// let hub = greenhub::thread::spawn_hub("running").unwrap();
    /// assert!(!hub.is_stopped());
    /// hub.stop();
    /// assert!(hub.is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.inbox.is_closed()
    }

    fn is_current(&self) -> bool {
        hub::try_with(|h| h.inbox().is_ok_and(|mine| Arc::ptr_eq(&mine, &self.inbox))).unwrap_or(false)
    }
}

impl fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// Starts an OS thread named `name` that runs a hub until
/// [`HubHandle::stop`] (asyncio's `new_event_loop` + `run_forever` in a
/// thread, in one call), and returns its handle.
///
/// # Errors
/// If the OS thread cannot be started.
///
/// ```
/// let hub = greenhub::thread::spawn_hub("side").unwrap();
/// hub.call_soon(|| println!("running on {:?}", std::thread::current().name())).unwrap();
/// hub.stop();
/// assert!(hub.spawn(|| ()).is_err()); // stopped: no more work
/// ```
#[doc(alias = "new_event_loop")]
pub fn spawn_hub(name: impl Into<String>) -> io::Result<HubHandle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name(name.into()).spawn(move || {
        let handle = current_hub();
        handle.inbox.set_owns_thread();
        let inbox = handle.inbox.clone();
        if tx.send(handle).is_err() {
            return;
        }
        crate::run_forever();
        // Refuse new work, unwind what remote callers still wait for (so
        // their joins end, with `Killed` or `HubStopped`), then drop what
        // was queued meanwhile.
        inbox.refuse();
        let tasks = REMOTE_TASKS.with(|t| std::mem::take(&mut *t.borrow_mut()));
        crate::wait::kill_all(&tasks);
        inbox.close();
    })?;
    rx.recv()
        .map_err(|_| io::Error::other("greenhub: the hub thread ended before it started"))
}

thread_local! {
    /// Green threads spawned here through a `HubHandle`, so that a hub
    /// thread that stops can unwind them: their remote joiners must not
    /// wait forever. Finished ones are pruned as the list grows.
    static REMOTE_TASKS: std::cell::RefCell<Vec<crate::JoinHandle<()>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The result of a green thread spawned through a [`HubHandle`]; `Send`,
/// so any OS thread (or green thread of any hub) can join it.
///
/// ```
/// let hub = greenhub::thread::spawn_hub("remote").unwrap();
/// let h = hub.spawn(|| "from the other hub").unwrap();
/// let joined = std::thread::spawn(move || h.join().unwrap()).join().unwrap();
/// assert_eq!(joined, "from the other hub");
/// hub.stop();
/// ```
pub struct RemoteJoinHandle<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    result: Mutex<Option<Result<T, JoinError>>>,
    done: AtomicBool,
    /// Joiners parked on other hubs (or plain OS threads).
    waiters: Mutex<Vec<RemoteWaker>>,
}

impl<T> Shared<T> {
    fn new() -> Shared<T> {
        Shared {
            result: Mutex::new(None),
            done: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn complete(&self, r: Result<T, JoinError>) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        self.done.store(true, Ordering::SeqCst);
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters {
            w.wake();
        }
    }
}

/// Completes the remote join however the green thread ends: its value or
/// panic, a kill (it unwound), or the hub dropping it unrun.
struct Completer<T> {
    shared: Arc<Shared<T>>,
    started: bool,
}

impl<T> Completer<T> {
    fn run(mut self, f: impl FnOnce() -> T) {
        self.started = true;
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => self.finish(Ok(v)),
            // A kill must go on unwinding; this completer's drop reports it.
            Err(p) if (*p).type_id() == TypeId::of::<KillUnwind>() => panic::resume_unwind(p),
            Err(p) => self.finish(Err(JoinError::Panicked(Panic::of_current(p)))),
        }
    }

    fn finish(self, r: Result<T, JoinError>) {
        self.shared.complete(r);
        std::mem::forget(self);
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let why = if self.started {
            JoinError::Killed
        } else {
            JoinError::HubStopped
        };
        self.shared.complete(Err(why));
    }
}

impl<T: Send + 'static> RemoteJoinHandle<T> {
    /// Waits for the green thread and returns its result.
    ///
    /// # Errors
    /// As [`JoinHandle::join`](crate::JoinHandle::join), plus
    /// [`JoinError::HubStopped`] if its hub stopped before running it.
    ///
    /// # Blocking
    /// Parks the calling green thread (or blocks a plain OS thread) until
    /// the result is in.
    ///
    /// ```
    /// let hub = greenhub::thread::spawn_hub("joined").unwrap();
    /// let h = hub.spawn(|| -> u8 { panic!("remote failure") }).unwrap();
    /// assert_eq!(h.join().unwrap_err().panic_message(), Some("remote failure"));
    /// hub.stop();
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        Join::join_now(self)
    }

    /// Like [`join`](RemoteJoinHandle::join), giving up after `timeout`
    /// with [`JoinError::TimedOut`]; the handle can be joined again.
    ///
    /// # Errors
    /// As [`join`](RemoteJoinHandle::join), plus `TimedOut`, and
    /// `AlreadyJoined` once the result has been taken.
    ///
    /// # Blocking
    /// As [`join`](RemoteJoinHandle::join), at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let hub = greenhub::thread::spawn_hub("slow").unwrap();
    /// let mut h = hub.spawn(|| greenhub::sleep(Duration::from_millis(50))).unwrap();
    /// assert!(matches!(h.join_timeout(Duration::from_millis(1)), Err(greenhub::JoinError::TimedOut)));
    /// h.join_timeout(Duration::from_secs(10)).unwrap(); // joined again
    /// hub.stop();
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<T, JoinError> {
        Join::join_within(self, timeout)
    }

    /// Whether the result is in.
    ///
    /// ```
    /// let hub = greenhub::thread::spawn_hub("quick").unwrap();
    /// let h = hub.spawn(|| 1).unwrap();
    /// while !h.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(h.join().unwrap(), 1);
    /// hub.stop();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.done.load(Ordering::SeqCst)
    }
}

impl<T: Send + 'static> Join<T> for RemoteJoinHandle<T> {
    fn take(&mut self) -> Result<T, JoinError> {
        self.shared
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or(Err(JoinError::AlreadyJoined))
    }

    /// Parks until done or `deadline`; returns whether done.
    fn wait_until(&mut self, deadline: Option<Instant>) -> bool {
        while !self.is_finished() {
            let (wait, waker) = RemoteWait::new().expect("greenhub: cannot create the hub's inbox eventfd");
            {
                let mut waiters = self.shared.waiters.lock().unwrap_or_else(|e| e.into_inner());
                if self.is_finished() {
                    return true;
                }
                waiters.push(waker);
            }
            while !wait.is_done() {
                if wait.park(deadline) == Wake::TimedOut && !wait.is_done() {
                    return self.is_finished();
                }
            }
        }
        true
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.shared.done.load(Ordering::SeqCst))
            .finish()
    }
}
