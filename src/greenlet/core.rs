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
use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::gref::GRef;
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
#[inline]
pub(crate) fn downcast<R: 'static>(v: Value) -> Result<R, (&'static str, &'static str)> {
    if (*v).type_id() != TypeId::of::<R>() {
        return Err((std::any::type_name::<R>(), (*v).type_name()));
    }
    let raw = Box::into_raw(v) as *mut R;
    // SAFETY: the value's dynamic type is `R` (its TypeId was just checked),
    // so the box's data pointer is a `Box<R>`'s, with `R`'s layout.
    Ok(*unsafe { Box::from_raw(raw) })
}

/// Why a parked green thread was resumed.
///
/// ```
/// use std::time::{Duration, Instant};
/// use greenhub::hub::park;
/// use greenhub::Wake;
/// let soon = Some(Instant::now() + Duration::from_millis(1));
/// assert_eq!(park(soon, |_| {}), Wake::TimedOut);
/// assert_eq!(park(None, |w| { w.wake(); }), Wake::Ready); // woken while registering
/// ```
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
    Switch(GRef, Msg),
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
pub(crate) struct TimeoutUnwind(pub(crate) u32);

/// Pending-throw codes: 0 none, 1 kill, >= 2 a timeout token. A kill
/// beats a timeout, and an outer timeout an inner one (see `token_before`).
pub(crate) const THROW_NONE: u32 = 0;
pub(crate) const THROW_KILL: u32 = 1;

/// `Inner::flags`: the green thread has a stack and coroutine (or is the root).
const STARTED: u8 = 1;
/// `Inner::flags`: a spawned green thread's `JoinHandle` was dropped.
const DETACHED: u8 = 2;

/// How many `with_timeout` tokens there are (2..=u32::MAX; the hub hands
/// them out in turn, wrapping from the last back to 2).
const TOKENS: u64 = u32::MAX as u64 - 1;

/// Whether token `a` was handed out before `b`, in serial-number order
/// (RFC 1982): right however often the counter has wrapped, as long as
/// fewer than two billion sections begin on the OS thread while the
/// outer of two nested sections is open. A plain `a < b` misordered an
/// outer section issued just before the wrap and an inner one after it.
pub(crate) fn token_before(a: u32, b: u32) -> bool {
    let ahead = (u64::from(b) + TOKENS - u64::from(a)) % TOKENS;
    ahead != 0 && ahead < TOKENS / 2
}

/// Stack sizes are stored in units of 4 KiB, in a `u16`, to keep the
/// record of an unstarted green thread small.
pub(crate) const STACK_UNIT: usize = 4096;
/// The largest stack a green thread may have: 256 MiB less 4 KiB.
pub(crate) const MAX_STACK_SIZE: usize = u16::MAX as usize * STACK_UNIT;

/// `InvalidInput` unless `bytes` is a stack size a green thread can have.
pub(crate) fn check_stack_size(bytes: usize) -> io::Result<()> {
    if bytes == 0 || bytes > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("greenhub: stack size {bytes} is not in 1..={MAX_STACK_SIZE}"),
        ));
    }
    Ok(())
}

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

/// A green thread's function, boxed until it first runs.
pub(crate) type Entry = Box<dyn EntryFn>;

/// Boxes `f` as a green thread's function.
pub(crate) fn entry(f: impl FnOnce(Msg) -> Value + 'static) -> Entry {
    Box::new(EntryOf(f))
}

/// Calling a `Box<dyn FnOnce>` frees the box only after the function
/// returns, so a million green threads that end together free a million
/// small allocations in the order they end, scattered through the heap
/// (measured: glibc's consolidation of such frees stalled the hub for up to
/// ~100 ms while it woke a million timed sleepers). `call` moves the
/// function out and frees its box first, when the green thread starts.
pub(crate) trait EntryFn {
    fn call(self: Box<Self>, first: Msg) -> Value;
}

struct EntryOf<F>(F);

impl<F: FnOnce(Msg) -> Value> EntryFn for EntryOf<F> {
    fn call(self: Box<Self>, first: Msg) -> Value {
        // Moving the field out and letting the box go frees it here.
        let f = {
            let b = self;
            b.0
        };
        f(first)
    }
}
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
    pub(crate) parent: Option<GRef>,
    pub(crate) joiners: Vec<hub::Waker>,
    /// Run on the green thread's own stack as its function ends (values of
    /// `sync::Local` are freed this way).
    pub(crate) on_exit: Vec<Box<dyn FnOnce()>>,
    /// Callbacks of `JoinHandle::link`: handed to the hub as callbacks
    /// when the green thread dies.
    pub(crate) links: Vec<Box<dyn FnOnce()>>,
    /// The green thread itself while `links` is not empty, for the
    /// callback that runs them (a cycle, broken when it dies).
    pub(crate) link_owner: Option<GRef>,
    /// Its links are queued but have not all run: joiners wait for them,
    /// so that every callback sees the outcome before a join takes it.
    pub(crate) linking: bool,
    /// The payload of `JoinHandle::kill_with`: a pending kill unwinds with
    /// it instead of `KillUnwind`.
    pub(crate) thrown: Option<Payload>,
}

/// The record of one green thread.
///
/// Kept at 112 bytes (120 with its count, in a `GRef`), since a million
/// spawned, unstarted green threads are a million of these: the body is a
/// `Cell` (moved out and back, never borrowed), rare fields live in
/// `Extra`, and the park sequence and throw code are 32-bit. The debugging
/// fields (`site`, `wait_tag`, `parked_at`: 16 bytes) took it from 96.
pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) state: Cell<State>,
    pub(crate) wait: Cell<WaitState>,
    pub(crate) reason: Cell<Wake>,
    /// `STARTED` and `DETACHED` (one byte: the record has no room for two).
    flags: Cell<u8>,
    /// The current park's own deadline timer fired (it is out of the timer
    /// map already, so the park need not look it up to remove it).
    pub(crate) timer_fired: Cell<bool>,
    /// Stack size in `STACK_UNIT`s.
    stack_units: u16,
    /// Park epoch: a waker carries the value it had when issued. 32 bits: a
    /// stale waker would have to outlive four billion parks to be mistaken.
    pub(crate) seq: Cell<u32>,
    /// Pending throw code (see `THROW_*`).
    pub(crate) throw: Cell<u32>,
    /// Lowest usable address of its stack once it has one; the guard page
    /// lies right below. For the overflow report.
    stack_low: Cell<usize>,
    /// About where its stack pointer was when it last suspended: the hub
    /// prefetches there before resuming it (see `Hub::next_ready`).
    pub(crate) sp: Cell<usize>,
    pub(crate) body: Cell<Body>,
    extra: Cell<Option<Box<Extra>>>,
    /// Where it was spawned (`#[track_caller]`), for run info and the
    /// blocking monitor; `None` for the root.
    pub(crate) site: Cell<Option<&'static std::panic::Location<'static>>>,
    /// What its current (or last) park waits on (a `debug::WaitTag`).
    pub(crate) wait_tag: Cell<u32>,
    /// When its current (or last) park began, in the hub's park clock
    /// (milliseconds since the hub was created, as last read by the hub;
    /// see `hub::note_time`). Fits in what was padding.
    pub(crate) parked_at: Cell<u32>,
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
            id: if kind == Kind::Root {
                0
            } else {
                NEXT_ID.fetch_add(1, Ordering::Relaxed)
            },
            kind,
            state: Cell::new(if kind == Kind::Root {
                State::Running
            } else {
                State::Suspended
            }),
            wait: Cell::new(WaitState::Idle),
            reason: Cell::new(Wake::Ready),
            flags: Cell::new(if kind == Kind::Root { STARTED } else { 0 }),
            timer_fired: Cell::new(false),
            stack_units: stack_size.div_ceil(STACK_UNIT).min(u16::MAX as usize) as u16,
            seq: Cell::new(0),
            throw: Cell::new(THROW_NONE),
            stack_low: Cell::new(0),
            sp: Cell::new(0),
            body: Cell::new(body),
            extra: Cell::new(None),
            site: Cell::new(None),
            wait_tag: Cell::new(0),
            parked_at: Cell::new(0),
        }
    }

    pub(crate) fn is_root(&self) -> bool {
        self.kind == Kind::Root
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.state.get() == State::Dead
    }

    /// Dead, and its link callbacks (if any) have run: a join may take the
    /// outcome now.
    pub(crate) fn is_settled(&self) -> bool {
        self.is_dead() && !self.peek_extra(|e| e.is_some_and(|e| e.linking))
    }

    pub(crate) fn is_started(&self) -> bool {
        self.flags.get() & STARTED != 0
    }

    pub(crate) fn set_started(&self) {
        self.flags.set(self.flags.get() | STARTED);
    }

    /// Whether the `JoinHandle` of this spawned green thread was dropped.
    pub(crate) fn is_detached(&self) -> bool {
        self.flags.get() & DETACHED != 0
    }

    /// Notes that nobody will take this green thread's result: it is then
    /// dropped on the green thread's own stack as its function ends (see
    /// `run_entry`), where blocking and panicking are handled, never on the
    /// hub's.
    pub(crate) fn set_detached(&self) {
        self.flags.set(self.flags.get() | DETACHED);
    }

    pub(crate) fn stack_size(&self) -> usize {
        self.stack_units as usize * STACK_UNIT
    }

    /// Runs `f` on the out-of-line fields, creating them on first use.
    /// `f` must not call back into `with_extra`/`peek_extra` of the same
    /// green thread (they are moved out meanwhile).
    pub(crate) fn with_extra<R>(&self, f: impl FnOnce(&mut Extra) -> R) -> R {
        let mut extra = self.extra.take().unwrap_or_default();
        let r = f(&mut extra);
        self.extra.set(Some(extra));
        r
    }

    /// Reads the out-of-line fields without creating them.
    fn peek_extra<R>(&self, f: impl FnOnce(Option<&Extra>) -> R) -> R {
        let extra = self.extra.take();
        let r = f(extra.as_deref());
        self.extra.set(extra);
        r
    }

    /// The exit hooks registered so far, without creating `Extra` (most
    /// green threads have none, and must not pay an allocation to say so).
    fn take_on_exit(&self) -> Vec<Box<dyn FnOnce()>> {
        let mut extra = self.extra.take();
        let hooks = extra
            .as_mut()
            .map(|e| std::mem::take(&mut e.on_exit))
            .unwrap_or_default();
        self.extra.set(extra);
        hooks
    }

    /// The payload `JoinHandle::kill_with` left, without creating `Extra`.
    fn take_thrown(&self) -> Option<Payload> {
        let mut extra = self.extra.take();
        let thrown = extra.as_mut().and_then(|e| e.thrown.take());
        self.extra.set(extra);
        thrown
    }

    pub(crate) fn name(&self) -> Option<String> {
        self.peek_extra(|e| e.and_then(|e| e.name.as_deref().map(str::to_owned)))
    }

    /// The ids of the green threads parked in a join of this one.
    pub(crate) fn joiner_ids(&self) -> Vec<u64> {
        self.peek_extra(|e| {
            e.map(|e| {
                e.joiners
                    .iter()
                    .filter(|w| w.is_waiting())
                    .map(hub::Waker::green_thread_id)
                    .collect()
            })
            .unwrap_or_default()
        })
    }

    pub(crate) fn parent(&self) -> Option<GRef> {
        self.peek_extra(|e| e.and_then(|e| e.parent.clone()))
    }

    /// Records a pending throw, keeping the stronger of two: a kill beats
    /// a timeout, and an outer timeout (issued first) an inner one.
    pub(crate) fn set_throw(&self, code: u32) {
        let old = self.throw.get();
        let stronger = match (code, old) {
            (_, THROW_NONE) | (THROW_KILL, _) => true,
            (_, THROW_KILL) => false,
            (code, old) => token_before(code, old),
        };
        if stronger {
            self.throw.set(code);
        }
    }

    /// Unwinds now if a throw is pending (called wherever a green thread resumes).
    #[inline]
    pub(crate) fn check_throw(&self) {
        if self.throw.get() != THROW_NONE {
            self.throw_now();
        }
    }

    #[cold]
    fn throw_now(&self) {
        // An unwinding green thread is not thrown into again: a second
        // panic out of a destructor aborts the process. The throw stays
        // pending for its next blocking call once the unwind is over.
        if std::thread::panicking() {
            return;
        }
        match self.throw.replace(THROW_NONE) {
            THROW_NONE => {}
            THROW_KILL => match self.take_thrown() {
                Some(payload) => panic::resume_unwind(payload),
                None => panic::resume_unwind(Box::new(KillUnwind)),
            },
            token => panic::resume_unwind(Box::new(TimeoutUnwind(token))),
        }
    }

    /// Marks an unstarted green thread dead without running it.
    pub(crate) fn kill_unstarted(&self) {
        let old = self.body.replace(Body::Done(Some(Outcome::Killed)));
        self.set_started();
        self.die();
        drop(old);
    }

    /// The common end of every green thread: dead, stale wakers, joiners woken.
    pub(crate) fn die(&self) {
        crate::debug::ended(self);
        self.state.set(State::Dead);
        self.wait.set(WaitState::Idle);
        self.seq.set(self.seq.get().wrapping_add(1));
        let mut extra = self.extra.take();
        let (joiners, links) = match extra.as_mut() {
            Some(e) if e.link_owner.is_some() => {
                // Joiners wait until the links have run (see `linking`).
                e.linking = true;
                (
                    Vec::new(),
                    Some((std::mem::take(&mut e.links), e.link_owner.take())),
                )
            }
            Some(e) => (std::mem::take(&mut e.joiners), None),
            None => (Vec::new(), None),
        };
        self.extra.set(extra);
        for w in joiners {
            w.wake();
        }
        if let Some((links, Some(owner))) = links {
            hub::callback::soon(Box::new(move || run_links(&owner, links)));
        }
    }

    /// Gives the green thread its stack and coroutine, if it has none yet.
    #[inline]
    pub(crate) fn ensure_started(&self) -> io::Result<()> {
        if self.is_started() {
            return Ok(());
        }
        self.start()
    }

    #[cold]
    fn start(&self) -> io::Result<()> {
        let stack = Stack::new(self.stack_size())?;
        self.stack_low.set(stack.guard().1);
        // A `spawn_later` start was a park's wake: that park is over.
        self.wait.set(WaitState::Idle);
        self.seq.set(self.seq.get().wrapping_add(1));
        let Body::Unstarted(entry) = self.body.replace(Body::Running) else {
            unreachable!("greenhub: a green thread not started has its entry")
        };
        let coro = Coro::with_stack(stack, move |y: &Yielder<Msg, Req>, first: Msg| {
            YIELDER.set(y as *const _);
            Req::Exit(run_entry(entry, first))
        });
        self.body.set(Body::Started(coro));
        self.set_started();
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
    let outcome = match panic::catch_unwind(AssertUnwindSafe(|| entry.call(first))) {
        Ok(v) => Outcome::Returned(v),
        Err(p) if (*p).type_id() == TypeId::of::<KillUnwind>() => Outcome::Killed,
        Err(p) => Outcome::Panicked(p),
    };
    // A kill that a patched libc call turned into an error (it cannot
    // unwind through a C frame) still makes the outcome "killed".
    #[cfg(feature = "monkey")]
    let outcome = crate::monkey::settle_outcome(outcome);
    let outcome = drop_if_detached(outcome);
    // Hooks may register more hooks (a value's destructor using a Local).
    loop {
        let hooks = with_current(Inner::take_on_exit);
        if hooks.is_empty() {
            break;
        }
        for hook in hooks {
            // A failing hook must not hide the outcome; its panic was reported.
            let _ = panic::catch_unwind(AssertUnwindSafe(hook));
        }
    }
    outcome
}

/// Drops a panic payload caught by greenhub (a failed callback, a
/// detached green thread's panic): a payload whose own `Drop` panics must
/// not unwind into the hub; that second payload is leaked, not dropped.
pub(crate) fn drop_payload(p: Payload) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(p))) {
        std::mem::forget(again);
    }
}

/// A detached spawned green thread's result (or panic payload) has no
/// taker: it is dropped here, on the green thread's own stack, where a
/// `Drop` that blocks parks like any code and one that panics is caught
/// and reported, instead of on the hub's stack when the record goes.
///
/// Not when it has links (`JoinHandle::link`): they run as hub callbacks
/// once it has ended and read its outcome, which then goes when they are
/// done, under the callback rule (a panic there is contained).
fn drop_if_detached(outcome: Outcome) -> Outcome {
    let unclaimed = with_current(|g| {
        g.kind == Kind::Task
            && g.is_detached()
            && !g.peek_extra(|e| e.is_some_and(|e| e.link_owner.is_some()))
    });
    if !unclaimed {
        return outcome;
    }
    match outcome {
        Outcome::Returned(v) => drop_result(v),
        Outcome::Panicked(p) => drop_payload(p),
        Outcome::Killed | Outcome::NoStack(_) => {}
    }
    Outcome::Killed
}

/// Drops a green thread's result that nobody will take; a panic of its
/// `Drop` (already reported by the panic hook) goes no further.
pub(crate) fn drop_result(v: Value) {
    drop_contained(v);
}

/// Drops `v`, whose `Drop` runs user code where a panic must go no further
/// (it was reported by the panic hook).
pub(crate) fn drop_contained<T>(v: T) {
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(v))) {
        drop_payload(p);
    }
}

/// The hub callback that runs a dead green thread's links, each on its own
/// (one that panics does not stop the rest), then wakes its joiners.
fn run_links(g: &GRef, links: Vec<Box<dyn FnOnce()>>) {
    for f in links {
        // A failing link must not keep joiners waiting; its panic was reported.
        let _ = panic::catch_unwind(AssertUnwindSafe(f));
    }
    let joiners = g.with_extra(|e| {
        e.linking = false;
        std::mem::take(&mut e.joiners)
    });
    for w in joiners {
        w.wake();
    }
}

/// Runs `f` when the current green thread's function ends, on its own
/// stack. On the root, which never ends, `f` is dropped unrun.
pub(crate) fn on_exit(f: Box<dyn FnOnce()>) {
    with_current(|g| {
        if !g.is_root() {
            g.with_extra(|e| e.on_exit.push(f));
        }
    });
}

thread_local! {
    /// The running green thread; null while the root stack runs.
    static CURRENT: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// This OS thread's root record, owned by the hub; null until the hub
    /// exists and again once it is torn down.
    pub(crate) static ROOT: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// The running green thread's yielder; restored by each green thread
    /// after every suspend, since others overwrite it meanwhile.
    static YIELDER: Cell<*const Yielder<Msg, Req>> = const { Cell::new(ptr::null()) };
}

/// The running green thread, or `None` on the root stack.
pub(crate) fn current_ptr() -> *const Inner {
    CURRENT.get()
}

/// The running green thread's record.
pub(crate) fn current() -> GRef {
    let mut p = CURRENT.get();
    if p.is_null() {
        p = ROOT.get();
        if p.is_null() {
            return hub::root();
        }
    }
    // CURRENT is non-null only while `resume` runs that green thread, and
    // `resume` holds a `GRef` to it for that whole time; ROOT is non-null
    // only while the hub, which owns the root's `GRef`, exists.
    // SAFETY: so the pointee is alive, and `p` came from `GRef::as_ptr`.
    unsafe { GRef::clone_raw(p) }
}

/// Runs `f` on the running green thread's record, without touching its
/// reference count (the switch path's way to reach it).
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Inner) -> R) -> R {
    let mut p = CURRENT.get();
    if p.is_null() {
        p = ROOT.get();
        if p.is_null() {
            return f(&hub::root());
        }
    }
    // SAFETY: as in `current`: the pointee is alive while it runs (CURRENT)
    // or while the hub exists (ROOT), which covers this call.
    f(unsafe { &*p })
}

/// Whether code running now belongs to a green thread (or the root) of a
/// live hub, running its own code: false on the hub's loop (the root is
/// then parked or scheduled), on threads that never had a hub, and once the
/// hub is torn down. Only reads thread-locals that need no initialisation,
/// so it is safe anywhere (the interposed libc calls ask it).
#[cfg(feature = "monkey")]
#[inline]
pub(crate) fn running_own_code() -> bool {
    let mut p = CURRENT.get();
    if p.is_null() {
        p = ROOT.get();
        if p.is_null() {
            return false;
        }
    }
    // SAFETY: as in `current`: CURRENT and ROOT point to live records
    // while they are non-null.
    unsafe { &*p }.state.get() == State::Running
}

/// Whether `g` is the running green thread.
#[inline]
pub(crate) fn is_current(g: &Inner) -> bool {
    with_current(|c| std::ptr::eq(c, g))
}

/// Like [`current`], but `None` while the OS thread's hub is being torn down.
pub(crate) fn try_current() -> Option<GRef> {
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
    let here = 0u8;
    // SAFETY: CURRENT is the running green thread's live record (see `current`).
    let me = unsafe { &*CURRENT.get() };
    me.sp.set(std::ptr::addr_of!(here) as usize);
    // YIELDER is set by each green thread when it starts and after each
    // suspend; it points into that green thread's own entry frame, which
    // lives until the coroutine returns.
    // SAFETY: we are that green thread (CURRENT is non-null): `y` is alive.
    let msg = unsafe { &*y }.suspend(req);
    YIELDER.set(y);
    msg
}

/// Resumes `target` with `msg` from the root stack, until it suspends or ends.
fn resume(target: &GRef, msg: Msg) -> Req {
    debug_assert!(CURRENT.get().is_null(), "only the root stack resumes");
    if let Err(e) = target.ensure_started() {
        return Req::Exit(Outcome::NoStack(e));
    }
    target.state.set(State::Running);
    crate::debug::switch_in(target);
    CURRENT.set(GRef::as_ptr(target));
    // The coroutine is resumed in place, through the Cell's pointer, to
    // save moving it out and back on every switch. Nothing else touches
    // `body` while its green thread runs: every other accessor acts only on
    // a green thread that is unstarted (`ensure_started`, `kill_unstarted`)
    // or dead (`JoinHandle::take`, `finish`), and `Inner` cannot be dropped
    // meanwhile since `target` is a `GRef` held across the call.
    // SAFETY: (as above) no other access to `body` while it runs; only the
    // root stack runs `resume`, so it is not re-entered.
    let result = match unsafe { &mut *target.body.as_ptr() } {
        Body::Started(coro) => coro.resume(msg),
        _ => unreachable!("greenhub: resumed a green thread that has no coroutine"),
    };
    CURRENT.set(ptr::null());
    match result {
        CoroutineResult::Yield(req) => req,
        CoroutineResult::Return(req) => {
            // The stack goes back to the pool here, ready for the next spawn.
            drop(target.body.replace(Body::Running));
            req
        }
    }
}

/// Tells the overflow handler which green thread runs, from its record:
/// asked only when a fault happens, so switches pay nothing for it. Only
/// reads memory (it runs in a signal handler).
pub(crate) fn describe_running() -> Option<stack::Running> {
    let p = CURRENT.try_with(Cell::get).ok()?;
    if p.is_null() {
        return None;
    }
    // The fault interrupted that green thread, so nothing is mid-way through
    // changing the fields read here; `extra` is read in place, not moved out.
    // SAFETY: CURRENT points to the running green thread's record, kept
    // alive by `resume` (see `current`).
    let g = unsafe { &*p };
    let low = g.stack_low.get();
    // SAFETY: as above; only a shared read of the box's name.
    let extra = unsafe { &*g.extra.as_ptr() };
    let name = extra
        .as_ref()
        .and_then(|e| e.name.as_deref())
        .map(std::ptr::NonNull::from);
    Some(stack::Running {
        guard_lo: low - stack::guard_size(),
        guard_hi: low,
        size: g.stack_size(),
        id: g.id,
        name,
    })
}

/// What the trampoline does next.
pub(crate) enum Next {
    Switch(GRef, Msg),
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
            crate::debug::switch_in(&target);
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
fn finish(g: &GRef, outcome: Outcome) -> Next {
    if g.kind == Kind::Task {
        g.body.set(Body::Done(Some(outcome)));
        g.die();
        return Next::Schedule;
    }
    g.body.set(Body::Done(None));
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
#[cfg(test)]
mod size_tests {
    /// The memory budget of a million spawned green threads rests on this.
    #[test]
    fn an_unstarted_green_thread_record_stays_small() {
        assert!(
            std::mem::size_of::<super::Inner>() <= 112,
            "{}",
            std::mem::size_of::<super::Inner>()
        );
    }
}
