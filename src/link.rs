//! Looking at how a spawned green thread ended without taking its result,
//! and callbacks run when it ends (gevent's `link`, `rawlink`,
//! `link_value`, `link_exception`, `value`, `exception`).
//!
//! The outcome stays in the green thread's record until a `join` takes it,
//! so any number of looks and callbacks can see it first. A look borrows it
//! for the length of a closure (`with_outcome`), since the record hands out
//! no references that could outlive a later `join`.

use std::any::Any;

use crate::greenlet::core::{Body, Outcome, Value};
use crate::greenlet::gref::GRef;
use crate::hub::callback;
use crate::task::{JoinError, JoinHandle, Panic};

/// A finished green thread's outcome, moved out of its record while a look
/// runs and put back when it ends, even if the look panics.
struct Lent<'a> {
    g: &'a GRef,
    view: Option<Result<Value, JoinError>>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let outcome = match self.view.take() {
            Some(Ok(v)) => Some(Outcome::Returned(v)),
            Some(Err(JoinError::Panicked(p))) => Some(Outcome::Panicked(p.into_payload())),
            Some(Err(JoinError::Killed)) => Some(Outcome::Killed),
            Some(Err(JoinError::NoStack(e))) => Some(Outcome::NoStack(e)),
            _ => None,
        };
        self.g.body.set(Body::Done(outcome));
    }
}

/// Runs `f` on the outcome of `g` if it is dead; see `JoinHandle::with_outcome`.
fn with_outcome_of<T: 'static, R>(g: &GRef, f: impl FnOnce(Result<&T, &JoinError>) -> R) -> Option<R> {
    if !g.is_dead() {
        return None;
    }
    let view = match g.body.replace(Body::Done(None)) {
        Body::Done(Some(Outcome::Returned(v))) => Ok(v),
        Body::Done(Some(Outcome::Panicked(p))) => Err(JoinError::Panicked(Panic::new(p, g.id, g.name()))),
        Body::Done(Some(Outcome::Killed)) => Err(JoinError::Killed),
        Body::Done(Some(Outcome::NoStack(e))) => Err(JoinError::NoStack(e)),
        Body::Done(None) => Err(JoinError::AlreadyJoined),
        _ => unreachable!("greenhub: a dead green thread has no outcome slot"),
    };
    let lent = Lent { g, view: Some(view) };
    let r = match lent.view.as_ref().expect("lent until dropped") {
        Ok(v) => {
            let any: &dyn Any = &**v;
            f(Ok(any
                .downcast_ref::<T>()
                .expect("greenhub: a JoinHandle<T>'s green thread returns a T")))
        }
        Err(e) => f(Err(e)),
    };
    drop(lent);
    Some(r)
}

impl<T: 'static> JoinHandle<T> {
    /// Runs `f` on how the green thread ended, without taking the result:
    /// `Ok(&value)` or `Err(&error)` as [`join`](JoinHandle::join) would
    /// return them. Returns `None` (and does not run `f`) while it is still
    /// running. Any number of looks see the same outcome until a `join`
    /// takes it; after that they see [`JoinError::AlreadyJoined`]. The
    /// outcome is lent for the length of `f`: a look at the same handle from
    /// inside `f` sees `AlreadyJoined`.
    ///
    /// ```
    /// let h = greenhub::spawn(|| vec![1, 2, 3]);
    /// assert_eq!(h.with_outcome(|r| r.map(Vec::len).ok()), None); // not run yet
    /// greenhub::yield_now();
    /// assert_eq!(h.with_outcome(|r| r.unwrap().len()), Some(3));
    /// assert_eq!(h.with_outcome(|r| r.unwrap()[0]), Some(1)); // look again
    /// assert_eq!(h.join().unwrap(), [1, 2, 3]);
    /// ```
    #[doc(alias = "get")]
    #[doc(alias = "exception")]
    #[doc(alias = "result")]
    pub fn with_outcome<R>(&self, f: impl FnOnce(Result<&T, &JoinError>) -> R) -> Option<R> {
        with_outcome_of(&self.g, f)
    }

    /// A clone of the value the green thread returned (gevent's `value`):
    /// `None` while it runs, if it failed, or once a `join` took the result.
    ///
    /// ```
    /// let h = greenhub::spawn(|| String::from("done"));
    /// greenhub::yield_now();
    /// assert_eq!(h.value().as_deref(), Some("done"));
    /// assert_eq!(h.value().as_deref(), Some("done")); // still there
    /// ```
    #[must_use]
    pub fn value(&self) -> Option<T>
    where
        T: Clone,
    {
        self.with_outcome(|r| r.ok().cloned()).flatten()
    }

    /// Whether the green thread ended by returning (gevent's `successful()`):
    /// false while it runs, if it panicked or was killed, or once a `join`
    /// took the result.
    ///
    /// ```
    /// let ok = greenhub::spawn(|| 1);
    /// let bad = greenhub::spawn(|| -> u8 { panic!("no") });
    /// greenhub::join_all([&ok, &bad]);
    /// assert!(ok.is_successful() && !bad.is_successful());
    /// ```
    #[doc(alias = "successful")]
    pub fn is_successful(&self) -> bool {
        self.with_outcome(|r| r.is_ok()).unwrap_or(false)
    }

    /// Runs `f` with the outcome when the green thread ends (gevent's
    /// `rawlink`; asyncio's `add_done_callback`). `f` runs once, on the hub
    /// as a callback (as [`call_soon`](crate::call_soon)'s do), so it must
    /// not block. gevent's `link` runs its callback in a greenlet of its
    /// own, where it may block: here, spawn a green thread from `f` for
    /// that. Linking a green thread that has ended already queues `f` at
    /// once.
    ///
    /// Every callback linked before the end sees the outcome: a `join`
    /// waits until they have run before it takes the result. A callback
    /// linked after a `join` took it sees [`JoinError::AlreadyJoined`].
    /// Callbacks run in the order they were linked; one that panics does
    /// not stop the others.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let h = greenhub::spawn(|| 40 + 2);
    /// let s = seen.clone();
    /// h.link(move |r| s.borrow_mut().push(*r.unwrap()));
    /// assert_eq!(h.join().unwrap(), 42);
    /// assert_eq!(*seen.borrow(), [42]);
    /// ```
    #[doc(alias = "rawlink")]
    #[doc(alias = "add_done_callback")]
    pub fn link(&self, f: impl FnOnce(Result<&T, &JoinError>) + 'static) {
        let g = self.g.clone();
        let run = Box::new(move || {
            with_outcome_of::<T, ()>(&g, f);
        });
        if self.g.is_dead() {
            callback::soon(run);
            return;
        }
        let owner = self.g.clone();
        self.g.with_extra(|e| {
            e.links.push(run);
            e.link_owner = Some(owner);
        });
    }

    /// Like [`link`](JoinHandle::link), running `f` only if the green thread
    /// returned a value (gevent's `link_value`).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// let got = Rc::new(Cell::new(0));
    /// let g = got.clone();
    /// let h = greenhub::spawn(|| 7);
    /// h.link_value(move |v| g.set(*v));
    /// h.join().unwrap();
    /// assert_eq!(got.get(), 7);
    /// ```
    pub fn link_value(&self, f: impl FnOnce(&T) + 'static) {
        self.link(move |r| {
            if let Ok(v) = r {
                f(v);
            }
        });
    }

    /// Like [`link`](JoinHandle::link), running `f` only if the green thread
    /// did not return a value: it panicked, was killed (unlike gevent, where
    /// a kill counts as success, since `join` returns an error for it here),
    /// or never got a stack (gevent's `link_exception`).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// let failed = Rc::new(Cell::new(false));
    /// let f = failed.clone();
    /// let h = greenhub::spawn(|| -> u8 { panic!("lost") });
    /// h.link_error(move |e| f.set(e.panic_message() == Some("lost")));
    /// let _ = h.join();
    /// assert!(failed.get());
    /// ```
    #[doc(alias = "link_exception")]
    pub fn link_error(&self, f: impl FnOnce(&JoinError) + 'static) {
        self.link(move |r| {
            if let Err(e) = r {
                if !matches!(e, JoinError::AlreadyJoined) {
                    f(e);
                }
            }
        });
    }
}
