//! Green threads spawned on the hub (gevent's `spawn`): `spawn`,
//! `spawn_later`, [`Builder`], [`JoinHandle`], [`join_all`].

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic;
use std::time::{Duration, Instant};

use crate::greenlet::core::{self, Body, Inner, Kind, Msg, Outcome, State};
use crate::greenlet::gref::GRef;
use crate::hub::{self, timers::Action, Ready, Wake};
use crate::stack::DEFAULT_STACK_SIZE;

/// Why [`JoinHandle::join`] has no value to return.
///
/// ```
/// use greenhub::JoinError;
/// let h = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
/// greenhub::yield_now();
/// h.kill();
/// match h.join() {
///     Err(JoinError::Killed) => {}
///     other => panic!("{other:?}"),
/// }
/// ```
#[non_exhaustive]
pub enum JoinError {
    /// The green thread panicked: the panic's payload, and which green
    /// thread it was (see [`Panic`]).
    Panicked(Panic),
    /// The green thread was killed.
    Killed,
    /// The green thread never ran: no stack could be had when the hub first
    /// scheduled it. The error says which limit was hit and how to raise it.
    NoStack(io::Error),
    /// `join_timeout`'s time ran out first; the handle can be joined again.
    TimedOut,
    /// The result was already taken by an earlier join.
    AlreadyJoined,
    /// The hub it was handed to (through a
    /// [`HubHandle`](crate::thread::HubHandle)) stopped before running it.
    HubStopped,
}

impl JoinError {
    /// Whether the green thread panicked.
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { panic!("oops") });
    /// assert!(h.join().unwrap_err().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the green thread was killed.
    ///
    /// ```
    /// let h = greenhub::spawn(|| ());
    /// h.kill(); // before it ran: it never will
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn is_killed(&self) -> bool {
        matches!(self, JoinError::Killed)
    }

    /// The panic payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the error is not [`JoinError::Panicked`].
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { std::panic::panic_any(7u32) });
    /// let payload = h.join().unwrap_err().into_panic();
    /// assert_eq!(payload.downcast_ref::<u32>(), Some(&7));
    /// // or: std::panic::resume_unwind(payload) to re-raise it here
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self {
            JoinError::Panicked(p) => p.payload,
            other => panic!("greenhub: JoinError::into_panic on {other:?}"),
        }
    }

    /// The panic message, when the payload is a string.
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { panic!("code {}", 42) });
    /// assert_eq!(h.join().unwrap_err().panic_message(), Some("code 42"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => p.message(),
            _ => None,
        }
    }
}

/// A green thread's panic, as a join reports it: the payload, and which
/// green thread panicked, named as the panic message names it.
///
/// ```
/// use greenhub::JoinError;
///
/// let h = greenhub::Builder::new()
///     .name("panicker")
///     .spawn(|| -> () { panic!("boom") })
///     .unwrap();
/// let id = h.id();
/// match h.join() {
///     Err(JoinError::Panicked(p)) => {
///         assert_eq!(p.message(), Some("boom"));
///         assert_eq!(p.name(), Some("panicker"));
///         assert_eq!(p.id(), id);
///         assert_eq!(p.to_string(), format!("green thread 'panicker' (#{id}) panicked: boom"));
///         // To re-raise it here: std::panic::resume_unwind(p.into_payload())
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
pub struct Panic {
    payload: Box<dyn Any + Send>,
    id: u64,
    name: Option<Box<str>>,
}

impl Panic {
    /// The panic of green thread `id`, named `name`.
    pub(crate) fn new(payload: Box<dyn Any + Send>, id: u64, name: Option<String>) -> Panic {
        Panic {
            payload,
            id,
            name: name.map(String::into_boxed_str),
        }
    }

    /// The panic of the running green thread (or of the OS thread's main
    /// code, id 0, outside green threads).
    pub(crate) fn of_current(payload: Box<dyn Any + Send>) -> Panic {
        match core::try_current() {
            Some(g) => Panic::new(payload, g.id, g.name()),
            None => Panic::new(payload, 0, None),
        }
    }

    /// The payload, as `panic!` or `panic_any` made it.
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { std::panic::panic_any(7u32) });
    /// let e = h.join().unwrap_err();
    /// let greenhub::JoinError::Panicked(p) = &e else { unreachable!() };
    /// assert_eq!(p.payload().downcast_ref::<u32>(), Some(&7));
    /// ```
    pub fn payload(&self) -> &(dyn Any + Send) {
        &*self.payload
    }

    /// The payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { panic!("again") });
    /// if let Err(greenhub::JoinError::Panicked(p)) = h.join() {
    ///     let payload = p.into_payload();
    ///     let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| std::panic::resume_unwind(payload)));
    ///     assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"again"));
    /// }
    /// ```
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }

    /// The panic message, when the payload is a string.
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { panic!("code {}", 42) });
    /// if let Err(greenhub::JoinError::Panicked(p)) = h.join() {
    ///     assert_eq!(p.message(), Some("code 42"));
    /// }
    /// ```
    pub fn message(&self) -> Option<&str> {
        let p = &self.payload;
        p.downcast_ref::<&str>()
            .copied()
            .or_else(|| p.downcast_ref::<String>().map(String::as_str))
    }

    /// The id of the green thread that panicked ([`JoinHandle::id`]; the
    /// `#N` of panic messages and `debug::run_info`).
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { panic!("x") });
    /// let id = h.id();
    /// if let Err(greenhub::JoinError::Panicked(p)) = h.join() {
    ///     assert_eq!(p.id(), id);
    /// }
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name of the green thread that panicked, if it was given one
    /// ([`Builder::name`]).
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> () { panic!("x") });
    /// if let Err(greenhub::JoinError::Panicked(p)) = h.join() {
    ///     assert_eq!(p.name(), None);
    /// }
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = crate::debug::describe_green_thread(self.id, self.name());
        match self.message() {
            Some(m) => write!(f, "{who} panicked: {m}"),
            None => write!(f, "{who} panicked"),
        }
    }
}

impl fmt::Debug for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panic")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "Panicked({p:?})"),
            JoinError::Killed => f.write_str("Killed"),
            JoinError::NoStack(e) => write!(f, "NoStack({e:?})"),
            JoinError::TimedOut => f.write_str("TimedOut"),
            JoinError::AlreadyJoined => f.write_str("AlreadyJoined"),
            JoinError::HubStopped => f.write_str("HubStopped"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "{p}"),
            JoinError::Killed => f.write_str("green thread was killed"),
            JoinError::NoStack(e) => write!(f, "green thread could not start: {e}"),
            JoinError::TimedOut => f.write_str("join timed out"),
            JoinError::AlreadyJoined => f.write_str("green thread's result was already taken"),
            JoinError::HubStopped => f.write_str("the hub stopped before running the green thread"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Configures a green thread before spawning it: name and stack size.
///
/// ```
/// let h = greenhub::Builder::new()
///     .name("worker")
///     .stack_size(256 * 1024)
///     .spawn(|| greenhub::current_name())
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: usize,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// A builder with no name and the default stack size
    /// ([`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE)).
    ///
    /// ```
    /// let h = greenhub::Builder::new().spawn(|| 1).unwrap();
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    pub fn new() -> Builder {
        Builder {
            name: None,
            stack_size: DEFAULT_STACK_SIZE,
        }
    }

    /// Names the green thread (shown in stack overflow reports and `Debug`).
    ///
    /// ```
    /// let h = greenhub::Builder::new().name("fetcher").spawn(|| ()).unwrap();
    /// assert_eq!(h.name().as_deref(), Some("fetcher"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the usable stack size in bytes (rounded up to whole pages).
    ///
    /// ```
    /// fn depth(n: u32) -> u32 {
    ///     let pad = std::hint::black_box([0u8; 1024]);
    ///     if n == 0 { u32::from(pad[0]) } else { 1 + depth(n - 1) }
    /// }
    /// let h = greenhub::Builder::new().stack_size(4 << 20).spawn(|| depth(1000)).unwrap();
    /// assert_eq!(h.join().unwrap(), 1000);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Spawns `f` as a green thread on this OS thread's hub; it runs when
    /// the current green thread next blocks or yields.
    ///
    /// # Errors
    /// `InvalidInput` if the stack size is 0 or over 256 MiB less 4 KiB. The stack itself
    /// is bound when the green thread first runs; if none can be had then,
    /// `join` returns [`JoinError::NoStack`].
    ///
    /// ```
    /// let err = greenhub::Builder::new().stack_size(0).spawn(|| ()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    #[track_caller]
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> io::Result<JoinHandle<T>> {
        self.spawn_at(std::panic::Location::caller(), f)
    }

    /// [`spawn`](Builder::spawn), recording `site` as where it was spawned
    /// (for a spawn made on behalf of a caller elsewhere, such as
    /// `HubHandle::spawn`).
    pub(crate) fn spawn_at<T: 'static>(
        self,
        site: &'static std::panic::Location<'static>,
        f: impl FnOnce() -> T + 'static,
    ) -> io::Result<JoinHandle<T>> {
        let g = self.make(f, site)?;
        g.state.set(State::Scheduled);
        hub::with(|h| h.push(Ready::green(g.clone())));
        Ok(JoinHandle { g, _t: PhantomData })
    }

    /// Like [`spawn`](Builder::spawn), but the green thread starts after `delay`.
    ///
    /// # Errors
    /// As [`spawn`](Builder::spawn).
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenhub::Builder::new().name("later").spawn_later(Duration::from_millis(5), || 3).unwrap();
    /// assert!(!h.is_finished());
    /// assert_eq!(h.join().unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn spawn_later<T: 'static>(
        self,
        delay: Duration,
        f: impl FnOnce() -> T + 'static,
    ) -> io::Result<JoinHandle<T>> {
        let g = self.make(f, std::panic::Location::caller())?;
        // Parked on a timer; the timer's wake schedules its start.
        hub::park_unstarted(&g, crate::debug::WaitTag::START_LATER);
        // A start past the clock's range never comes (a kill still ends it).
        if let Some(start) = hub::deadline_after(delay) {
            let waker = hub::Waker::new(g.clone());
            hub::with(|h| h.timers.borrow_mut().insert(start, Action::Wake(waker)));
        }
        Ok(JoinHandle { g, _t: PhantomData })
    }

    /// Spawns `f` to start once `place`'s fd is readable, holding no stack
    /// until then (see `TcpStream::spawn_when_readable`); at once if it
    /// may be readable now.
    ///
    /// With a `deadline`, it starts then at the latest; `f` is told which
    /// came first.
    pub(crate) fn spawn_when_readable<T: 'static>(
        self,
        place: hub::io::ReaderPlace,
        deadline: Option<Instant>,
        site: &'static std::panic::Location<'static>,
        f: impl FnOnce(Wake) -> T + 'static,
    ) -> io::Result<JoinHandle<T>> {
        let g = self.make(
            move || {
                // What ended the park it started from: the fd's wake
                // (`Ready`), or its timer (`TimedOut`).
                let why = core::with_current(|g| g.reason.get());
                if let (Some(d), Wake::Ready) = (deadline, why) {
                    let me = core::current_ptr();
                    hub::with(|h| h.timers.borrow_mut().remove_wake_of(d, me));
                }
                f(why)
            },
            site,
        )?;
        if !place.park_unstarted(&g, deadline) {
            g.state.set(State::Scheduled);
            hub::with(|h| h.push(Ready::green(g.clone())));
        }
        Ok(JoinHandle { g, _t: PhantomData })
    }

    fn make<T: 'static>(
        self,
        f: impl FnOnce() -> T + 'static,
        site: &'static std::panic::Location<'static>,
    ) -> io::Result<GRef> {
        core::check_stack_size(self.stack_size)?;
        let entry = core::entry(move |_first: Msg| -> core::Value { Box::new(f()) });
        let g = GRef::new(Inner::new(Kind::Task, Some(entry), self.stack_size));
        if let Some(name) = self.name {
            g.with_extra(|e| e.name = Some(name.into_boxed_str()));
        }
        crate::debug::created(&g, site);
        Ok(g)
    }
}

/// Spawns `f` as a green thread on this OS thread's hub (gevent's `spawn`).
/// It starts when the current green thread next blocks or yields; `f` need
/// not be `Send`, since green threads never leave their OS thread.
///
/// ```
/// use std::rc::Rc; // not Send, and that is fine
/// let shared = Rc::new(5);
/// let s = shared.clone();
/// let h = greenhub::spawn(move || *s * 2);
/// assert_eq!(h.join().unwrap(), 10);
/// ```
#[track_caller]
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
    Builder::new()
        .spawn(f)
        .expect("greenhub: the default stack size is valid")
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`).
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let h = greenhub::spawn_later(Duration::from_millis(20), move || t.elapsed());
/// assert!(h.join().unwrap() >= Duration::from_millis(20));
/// ```
#[track_caller]
pub fn spawn_later<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
    Builder::new()
        .spawn_later(delay, f)
        .expect("greenhub: the default stack size is valid")
}

/// The name of the running green thread, if it has one.
///
/// ```
/// assert_eq!(greenhub::current_name(), None); // the main green thread
/// let h = greenhub::Builder::new().name("named").spawn(greenhub::current_name).unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("named"));
/// ```
pub fn current_name() -> Option<String> {
    core::current().name()
}

/// Owns the right to a spawned green thread's result. Dropping it detaches
/// the green thread, which goes on running; its result is then dropped on
/// its own stack as it ends (or by this drop, if it has ended), never on
/// the hub's, and a panic of that result's `Drop` is reported by the panic
/// hook and goes no further.
///
/// `!Send`: the green thread lives on this OS thread's hub (use
/// [`HubHandle::spawn`](crate::thread::HubHandle::spawn) across threads).
///
/// ```compile_fail
/// let h = greenhub::spawn(|| 1);
/// std::thread::spawn(move || h.join()); // JoinHandle is not Send
/// ```
pub struct JoinHandle<T> {
    pub(crate) g: GRef,
    _t: PhantomData<T>,
}

impl<T: 'static> JoinHandle<T> {
    /// Waits for the green thread to finish and returns its result.
    ///
    /// # Errors
    /// [`JoinError::Panicked`] with the panic's payload, [`JoinError::Killed`],
    /// or [`JoinError::NoStack`]; [`JoinError::TimedOut`] if the caller is
    /// unwinding and the green thread still runs (an unwinding green thread
    /// does not wait; see the crate docs' rules for destructors).
    ///
    /// # Panics
    /// If the green thread is the caller itself (it would wait forever).
    ///
    /// # Blocking
    /// Parks the caller until the green thread ends.
    ///
    /// ```
    /// let h = greenhub::spawn(|| -> u32 { panic!("boom") });
    /// let err = h.join().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("boom"));
    /// ```
    #[doc(alias = "get")]
    pub fn join(self) -> Result<T, JoinError> {
        Join::join_now(self)
    }

    /// Like [`join`](JoinHandle::join), giving up after `timeout` with
    /// [`JoinError::TimedOut`]; the handle can then be joined again.
    ///
    /// # Errors
    /// As [`join`](JoinHandle::join), plus `TimedOut`, and `AlreadyJoined`
    /// once the result has been taken.
    ///
    /// # Blocking
    /// Parks the caller until the green thread ends or the time runs out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(10)));
    /// assert!(matches!(h.join_timeout(Duration::from_millis(5)), Err(greenhub::JoinError::TimedOut)));
    /// h.kill();
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<T, JoinError> {
        Join::join_within(self, timeout)
    }
}

impl<T> JoinHandle<T> {
    /// Kills the green thread: its stack unwinds from where it is paused
    /// (destructors run, registrations are released) and `join` then returns
    /// [`JoinError::Killed`]. A green thread that has not started never runs.
    /// Waits until it is dead, unless called from a hub callback. Killing a
    /// finished green thread does nothing; a green thread killing itself
    /// unwinds at once (or, if it is unwinding already, goes on doing so).
    ///
    /// While the target unwinds, its destructors' parks return at once (see
    /// the crate docs' rules for destructors): a destructor that sleeps or
    /// waits does not wait, and a second kill (or an outer timeout) cannot
    /// reach it. Called from a destructor while the caller itself unwinds,
    /// `kill` delivers the kill without waiting for it to land.
    ///
    /// # Blocking
    /// Parks the caller until the target has unwound.
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// greenhub::yield_now(); // let it start sleeping
    /// h.kill();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn kill(&self) {
        if self.request_kill() && hub::try_can_block() {
            wait_dead(&self.g, None);
        }
    }

    /// Delivers a kill and returns at once, before the target has unwound
    /// (tokio's `abort`, gevent's `kill(block=False)`): the target unwinds
    /// when the hub next runs it. Join (or [`kill`](JoinHandle::kill)) to
    /// wait for its cleanup. Otherwise as [`kill`](JoinHandle::kill).
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// greenhub::yield_now();
    /// h.kill_nowait();
    /// assert!(!h.is_finished()); // not unwound yet
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    #[doc(alias = "abort")]
    pub fn kill_nowait(&self) {
        self.request_kill();
    }

    /// Kills the green thread and waits at most `timeout` for it to unwind
    /// (gevent's `kill(timeout=)`); returns whether it is dead (and its
    /// [`link`](JoinHandle::link)s have run). A target still unwinding (its
    /// destructors block, or it caught the kill) goes on unwinding.
    ///
    /// # Blocking
    /// Parks the caller until the target has unwound or the time runs out
    /// (not at all inside a hub callback: it returns whether it is dead).
    ///
    /// ```
    /// use std::time::Duration;
    /// let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// greenhub::yield_now();
    /// assert!(h.kill_timeout(Duration::from_secs(5)));
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    #[must_use = "false means the green thread is still unwinding"]
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        if self.request_kill() && hub::try_can_block() {
            return wait_dead(&self.g, Some(Instant::now() + timeout));
        }
        self.g.is_settled()
    }

    /// Kills the green thread with `payload` as the panic it unwinds with
    /// (gevent's `kill(exception=...)`): uncaught, `join` returns
    /// [`JoinError::Panicked`] carrying it. A green thread that has not
    /// started never runs, and ends with the same error. Waits like
    /// [`kill`](JoinHandle::kill). Does nothing to a finished green thread;
    /// a kill already on its way wins.
    ///
    /// # Blocking
    /// Parks the caller until the target has unwound.
    ///
    /// ```
    /// use std::time::Duration;
    /// #[derive(Debug, PartialEq)]
    /// struct Shutdown(u8);
    /// let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// greenhub::yield_now();
    /// h.kill_with(Shutdown(3));
    /// let payload = h.join().unwrap_err().into_panic();
    /// assert_eq!(payload.downcast_ref::<Shutdown>(), Some(&Shutdown(3)));
    /// ```
    #[doc(alias = "throw")]
    pub fn kill_with(&self, payload: impl Any + Send) {
        let g = &self.g;
        if g.is_dead() || g.throw.get() == core::THROW_KILL {
            return self.kill();
        }
        let payload: Box<dyn Any + Send> = Box::new(payload);
        if !g.is_started() {
            let old = g.body.replace(Body::Done(Some(Outcome::Panicked(payload))));
            g.set_started();
            g.die();
            drop(old);
            return;
        }
        if std::ptr::eq(core::current_ptr(), GRef::as_ptr(g)) {
            // Already unwinding: a second unwind out of a destructor would
            // abort; this one ends the green thread anyway.
            if hub::unwinding() {
                return core::drop_payload(payload);
            }
            panic::resume_unwind(payload);
        }
        g.with_extra(|e| e.thrown = Some(payload));
        self.kill();
    }

    /// Delivers a kill without waiting for it to land; returns whether the
    /// green thread is still unwinding (false: dead already, or never ran).
    pub(crate) fn request_kill(&self) -> bool {
        let g = &self.g;
        if g.is_dead() {
            return false;
        }
        if !g.is_started() {
            g.kill_unstarted();
            return false;
        }
        if std::ptr::eq(core::current_ptr(), GRef::as_ptr(g)) {
            // Already unwinding: a second unwind out of a destructor would
            // abort the process, and this one ends the green thread anyway.
            if hub::unwinding() {
                return false;
            }
            panic::resume_unwind(Box::new(core::KillUnwind));
        }
        hub::deliver_throw(g, core::THROW_KILL);
        true
    }

    /// Whether the green thread has ended (gevent's `ready()`/`dead`).
    ///
    /// ```
    /// let h = greenhub::spawn(|| ());
    /// assert!(!h.is_finished());
    /// greenhub::yield_now();
    /// assert!(h.is_finished());
    /// ```
    #[doc(alias = "ready")]
    #[doc(alias = "dead")]
    pub fn is_finished(&self) -> bool {
        self.g.is_dead()
    }

    /// The name given with [`Builder::name`].
    ///
    /// ```
    /// assert_eq!(greenhub::spawn(|| ()).name(), None);
    /// ```
    pub fn name(&self) -> Option<String> {
        self.g.name()
    }

    /// The green thread's id (unique in the process).
    ///
    /// ```
    /// let (a, b) = (greenhub::spawn(|| ()), greenhub::spawn(|| ()));
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.g.id
    }
}

/// Detaches the green thread: its result is dropped on its own stack when
/// it ends (or here, if it has ended), never on the hub's; a panic in the
/// result's `Drop` is reported by the panic hook and goes no further.
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let g = &self.g;
        // Not settled: still running, or its links have yet to read the
        // outcome (which then goes with their callback, contained there).
        if !g.is_settled() {
            g.set_detached();
            return;
        }
        if let Body::Done(Some(outcome)) = g.body.replace(Body::Done(None)) {
            match outcome {
                Outcome::Returned(v) => core::drop_result(v),
                Outcome::Panicked(p) => core::drop_payload(p),
                Outcome::Killed | Outcome::NoStack(_) => {}
            }
        }
    }
}

impl<T> crate::wait::Waitable for JoinHandle<T> {
    fn is_ready(&self) -> bool {
        self.g.is_dead()
    }

    fn register(&self, waker: &hub::Waker) {
        if self.g.is_dead() {
            waker.wake();
        } else {
            self.g.with_extra(|e| {
                e.joiners.retain(hub::Waker::is_waiting);
                e.joiners.push(waker.clone());
            });
        }
    }
}

/// Parks until `g` is dead (and its links have run) or `deadline` passes;
/// returns whether it is. While the caller unwinds, parks return at once
/// (see the crate docs' rules for destructors), so this gives up too.
///
/// # Panics
/// If `g` is the calling green thread: it would wait for itself forever.
pub(crate) fn wait_dead(g: &GRef, deadline: Option<Instant>) -> bool {
    if !g.is_dead() && core::is_current(g) {
        joined_itself(g);
    }
    while !g.is_settled() {
        let why = hub::park_as(crate::debug::WaitTag::JOIN, deadline, |w| {
            g.with_extra(|e| {
                e.joiners.retain(hub::Waker::is_waiting);
                e.joiners.push(w.clone());
            })
        });
        if why == Wake::TimedOut && !g.is_settled() {
            return false;
        }
    }
    true
}

#[cold]
fn joined_itself(g: &Inner) -> ! {
    panic!(
        "greenhub: green thread #{} tried to join (or wait for) itself, which would wait forever",
        g.id
    )
}

/// How `join` and `join_timeout` go, for every kind of join handle
/// (`JoinHandle` here, `thread::RemoteJoinHandle`): wait, then take the
/// result, which can be taken once.
pub(crate) trait Join<T>: Sized {
    /// Waits until the result is in or `deadline` passes; whether it is in.
    fn wait_until(&mut self, deadline: Option<Instant>) -> bool;

    /// Takes the result; `AlreadyJoined` once taken.
    fn take(&mut self) -> Result<T, JoinError>;

    fn join_now(mut self) -> Result<T, JoinError> {
        // Only an unwinding caller stops waiting early (see `wait_dead`).
        if !self.wait_until(None) {
            return Err(JoinError::TimedOut);
        }
        self.take()
    }

    fn join_within(&mut self, timeout: Duration) -> Result<T, JoinError> {
        if !self.wait_until(crate::hub::deadline_after(timeout)) {
            return Err(JoinError::TimedOut);
        }
        self.take()
    }
}

impl<T: 'static> Join<T> for JoinHandle<T> {
    fn wait_until(&mut self, deadline: Option<Instant>) -> bool {
        wait_dead(&self.g, deadline)
    }

    fn take(&mut self) -> Result<T, JoinError> {
        let outcome = match self.g.body.replace(Body::Done(None)) {
            Body::Done(o) => o,
            _ => unreachable!("greenhub: taking the result of a live green thread"),
        };
        match outcome {
            None => Err(JoinError::AlreadyJoined),
            Some(Outcome::Returned(v)) => Ok(core::downcast::<T>(v).unwrap_or_else(|_| unreachable!())),
            Some(Outcome::Panicked(p)) => Err(JoinError::Panicked(Panic::new(p, self.g.id, self.g.name()))),
            Some(Outcome::Killed) => Err(JoinError::Killed),
            Some(Outcome::NoStack(e)) => Err(JoinError::NoStack(e)),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.g.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Waits until every green thread in `handles` has finished (gevent's
/// `joinall`); take each result with `join` afterwards, which then returns
/// at once.
///
/// # Blocking
/// Parks the caller until all have finished.
///
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = (1..=3u64).map(|i| greenhub::spawn(move || {
///     greenhub::sleep(Duration::from_millis(i));
///     i
/// })).collect();
/// greenhub::join_all(&hs);
/// let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(total, 6);
/// ```
#[doc(alias = "joinall")]
pub fn join_all<'a, T: 'a, I: IntoIterator<Item = &'a JoinHandle<T>>>(handles: I) {
    for h in handles {
        wait_dead(&h.g, None);
    }
}

/// Like [`join_all`], giving up at `timeout`; returns the indices of the
/// handles whose green threads have finished, in order.
///
/// # Blocking
/// Parks the caller until all have finished or the time runs out.
///
/// ```
/// use std::time::Duration;
/// let fast = greenhub::spawn(|| ());
/// let slow = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
/// let done = greenhub::join_all_timeout([&fast, &slow], Duration::from_millis(20));
/// assert_eq!(done, [0]);
/// slow.kill();
/// ```
#[doc(alias = "joinall")]
#[must_use = "the indices of the finished ones tell whether the time ran out"]
pub fn join_all_timeout<'a, T: 'a, I: IntoIterator<Item = &'a JoinHandle<T>>>(
    handles: I,
    timeout: Duration,
) -> Vec<usize> {
    let deadline = hub::deadline_after(timeout);
    let handles: Vec<&JoinHandle<T>> = handles.into_iter().collect();
    for h in &handles {
        if !wait_dead(&h.g, deadline) {
            break;
        }
    }
    handles
        .iter()
        .enumerate()
        .filter(|(_, h)| h.is_finished())
        .map(|(i, _)| i)
        .collect()
}
