//! [`AsyncResult`]: a one-shot value set by one green thread and awaited by
//! others (asyncio's `Future`, gevent's `AsyncResult`).

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::waiters::WaitList;
use crate::debug::WaitTag;
use crate::hub::{Wake, Waker};
use crate::wait::Waitable;

/// Why [`AsyncResult::get`] (or its variants) has no value to return.
///
/// ```
/// use greenhub::sync::{AsyncError, AsyncResult};
/// let r = AsyncResult::<u8>::new();
/// assert!(matches!(r.try_get(), Err(AsyncError::NotReady)));
/// r.cancel();
/// assert!(matches!(r.get(), Err(AsyncError::Cancelled)));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum AsyncError {
    /// It was completed with [`set_error`](AsyncResult::set_error); this is
    /// the error, shared by every caller that asks.
    Failed(Rc<dyn Error>),
    /// It was cancelled before completing.
    Cancelled,
    /// [`try_get`](AsyncResult::try_get): it is still pending.
    NotReady,
    /// [`get_timeout`](AsyncResult::get_timeout): the time ran out first.
    TimedOut,
}

impl fmt::Debug for AsyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncError::Failed(e) => f.debug_tuple("Failed").field(&e.to_string()).finish(),
            AsyncError::Cancelled => f.write_str("Cancelled"),
            AsyncError::NotReady => f.write_str("NotReady"),
            AsyncError::TimedOut => f.write_str("TimedOut"),
        }
    }
}

impl fmt::Display for AsyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncError::Failed(e) => write!(f, "the result is an error: {e}"),
            AsyncError::Cancelled => f.write_str("the result was cancelled"),
            AsyncError::NotReady => f.write_str("the result is not ready yet"),
            AsyncError::TimedOut => f.write_str("timed out waiting for the result"),
        }
    }
}

impl Error for AsyncError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AsyncError::Failed(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Where an [`AsyncResult`] is in its life (asyncio's future states).
///
/// ```
/// use greenhub::sync::{AsyncResult, ResultState};
/// let r = AsyncResult::new();
/// assert_eq!(r.state(), ResultState::Pending);
/// r.set(1);
/// assert_eq!(r.state(), ResultState::Done);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultState {
    /// Not completed yet.
    Pending,
    /// Completed with a value or an error.
    Done,
    /// Cancelled before completing.
    Cancelled,
}

enum State<T> {
    Pending,
    Done(Result<T, Rc<dyn Error>>),
    Cancelled,
}

type Callback<T> = Box<dyn FnOnce(&AsyncResult<T>)>;

struct Shared<T> {
    state: RefCell<State<T>>,
    waiters: WaitList<()>,
    callbacks: RefCell<Vec<Callback<T>>>,
}

/// A value that will be there later: set once (with a value or an error) or
/// cancelled, and awaited by any number of green threads.
///
/// It is a handle: clones share one result, so the producer and the waiters
/// each keep one (and done-callbacks, which run later on the hub, receive
/// one). [`get`](AsyncResult::get) gives every waiter a clone of the value;
/// wrap a value that can't or shouldn't be cloned in an `Rc`.
///
/// ```
/// use greenhub::sync::AsyncResult;
///
/// let result = AsyncResult::new();
/// let r = result.clone();
/// greenhub::spawn(move || r.set(6 * 7));
/// assert_eq!(result.get().unwrap(), 42); // parks until it is set
/// ```
pub struct AsyncResult<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> AsyncResult<T> {
        AsyncResult {
            shared: self.shared.clone(),
        }
    }
}

impl<T: 'static> Default for AsyncResult<T> {
    fn default() -> AsyncResult<T> {
        AsyncResult::new()
    }
}

impl<T: 'static> AsyncResult<T> {
    /// A new, pending result.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// assert!(!r.is_ready());
    /// ```
    pub fn new() -> AsyncResult<T> {
        AsyncResult {
            shared: Rc::new(Shared {
                state: RefCell::new(State::Pending),
                waiters: WaitList::new(),
                callbacks: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Completes it with `value`, waking the waiters and scheduling the
    /// done-callbacks. Returns false (dropping `value`) if it was already
    /// done or cancelled: a result is set once.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::new();
    /// assert!(r.set(1));
    /// assert!(!r.set(2));
    /// assert_eq!(r.try_get().unwrap(), 1);
    /// ```
    pub fn set(&self, value: T) -> bool {
        self.complete(State::Done(Ok(value)))
    }

    /// Completes it with an error: every `get` then returns
    /// [`AsyncError::Failed`] with it. Returns false if it was already done
    /// or cancelled.
    ///
    /// ```
    /// use greenhub::sync::{AsyncError, AsyncResult};
    /// let r = AsyncResult::<u8>::new();
    /// r.set_error("no route to host");
    /// match r.get() {
    ///     Err(AsyncError::Failed(e)) => assert_eq!(e.to_string(), "no route to host"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn set_error(&self, error: impl Into<Box<dyn Error>>) -> bool {
        self.complete(State::Done(Err(Rc::from(error.into()))))
    }

    /// Cancels it if still pending: waiters get [`AsyncError::Cancelled`],
    /// done-callbacks are scheduled. Returns whether it was cancelled by this
    /// call (false if it was already done or cancelled).
    ///
    /// ```
    /// use greenhub::sync::{AsyncError, AsyncResult, ResultState};
    /// let r = AsyncResult::<u8>::new();
    /// assert!(r.cancel());
    /// assert_eq!(r.state(), ResultState::Cancelled);
    /// assert!(matches!(r.get(), Err(AsyncError::Cancelled)));
    /// ```
    pub fn cancel(&self) -> bool {
        self.complete(State::Cancelled)
    }

    fn complete(&self, to: State<T>) -> bool {
        {
            let mut state = self.shared.state.borrow_mut();
            if !matches!(*state, State::Pending) {
                return false;
            }
            *state = to;
        }
        self.shared.waiters.hand_all(|| ());
        let callbacks = std::mem::take(&mut *self.shared.callbacks.borrow_mut());
        for f in callbacks {
            self.schedule(f);
        }
        true
    }

    fn schedule(&self, f: Callback<T>) {
        let me = self.clone();
        crate::call_soon(move || f(&me));
    }

    /// Arranges for `f` to run once on the hub (through
    /// [`call_soon`](crate::call_soon)) when the result is done or
    /// cancelled; if it already is, `f` is scheduled at once. Callbacks run
    /// in the order they were added, and must not block.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let r = greenhub::sync::AsyncResult::new();
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// r.add_done_callback(move |r| s.set(r.try_get().unwrap()));
    /// r.set(9);
    /// greenhub::yield_now(); // the hub runs the callback
    /// assert_eq!(seen.get(), 9);
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&AsyncResult<T>) + 'static) {
        if self.is_ready() {
            self.schedule(Box::new(f));
        } else {
            self.shared.callbacks.borrow_mut().push(Box::new(f));
        }
    }

    /// Pending, done or cancelled.
    ///
    /// ```
    /// use greenhub::sync::{AsyncResult, ResultState};
    /// let r = AsyncResult::new();
    /// assert_eq!(r.state(), ResultState::Pending);
    /// r.set(());
    /// assert_eq!(r.state(), ResultState::Done);
    /// ```
    pub fn state(&self) -> ResultState {
        match *self.shared.state.borrow() {
            State::Pending => ResultState::Pending,
            State::Done(_) => ResultState::Done,
            State::Cancelled => ResultState::Cancelled,
        }
    }

    /// Whether it is done or cancelled (a `get` would return at once).
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<()>::new();
    /// r.cancel();
    /// assert!(r.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.state() != ResultState::Pending
    }

    /// Whether it was cancelled.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<()>::new();
    /// assert!(!r.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.state() == ResultState::Cancelled
    }
}

impl<T: Clone + 'static> AsyncResult<T> {
    /// Waits until it is done or cancelled, and returns (a clone of) the
    /// value.
    ///
    /// # Errors
    /// [`AsyncError::Failed`] if it was completed with an error,
    /// [`AsyncError::Cancelled`] if cancelled.
    ///
    /// # Blocking
    /// Parks the current green thread until the result is ready.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::new();
    /// r.set("hello".to_string());
    /// assert_eq!(r.get().unwrap(), "hello");
    /// assert_eq!(r.get().unwrap(), "hello"); // as often as you like
    /// ```
    pub fn get(&self) -> Result<T, AsyncError> {
        self.get_until(None)
    }

    /// Like [`get`](AsyncResult::get), giving up after `timeout`.
    ///
    /// # Errors
    /// As `get`, plus [`AsyncError::TimedOut`].
    ///
    /// # Blocking
    /// Parks the current green thread until the result is ready or the time
    /// runs out.
    ///
    /// ```
    /// use greenhub::sync::{AsyncError, AsyncResult};
    /// let r = AsyncResult::<u8>::new();
    /// let err = r.get_timeout(std::time::Duration::from_millis(5)).unwrap_err();
    /// assert!(matches!(err, AsyncError::TimedOut));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, AsyncError> {
        self.get_until(crate::hub::deadline_after(timeout))
    }

    /// The value if it is ready, without waiting.
    ///
    /// # Errors
    /// [`AsyncError::NotReady`] while pending; otherwise as `get`.
    ///
    /// ```
    /// use greenhub::sync::{AsyncError, AsyncResult};
    /// let r = AsyncResult::new();
    /// assert!(matches!(r.try_get(), Err(AsyncError::NotReady)));
    /// r.set(3);
    /// assert_eq!(r.try_get().unwrap(), 3);
    /// ```
    pub fn try_get(&self) -> Result<T, AsyncError> {
        match &*self.shared.state.borrow() {
            State::Pending => Err(AsyncError::NotReady),
            State::Done(Ok(v)) => Ok(v.clone()),
            State::Done(Err(e)) => Err(AsyncError::Failed(e.clone())),
            State::Cancelled => Err(AsyncError::Cancelled),
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, AsyncError> {
        loop {
            match self.try_get() {
                Err(AsyncError::NotReady) => {}
                done => return done,
            }
            if let (None, Wake::TimedOut) = self.shared.waiters.wait_as(WaitTag::RESULT, deadline, None, drop)
            {
                return match self.try_get() {
                    Err(AsyncError::NotReady) => Err(AsyncError::TimedOut),
                    done => done,
                };
            }
        }
    }
}

impl<T: 'static> Waitable for AsyncResult<T> {
    fn is_ready(&self) -> bool {
        AsyncResult::is_ready(self)
    }

    fn register(&self, waker: &Waker) {
        if AsyncResult::is_ready(self) {
            waker.wake();
        } else {
            self.shared.waiters.register(waker);
        }
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match *self.shared.state.borrow() {
            State::Pending => "pending",
            State::Done(Ok(_)) => "done",
            State::Done(Err(_)) => "failed",
            State::Cancelled => "cancelled",
        };
        f.debug_struct("AsyncResult")
            .field("state", &state)
            .field("waiters", &self.shared.waiters.count())
            .finish()
    }
}
