//! The machinery under every green thread: its record ([`Inner`]), the
//! messages that cross a switch, and the root trampoline that performs every
//! resume.
//!
//! corosensei gives asymmetric coroutines (resume/suspend). Symmetric switching
//! is built the standard way: only the OS thread's root stack ever resumes a
//! coroutine. A green thread that wants to switch to another suspends with a
//! request ([`Req`]) and the root trampoline ([`root_loop`]) resumes the
//! target. A switch is therefore one suspend plus one resume.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::hub;
use crate::stack::{self, Stack};

/// A panic payload, as `catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send>;

/// `Any` that also remembers its type's name, so that a switch receiving a
/// value of the wrong type can name both types in its error.
pub(crate) trait AnyNamed: Any {
    fn type_name(&self) -> &'static str;
}

impl<T: Any> AnyNamed for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A value in flight between green threads.
pub(crate) type Value = Box<dyn AnyNamed>;

/// Takes the `R` out of a value, or names both types.
pub(crate) fn downcast<R: 'static>(v: Value) -> Result<R, (&'static str, &'static str)> {
    let found = (*v).type_name();
    let any: Box<dyn Any> = v;
    match any.downcast::<R>() {
        Ok(r) => Ok(*r),
        Err(_) => Err((std::any::type_name::<R>(), found)),
    }
}

/// Why a parked green thread was resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Something it waited on woke it.
    Ready,
    /// Its deadline passed first.
    TimedOut,
}

/// What a suspended green thread is resumed with.
pub(crate) enum Msg {
    /// A value from `switch` (or a child's return value).
    Value(Value),
    /// From the hub: the park (or yield) is over; the reason is in `Inner::reason`.
    Wake,
    /// Unwind with this payload at the paused point (throw, or a child's panic).
    Throw(Payload),
}

/// What a green thread asks the root trampoline to do when it suspends.
pub(crate) enum Req {
    /// Resume this green thread with this message.
    Switch(Rc<Inner>, Msg),
    /// Run whatever the hub has ready (the caller parked or yielded).
    Schedule,
    /// The green thread's function ended.
    Exit(Outcome),
}

/// How a green thread's function ended.
pub(crate) enum Outcome {
    Returned(Value),
    Panicked(Payload),
    Killed,
    /// It never ran: no stack could be had when it was first scheduled.
    NoStack(io::Error),
}

/// The panic payload that a kill unwinds a green thread with. Caught at the
/// top of the green thread, it makes the outcome "killed", not "panicked".
pub(crate) struct KillUnwind;

/// The payload a `with_timeout` section unwinds with; the token says which
/// section, so nested timeouts each catch only their own.
pub(crate) struct TimeoutUnwind(pub(crate) u64);

/// Pending-throw codes: 0 none, 1 kill, >= 2 a timeout token. Lower wins,
/// so a kill beats a timeout and an outer timeout beats an inner one.
pub(crate) const THROW_NONE: u64 = 0;
pub(crate) const THROW_KILL: u64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Waiting for an explicit switch (this includes a greenlet not started yet).
    Suspended,
    /// Parked on the hub, waiting for a wake.
    Parked,
    /// In the hub's ready queue.
    Scheduled,
    /// Running now (or, for root, running its own code).
    Running,
    Dead,
}

/// Where a park stands, so that a wake is delivered exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitState {
    /// Not waiting: wakers carrying the current sequence are stale.
    Idle,
    /// Registering: a wake now makes the park return at once.
    Armed,
    /// Switched to the hub.
    Parked,
    /// A wake was delivered for the current sequence.
    Woken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Root,
    /// Created with `Greenlet::new`: its result goes to its parent.
    Greenlet,
    /// Spawned on the hub: its result goes to its `JoinHandle`.
    Task,
}

pub(crate) type Entry = Box<dyn FnOnce(Msg) -> Value>;
type Coro = Coroutine<Msg, Req, Req, Stack>;

pub(crate) enum Body {
    Unstarted(Entry),
    Started(Coro),
    /// Between resumes the coroutine lives in its record; while it runs, the
    /// trampoline holds it, leaving this behind.
    Running,
    Done(Option<Outcome>),
    Root,
}

/// Rarely used parts, kept out of line so an unstarted task stays small.
#[derive(Default)]
pub(crate) struct Extra {
    pub(crate) name: Option<Box<str>>,
    pub(crate) parent: Option<Rc<Inner>>,
    pub(crate) joiners: Vec<hub::Waker>,
}

/// The record of one green thread.
pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) state: Cell<State>,
    pub(crate) wait: Cell<WaitState>,
    pub(crate) reason: Cell<Wake>,
    /// Park epoch: a waker carries the value it had when issued.
    pub(crate) seq: Cell<u64>,
    /// Pending throw code (see `THROW_*`).
    pub(crate) throw: Cell<u64>,
    pub(crate) stack_size: u32,
    /// The guard region of its stack once it has one, for the overflow report.
    pub(crate) guard: Cell<(usize, usize)>,
    pub(crate) body: RefCell<Body>,
    pub(crate) extra: RefCell<Option<Box<Extra>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.id)
            .field("name", &self.name())
            .field("state", &self.state.get())
            .finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Inner {
    pub(crate) fn new(kind: Kind, entry: Option<Entry>, stack_size: usize) -> Inner {
        let body = match entry {
            Some(e) => Body::Unstarted(e),
            None => Body::Root,
        };
        Inner {
            id: if kind == Kind::Root { 0 } else { NEXT_ID.fetch_add(1, Ordering::Relaxed) },
            kind,
            state: Cell::new(if kind == Kind::Root { State::Running } else { State::Suspended }),
            wait: Cell::new(WaitState::Idle),
            reason: Cell::new(Wake::Ready),
            seq: Cell::new(0),
            throw: Cell::new(THROW_NONE),
            stack_size: u32::try_from(stack_size).unwrap_or(u32::MAX),
            guard: Cell::new((0, 0)),
            body: RefCell::new(body),
            extra: RefCell::new(None),
        }
    }

    pub(crate) fn is_root(&self) -> bool {
        self.kind == Kind::Root
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.state.get() == State::Dead
    }

    pub(crate) fn is_started(&self) -> bool {
        !matches!(&*self.body.borrow(), Body::Unstarted(_))
    }

    pub(crate) fn name(&self) -> Option<String> {
        self.extra.borrow().as_ref().and_then(|e| e.name.as_deref().map(str::to_owned))
    }

    pub(crate) fn with_extra<R>(&self, f: impl FnOnce(&mut Extra) -> R) -> R {
        let mut extra = self.extra.borrow_mut();
        f(extra.get_or_insert_with(Box::default))
    }

    pub(crate) fn parent(&self) -> Option<Rc<Inner>> {
        self.extra.borrow().as_ref().and_then(|e| e.parent.clone())
    }

    /// Records a pending throw, keeping the stronger of two.
    pub(crate) fn set_throw(&self, code: u64) {
        let old = self.throw.get();
        if old == THROW_NONE || code < old {
            self.throw.set(code);
        }
    }

    /// Unwinds now if a throw is pending (called wherever a green thread resumes).
    pub(crate) fn check_throw(&self) {
        match self.throw.replace(THROW_NONE) {
            THROW_NONE => {}
            THROW_KILL => panic::resume_unwind(Box::new(KillUnwind)),
            token => panic::resume_unwind(Box::new(TimeoutUnwind(token))),
        }
    }

    /// Marks an unstarted green thread dead without running it.
    pub(crate) fn kill_unstarted(&self) {
        let old = self.body.replace(Body::Done(Some(Outcome::Killed)));
        self.die();
        drop(old);
    }

    /// The common end of every green thread: dead, stale wakers, joiners woken.
    pub(crate) fn die(&self) {
        self.state.set(State::Dead);
        self.wait.set(WaitState::Idle);
        self.seq.set(self.seq.get() + 1);
        let joiners = self.extra.borrow_mut().as_mut().map(|e| std::mem::take(&mut e.joiners));
        for w in joiners.into_iter().flatten() {
            w.wake();
        }
    }

    /// Gives the green thread its stack and coroutine, if it has none yet.
    pub(crate) fn ensure_started(&self) -> io::Result<()> {
        let mut body = self.body.borrow_mut();
        if !matches!(&*body, Body::Unstarted(_)) {
            return Ok(());
        }
        let stack = Stack::new(self.stack_size as usize)?;
        self.guard.set(stack.guard());
        let Body::Unstarted(entry) = std::mem::replace(&mut *body, Body::Running) else {
            unreachable!("checked above")
        };
        let coro = Coro::with_stack(stack, move |y: &Yielder<Msg, Req>, first: Msg| {
            YIELDER.set(y as *const _);
            Req::Exit(run_entry(entry, first))
        });
        *body = Body::Started(coro);
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A coroutine still suspended here has no handle left to kill it
        // through the trampoline (that is done on the last `Greenlet` drop
        // when possible). corosensei's own drop would unwind it nested on
        // whatever stack we are on, outside the trampoline's bookkeeping;
        // leaking its stack is the safe choice.
        if let Body::Started(coro) = std::mem::replace(self.body.get_mut(), Body::Root) {
            if !coro.done() {
                std::mem::forget(coro);
            }
        }
    }
}

fn run_entry(entry: Entry, first: Msg) -> Outcome {
    match panic::catch_unwind(AssertUnwindSafe(|| entry(first))) {
        Ok(v) => Outcome::Returned(v),
        Err(p) if (*p).type_id() == TypeId::of::<KillUnwind>() => Outcome::Killed,
        Err(p) => Outcome::Panicked(p),
    }
}

thread_local! {
    /// The running green thread; null while the root stack runs.
    static CURRENT: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// The running green thread's yielder; restored by each green thread
    /// after every suspend, since others overwrite it meanwhile.
    static YIELDER: Cell<*const Yielder<Msg, Req>> = const { Cell::new(ptr::null()) };
}

/// The running green thread, or `None` on the root stack.
pub(crate) fn current_ptr() -> *const Inner {
    CURRENT.get()
}

/// The running green thread's record.
pub(crate) fn current() -> Rc<Inner> {
    let p = CURRENT.get();
    if p.is_null() {
        return hub::root();
    }
    // SAFETY: CURRENT is non-null only while `resume` runs that green thread,
    // and `resume` holds an `Rc` to it for that whole time, so the pointee is
    // alive and `p` came from `Rc::as_ptr`.
    unsafe {
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

/// Like [`current`], but `None` while the OS thread's hub is being torn down.
pub(crate) fn try_current() -> Option<Rc<Inner>> {
    if CURRENT.get().is_null() {
        hub::try_root()
    } else {
        Some(current())
    }
}

/// Suspends the running (non-root) green thread with `req`; returns the
/// message it is resumed with.
pub(crate) fn suspend(req: Req) -> Msg {
    let y = YIELDER.get();
    debug_assert!(!y.is_null() && !CURRENT.get().is_null());
    // SAFETY: YIELDER is set by each green thread when it starts and after
    // each suspend, and it points into that green thread's own stack frame
    // (the coroutine's entry), which lives until the coroutine returns. We
    // are that green thread (CURRENT is non-null), so `y` is ours and alive.
    let msg = unsafe { &*y }.suspend(req);
    YIELDER.set(y);
    msg
}

/// Resumes `target` with `msg` from the root stack, until it suspends or ends.
fn resume(target: &Rc<Inner>, msg: Msg) -> Req {
    debug_assert!(CURRENT.get().is_null(), "only the root stack resumes");
    if let Err(e) = target.ensure_started() {
        return Req::Exit(Outcome::NoStack(e));
    }
    let Body::Started(mut coro) = target.body.replace(Body::Running) else {
        unreachable!("greenhub: resumed a green thread that has no coroutine")
    };
    target.state.set(State::Running);
    CURRENT.set(Rc::as_ptr(target));
    set_running(target);
    let result = coro.resume(msg);
    stack::set_running(None);
    CURRENT.set(ptr::null());
    match result {
        CoroutineResult::Yield(req) => {
            *target.body.borrow_mut() = Body::Started(coro);
            req
        }
        CoroutineResult::Return(req) => {
            // The stack goes back to the pool here, ready for the next spawn.
            drop(coro);
            req
        }
    }
}

/// Tells the overflow handler who runs, so its report can name them.
fn set_running(target: &Inner) {
    let (guard_lo, guard_hi) = target.guard.get();
    let name = match &*target.extra.borrow() {
        Some(e) => e.name.as_deref().map(std::ptr::NonNull::from),
        None => None,
    };
    stack::set_running(Some(stack::Running {
        guard_lo,
        guard_hi,
        size: target.stack_size as usize,
        id: target.id,
        name,
    }));
}

/// What the trampoline does next.
pub(crate) enum Next {
    Switch(Rc<Inner>, Msg),
    Schedule,
}

/// Nothing is ready, no timer is pending and nothing outside can wake a green
/// thread: the root would wait forever.
#[derive(Debug)]
pub(crate) struct WouldBlockForever;

/// The root trampoline: runs green threads until something is meant for the
/// root (a switch to it, or its own wake), and returns that message.
pub(crate) fn root_loop(mut next: Next) -> Result<Msg, WouldBlockForever> {
    loop {
        let (target, msg) = match next {
            Next::Switch(t, m) => (t, m),
            Next::Schedule => match hub::next_ready() {
                Some(t) => (t, Msg::Wake),
                None => return Err(WouldBlockForever),
            },
        };
        if target.is_root() {
            target.state.set(State::Running);
            return Ok(msg);
        }
        next = match resume(&target, msg) {
            Req::Switch(t, m) => Next::Switch(t, m),
            Req::Schedule => Next::Schedule,
            Req::Exit(outcome) => finish(&target, outcome),
        };
    }
}

/// A green thread's function ended: record it and pick who runs next.
fn finish(g: &Rc<Inner>, outcome: Outcome) -> Next {
    if g.kind == Kind::Task {
        *g.body.borrow_mut() = Body::Done(Some(outcome));
        g.die();
        return Next::Schedule;
    }
    *g.body.borrow_mut() = Body::Done(None);
    g.die();
    let msg = match outcome {
        Outcome::Returned(v) => Msg::Value(v),
        Outcome::Panicked(p) => Msg::Throw(p),
        Outcome::Killed => Msg::Value(Box::new(crate::GreenletExit)),
        Outcome::NoStack(e) => Msg::Throw(Box::new(e.to_string())),
    };
    let mut parent = g.parent().unwrap_or_else(hub::root);
    while parent.is_dead() {
        parent = parent.parent().unwrap_or_else(hub::root);
    }
    match parent.state.get() {
        State::Suspended | State::Running => Next::Switch(parent, msg),
        _ => {
            // A parent parked on the hub cannot take a value: dropping it
            // silently would lose a result, so say so (gevent raises here).
            eprintln!(
                "greenhub: greenlet #{} finished while its parent #{} was parked on the hub; \
                 its result was dropped",
                g.id, parent.id
            );
            Next::Schedule
        }
    }
}

/// Leaves the running green thread (root or not) for the trampoline with
/// `next`, and returns the message it is resumed with.
pub(crate) fn leave(next: Next) -> Result<Msg, WouldBlockForever> {
    if CURRENT.get().is_null() {
        root_loop(next)
    } else {
        let req = match next {
            Next::Switch(t, m) => Req::Switch(t, m),
            Next::Schedule => Req::Schedule,
        };
        Ok(suspend(req))
    }
}
