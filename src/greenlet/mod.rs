//! greenlet's explicit switching between green threads.
//!
//! A [`Greenlet`] runs a function on its own stack. Control moves only by
//! [`switch`](Greenlet::switch): the first switch starts the function with
//! the value passed, later switches resume it where it paused, the value
//! becoming the return value of the `switch` call that paused it. When the
//! function returns, its value goes to the greenlet's parent.
//!
//! ```
//! use greenhub::Greenlet;
//!
//! let g = Greenlet::new(|x: i32| {
//!     let parent = Greenlet::current().parent().unwrap();
//!     let y: i32 = parent.switch(x + 1); // pause, hand x+1 to main
//!     y * 10                              // returned to main's switch
//! });
//! let a: i32 = g.switch(1);
//! assert_eq!(a, 2);
//! let b: i32 = g.switch(5);
//! assert_eq!(b, 50);
//! assert!(g.is_dead());
//! ```
//!
//! Handles are `!Send`: a greenlet belongs to the OS thread that made it.
//!
//! ```compile_fail
//! let g = greenhub::Greenlet::new(|(): ()| ());
//! std::thread::spawn(move || g.switch::<(), ()>(()));
//! ```

pub(crate) mod core;
pub(crate) mod gref;

use std::any::Any;
use std::fmt;
use std::io;
use std::panic;

use self::core::{Inner, KillUnwind, Kind, Msg, Next, State};
use self::gref::GRef;
use crate::hub;

/// The value a parent receives from a child greenlet that was killed
/// (greenlet's `GreenletExit`).
///
/// ```
/// use greenhub::{Greenlet, GreenletExit};
/// let child = Greenlet::new(|(): ()| {
///     Greenlet::current().parent().unwrap().switch::<(), ()>(());
/// });
/// child.switch::<(), ()>(()); // paused inside
/// // Killing it hands GreenletExit to its parent (us) as its end value.
/// child.kill();
/// assert!(child.is_dead());
/// # let _ = GreenletExit;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreenletExit;

/// Why a [`Greenlet::try_switch`] failed.
///
/// ```
/// use greenhub::{Greenlet, SwitchError};
/// let g = Greenlet::new(|(): ()| ());
/// g.switch::<(), ()>(());
/// assert!(matches!(g.try_switch::<(), ()>(()), Err(SwitchError::Dead)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SwitchError {
    /// The target's function has ended; a dead greenlet cannot be resumed.
    Dead,
    /// The target is parked on the hub (in a sleep, a join, I/O...) or is a
    /// spawned green thread the hub has not started: the hub resumes it, not
    /// a switch.
    Parked,
    /// The value received did not have the type the switch expected.
    TypeMismatch {
        /// The type the switch asked for.
        expected: &'static str,
        /// The type of the value that arrived.
        found: &'static str,
    },
    /// No stack could be had to start the target (the error says which limit).
    NoStack(io::Error),
    /// The caller is unwinding (a destructor running during a panic, kill
    /// or timeout): it may not switch away, or the green thread switched to
    /// would run with std's panic count raised and could throw into the
    /// caller, aborting the process (see the crate docs' rules for
    /// destructors).
    Unwinding,
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Dead => f.write_str("cannot switch into a dead greenlet"),
            SwitchError::Parked => {
                f.write_str("cannot switch into a green thread the hub owns (parked or not yet started)")
            }
            SwitchError::TypeMismatch { expected, found } => {
                write!(
                    f,
                    "switch expected a value of type `{expected}` but received `{found}`"
                )
            }
            SwitchError::NoStack(e) => write!(f, "cannot start greenlet: {e}"),
            SwitchError::Unwinding => f.write_str(
                "cannot switch away from a green thread that is unwinding (a destructor \
                 running during a panic, kill or timeout)",
            ),
        }
    }
}

impl std::error::Error for SwitchError {}

/// A green thread switched to explicitly, as in Python's greenlet.
///
/// Cloning gives another handle to the same greenlet. Dropping the last
/// handle of a greenlet paused mid-function unwinds it (its destructors run),
/// as greenlet does when one is garbage-collected. If its function answers
/// that kill with a panic of its own, the drop reports it on stderr (with
/// the greenlet's id and name) and ignores it, as greenlet prints such an
/// error: a drop never panics, which during another unwind would abort.
///
/// ```
/// use greenhub::Greenlet;
/// // Two greenlets passing control back and forth, as greenlet's docs do.
/// let main = Greenlet::current();
/// let ping = Greenlet::new(move |n: u32| {
///     let back: u32 = main.switch(n + 1); // to main, with n + 1
///     back * 10
/// });
/// let first: u32 = ping.switch(1u32);
/// assert_eq!(first, 2);
/// let last: u32 = ping.switch(5u32); // resumes ping where it paused
/// assert_eq!(last, 50);
/// assert!(ping.is_dead());
/// ```
///
/// # Reference cycles
///
/// Handles are strong (greenhub has no weak handle: a greenlet's record
/// must outlive every handle, wherever user code keeps it), so a paused
/// greenlet that holds a handle to itself, directly or through what it
/// references, is never the last handle's drop: it stays paused and its
/// destructors never run. The usual way in is a temporary held across a
/// switch: in `Greenlet::current().parent().unwrap().switch(..)` the
/// temporary `Greenlet::current()` lives until the statement ends, after
/// the switch; bind the parent first (`let parent = ..; parent.switch(..)`)
/// or kill such a greenlet explicitly. What greenhub itself holds is not a
/// cycle: a spawned green thread's result nobody joins is dropped as it
/// ends (so a paused greenlet it returns is unwound), and a finished
/// greenlet holds nothing of its parent.
///
/// ```
/// use greenhub::Greenlet;
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let unwound = Rc::new(Cell::new(false));
/// let u = unwound.clone();
/// let g = Greenlet::new(move |(): ()| {
///     struct Mark(Rc<Cell<bool>>);
///     impl Drop for Mark { fn drop(&mut self) { self.0.set(true) } }
///     let _m = Mark(u);
///     let parent = Greenlet::current().parent().unwrap(); // no self-handle kept
///     parent.switch::<(), ()>(());
/// });
/// g.switch::<(), ()>(());
/// drop(g); // the last handle: unwound now
/// assert!(unwound.get());
/// ```
#[doc(alias = "greenlet")]
pub struct Greenlet {
    inner: GRef,
}

impl Clone for Greenlet {
    fn clone(&self) -> Greenlet {
        Greenlet {
            inner: self.inner.clone(),
        }
    }
}

impl Greenlet {
    /// Creates a greenlet that will run `f`; nothing runs until the first
    /// [`switch`](Greenlet::switch), whose value becomes `f`'s argument. Its
    /// parent is the green thread that creates it.
    ///
    /// ```
    /// let g = greenhub::Greenlet::new(|s: &'static str| s.len());
    /// assert!(!g.is_started());
    /// assert_eq!(g.switch::<_, usize>("four"), 4);
    /// ```
    #[track_caller]
    pub fn new<A: 'static, R: 'static, F: FnOnce(A) -> R + 'static>(f: F) -> Greenlet {
        Greenlet::build(f, crate::stack::DEFAULT_STACK_SIZE)
    }

    /// Like [`new`](Greenlet::new), with a usable stack of `bytes` (rounded
    /// up to whole pages) instead of
    /// [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE), for a function
    /// with deep recursion or large locals (spawned green threads take
    /// theirs from [`Builder::stack_size`](crate::Builder::stack_size)).
    ///
    /// # Errors
    /// `InvalidInput` if `bytes` is 0 or over 256 MiB less 4 KiB. The stack
    /// itself is mapped on the first switch; if none can be had then, that
    /// switch panics with the reason.
    ///
    /// ```
    /// use greenhub::Greenlet;
    /// fn depth(n: u32) -> u32 {
    ///     let pad = std::hint::black_box([0u8; 1024]); // 1 KiB a frame
    ///     if n == 0 { u32::from(pad[0]) } else { 1 + depth(n - 1) }
    /// }
    /// // About 1 MiB of frames: far beyond the default stack.
    /// let g = Greenlet::with_stack_size(4 << 20, |n: u32| depth(n)).unwrap();
    /// assert_eq!(g.switch::<u32, u32>(1000), 1000);
    /// assert!(Greenlet::with_stack_size(0, |(): ()| ()).is_err());
    /// ```
    #[track_caller]
    pub fn with_stack_size<A: 'static, R: 'static, F: FnOnce(A) -> R + 'static>(
        bytes: usize,
        f: F,
    ) -> io::Result<Greenlet> {
        core::check_stack_size(bytes)?;
        Ok(Greenlet::build(f, bytes))
    }

    #[track_caller]
    fn build<A: 'static, R: 'static, F: FnOnce(A) -> R + 'static>(f: F, stack_size: usize) -> Greenlet {
        let entry = core::entry(move |first: Msg| -> core::Value {
            let arg = match first {
                Msg::Value(v) => match core::downcast::<A>(v) {
                    Ok(a) => a,
                    Err((expected, found)) => panic!(
                        "greenhub: greenlet expected a start value of type `{expected}` but received `{found}`"
                    ),
                },
                Msg::Throw(p) => panic::resume_unwind(p),
                Msg::Wake => unreachable!("greenhub: a greenlet is started by a switch"),
            };
            Box::new(f(arg))
        });
        let inner = GRef::new(Inner::new(Kind::Greenlet, Some(entry), stack_size));
        inner.with_extra(|e| e.parent = Some(core::current()));
        crate::debug::created(&inner, std::panic::Location::caller());
        Greenlet { inner }
    }

    /// The running green thread (the OS thread's root greenlet outside any).
    ///
    /// ```
    /// use greenhub::Greenlet;
    /// assert_eq!(Greenlet::current().id(), 0); // the root
    /// let g = Greenlet::new(|(): ()| Greenlet::current().id());
    /// let id = g.id();
    /// assert_eq!(g.switch::<(), u64>(()), id);
    /// ```
    #[doc(alias = "getcurrent")]
    pub fn current() -> Greenlet {
        Greenlet {
            inner: core::current(),
        }
    }

    /// The greenlet that receives this one's result: its creator, unless
    /// re-parented. `None` for the root and for green threads spawned on the
    /// hub (their result goes to their `JoinHandle`).
    ///
    /// ```
    /// use greenhub::Greenlet;
    /// let g = Greenlet::new(|(): ()| ());
    /// assert_eq!(g.parent().unwrap().id(), Greenlet::current().id());
    /// assert!(Greenlet::current().parent().is_none()); // the root has none
    /// ```
    pub fn parent(&self) -> Option<Greenlet> {
        match self.inner.kind {
            Kind::Greenlet => Some(Greenlet {
                inner: self.inner.parent().unwrap_or_else(hub::root),
            }),
            Kind::Root | Kind::Task => None,
        }
    }

    /// Changes the parent.
    ///
    /// # Panics
    /// If it would make a cycle, or if `self` is a root or a spawned green thread.
    ///
    /// ```
    /// use greenhub::Greenlet;
    /// let main = Greenlet::current();
    /// // `a` ends by returning to `b` (its new parent) instead of to main.
    /// let b = Greenlet::new(|from_a: &'static str| from_a.len());
    /// let a = Greenlet::new(|(): ()| "done");
    /// a.set_parent(&b);
    /// b.set_parent(&main);
    /// let len: usize = a.switch(());
    /// assert_eq!(len, 4);
    /// ```
    pub fn set_parent(&self, parent: &Greenlet) {
        assert!(
            self.inner.kind == Kind::Greenlet,
            "greenhub: only a Greenlet::new greenlet has a settable parent"
        );
        let mut p = Some(parent.inner.clone());
        while let Some(g) = p {
            assert!(
                !GRef::ptr_eq(&g, &self.inner),
                "greenhub: set_parent would make a cycle"
            );
            p = g.parent();
        }
        self.inner.with_extra(|e| e.parent = Some(parent.inner.clone()));
    }

    /// Whether the function has begun running (greenlet's `bool(g)` is
    /// started and not dead).
    ///
    /// ```
    /// let g = greenhub::Greenlet::new(|(): ()| ());
    /// assert!(!g.is_started());
    /// g.switch::<(), ()>(());
    /// assert!(g.is_started());
    /// ```
    #[doc(alias = "bool")]
    pub fn is_started(&self) -> bool {
        self.inner.is_started()
    }

    /// Whether the function has ended (returned, panicked or was killed).
    /// A root greenlet is never dead.
    ///
    /// ```
    /// let g = greenhub::Greenlet::new(|(): ()| ());
    /// assert!(!g.is_dead());
    /// g.switch::<(), ()>(());
    /// assert!(g.is_dead());
    /// ```
    #[doc(alias = "dead")]
    pub fn is_dead(&self) -> bool {
        self.inner.is_dead()
    }

    /// A number unique among the process's green threads (the root's is 0).
    ///
    /// ```
    /// let a = greenhub::Greenlet::new(|(): ()| ());
    /// let b = greenhub::Greenlet::new(|(): ()| ());
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Switches to this greenlet, handing it `value`; returns the value that
    /// the next switch back to the caller carries.
    ///
    /// # Panics
    /// On any [`SwitchError`] (see [`try_switch`](Greenlet::try_switch)),
    /// and re-raises a panic or throw that reaches the caller.
    ///
    /// # Blocking
    /// The caller is paused until something switches back to it.
    ///
    /// ```
    /// use greenhub::Greenlet;
    /// let g = Greenlet::new(|start: i32| {
    ///     let parent = Greenlet::current().parent().unwrap();
    ///     let again: i32 = parent.switch(start * 2); // pause, handing back start * 2
    ///     again + 1 // the end value goes to the parent
    /// });
    /// assert_eq!(g.switch::<i32, i32>(21), 42);
    /// assert_eq!(g.switch::<i32, i32>(9), 10);
    /// ```
    pub fn switch<T: 'static, R: 'static>(&self, value: T) -> R {
        match self.try_switch(value) {
            Ok(r) => r,
            Err(e) => panic!("greenhub: {e}"),
        }
    }

    /// Like [`switch`](Greenlet::switch), returning errors instead of
    /// panicking; [`SwitchError::Unwinding`] when called while the caller
    /// unwinds (from a destructor during a panic, kill or timeout).
    ///
    /// ```
    /// use greenhub::{Greenlet, SwitchError};
    /// let g = Greenlet::new(|x: u8| x);
    /// assert_eq!(g.try_switch::<u8, u8>(3).unwrap(), 3);
    /// assert!(matches!(g.try_switch::<u8, u8>(3), Err(SwitchError::Dead)));
    /// let h = Greenlet::new(|x: u8| x);
    /// let e = h.try_switch::<u8, String>(3).unwrap_err();
    /// assert_eq!(e.to_string(), "switch expected a value of type `alloc::string::String` but received `u8`");
    /// ```
    pub fn try_switch<T: 'static, R: 'static>(&self, value: T) -> Result<R, SwitchError> {
        hub::assert_can_block();
        if core::is_current(&self.inner) {
            return core::downcast::<R>(Box::new(value)).map_err(type_mismatch);
        }
        if hub::unwinding() {
            return Err(SwitchError::Unwinding);
        }
        self.check_switchable()?;
        self.inner.ensure_started().map_err(SwitchError::NoStack)?;
        let msg = transfer(Next::Switch(self.inner.clone(), Msg::Value(Box::new(value))));
        match msg {
            Msg::Value(v) => core::downcast::<R>(v).map_err(type_mismatch),
            Msg::Throw(p) => panic::resume_unwind(p),
            Msg::Wake => unreachable!("greenhub: a throw is pending for the greenlet"),
        }
    }

    fn check_switchable(&self) -> Result<(), SwitchError> {
        match self.inner.state.get() {
            State::Dead => Err(SwitchError::Dead),
            State::Parked | State::Scheduled => Err(SwitchError::Parked),
            State::Suspended | State::Running => Ok(()),
        }
    }

    /// Raises `payload` as a panic inside this greenlet at its paused point,
    /// unwinding its stack. Uncaught there, the greenlet dies and the panic
    /// goes on to its parent. A greenlet that has not started dies without
    /// running and the panic goes straight to its parent. Returns what the
    /// next switch back to the caller carries.
    ///
    /// # Panics
    /// As [`switch`](Greenlet::switch); a dead target is an error.
    ///
    /// ```
    /// use greenhub::Greenlet;
    /// let g = Greenlet::new(|(): ()| {
    ///     let parent = Greenlet::current().parent().unwrap();
    ///     // Catch what is thrown in at the paused switch, and report it.
    ///     let paused = std::panic::AssertUnwindSafe(|| parent.switch::<(), ()>(()));
    ///     let caught = std::panic::catch_unwind(paused);
    ///     let msg = *caught.unwrap_err().downcast::<&str>().unwrap();
    ///     format!("caught {msg}")
    /// });
    /// g.switch::<(), ()>(()); // g pauses in its switch to us, handing ()
    /// let report: String = g.throw(Box::new("stop"));
    /// assert_eq!(report, "caught stop");
    /// ```
    pub fn throw<R: 'static>(&self, payload: Box<dyn Any + Send>) -> R {
        if hub::unwinding() && !core::is_current(&self.inner) {
            panic!("greenhub: {}", SwitchError::Unwinding);
        }
        match self.try_throw(Msg::Throw(payload)) {
            Ok(r) => r,
            Err(e) => panic!("greenhub: {e}"),
        }
    }

    fn try_throw<R: 'static>(&self, msg: Msg) -> Result<R, SwitchError> {
        hub::assert_can_block();
        let cur = core::current();
        if GRef::ptr_eq(&cur, &self.inner) {
            if let Msg::Throw(p) = msg {
                panic::resume_unwind(p);
            }
        }
        self.check_switchable()?;
        let target = if self.inner.is_started() {
            self.inner.clone()
        } else {
            // Never started: it dies unrun and the throw lands in its parent.
            self.inner.kill_unstarted();
            let mut p = self.inner.parent().unwrap_or_else(hub::root);
            while p.is_dead() {
                p = p.parent().unwrap_or_else(hub::root);
            }
            if GRef::ptr_eq(&p, &cur) {
                match msg {
                    Msg::Throw(payload) => panic::resume_unwind(payload),
                    _ => unreachable!(),
                }
            }
            p
        };
        drop(cur);
        match transfer(Next::Switch(target, msg)) {
            Msg::Value(v) => core::downcast::<R>(v).map_err(type_mismatch),
            Msg::Throw(p) => panic::resume_unwind(p),
            Msg::Wake => unreachable!("greenhub: a throw is pending for the greenlet"),
        }
    }

    /// Kills the greenlet: unwinds its stack from its paused point (its
    /// destructors run) and its parent receives [`GreenletExit`]. Killing an
    /// unstarted greenlet means its function never runs; killing a dead one
    /// does nothing. A greenlet parked on the hub (sleeping, waiting on I/O)
    /// is unwound when the hub next runs it. While it unwinds, its
    /// destructors' parks return at once and it cannot switch away (see
    /// the crate docs' rules for destructors).
    ///
    /// ```
    /// use greenhub::Greenlet;
    /// let g = Greenlet::new(|(): ()| {
    ///     let _guard = scopeguard(|| println!("cleaned up"));
    ///     // Bound first, so no handle to `g` itself stays on its stack.
    ///     let parent = Greenlet::current().parent().unwrap();
    ///     parent.switch::<(), ()>(());
    ///     unreachable!("killed while paused");
    /// });
    /// g.switch::<(), ()>(());
    /// g.kill();
    /// assert!(g.is_dead());
    /// # struct Guard<F: FnMut()>(F);
    /// # impl<F: FnMut()> Drop for Guard<F> { fn drop(&mut self) { (self.0)() } }
    /// # fn scopeguard<F: FnMut()>(f: F) -> Guard<F> { Guard(f) }
    /// ```
    pub fn kill(&self) {
        match self.inner.state.get() {
            State::Dead => {}
            _ if !self.inner.is_started() => self.inner.kill_unstarted(),
            State::Parked | State::Scheduled => hub::deliver_throw(&self.inner, core::THROW_KILL),
            _ => {
                let _: Result<GreenletExitOrAny, _> = self.try_throw(Msg::Throw(Box::new(KillUnwind)));
            }
        }
    }
}

/// Whatever the parent was handed when the killed greenlet died: normally
/// `GreenletExit`; anything else is dropped.
type GreenletExitOrAny = Box<dyn Any>;

fn type_mismatch((expected, found): (&'static str, &'static str)) -> SwitchError {
    SwitchError::TypeMismatch { expected, found }
}

/// Leaves `cur` for the trampoline; `cur` waits for a switch back.
///
/// A paused greenlet must hold no handle (`GRef`) to itself on its own stack,
/// or dropping its last outside handle could not tell that nothing else
/// refers to it: callers drop theirs first, and this reaches the record
/// without one.
fn transfer(next: Next) -> Msg {
    core::with_current(|cur| cur.state.set(State::Suspended));
    let result = core::leave(next);
    let msg = match result {
        Ok(msg) => msg,
        Err(core::WouldBlockForever) => {
            core::with_current(|cur| cur.state.set(State::Running));
            panic!(
                "greenhub: this operation would block forever: the main greenlet switched away \
                 and nothing can switch back to it"
            )
        }
    };
    core::with_current(Inner::check_throw);
    msg
}

impl Drop for Greenlet {
    fn drop(&mut self) {
        let g = &self.inner;
        let paused = g.kind == Kind::Greenlet && g.state.get() == State::Suspended && g.is_started();
        if !paused || GRef::strong_count(g) != 1 {
            return;
        }
        // The last handle of a paused greenlet: unwind it now, returning here,
        // as greenlet does on collection. Not possible from a hub callback or
        // while the OS thread is tearing down; there it is left suspended.
        if hub::try_can_block() {
            if let Some(cur) = core::try_current() {
                g.with_extra(|e| e.parent = Some(cur));
                // Its body may answer the kill with a panic of its own, which
                // then reaches us: greenlet prints such an error and ignores
                // it, and a `Drop` must not panic (during another unwind that
                // aborts the process).
                let killed = panic::catch_unwind(panic::AssertUnwindSafe(|| {
                    self.try_throw::<GreenletExitOrAny>(Msg::Throw(Box::new(KillUnwind)))
                }));
                if let Err(p) = killed {
                    report_ignored_panic(g, p);
                }
            }
        }
    }
}

/// Reports on stderr a panic raised by greenlet `g` as the drop of its
/// last handle killed it, and drops the payload (greenlet's way: print the
/// error and go on).
#[cold]
fn report_ignored_panic(g: &Inner, p: Box<dyn Any + Send>) {
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload");
    let name = g.name().map(|n| format!(" ({n})")).unwrap_or_default();
    eprintln!(
        "greenhub: greenlet #{}{name} panicked while being killed because its last handle \
         was dropped; the panic is ignored: {msg}",
        g.id
    );
    core::drop_payload(p);
}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
