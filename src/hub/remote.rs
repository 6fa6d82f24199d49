//! Wakes that come from other OS threads.
//!
//! A green thread waiting for work done elsewhere (the blocking pool, a
//! name lookup) gets a numbered remote wait. The other OS thread finishes
//! by pushing that number onto the hub's inbox (a lock-free
//! `crossbeam_queue::SegQueue`) and writing an eventfd the hub's poller
//! watches; a burst of completions costs one write, since only the first
//! after the hub last drained the inbox writes. The hub drains the inbox
//! and wakes the matching local wakers.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::SegQueue;

use super::{with, Hub, Waker};
use crate::sys::Notifier;

/// The poller token of the inbox's eventfd (fd slots use generation<<32|index,
/// which never reaches this).
pub(crate) const INBOX_TOKEN: u64 = u64::MAX;

/// The part of a hub that other OS threads may touch.
pub(crate) struct Inbox {
    /// Numbers of remote waits that have finished.
    done: SegQueue<u64>,
    /// Work handed in by other OS threads (`HubHandle::call_soon`).
    calls: SegQueue<Call>,
    /// The hub has stopped taking work: calls are refused, and any that
    /// slip in are dropped unrun.
    closed: AtomicBool,
    /// Set by the first post after a drain; later ones skip the write.
    notified: AtomicBool,
    efd: Notifier,
    /// The hub runs on an OS thread of its own (`spawn_hub`), which closes
    /// the inbox when the hub stops.
    owns_thread: AtomicBool,
    /// Waiting for the close (`HubHandle::stop`).
    close_waiters: std::sync::Mutex<Vec<RemoteWaker>>,
}

/// A closure handed to a hub from another OS thread.
pub(crate) type Call = Box<dyn FnOnce() + Send>;

impl Inbox {
    fn post(&self, id: u64) {
        self.done.push(id);
        self.notify();
    }

    fn notify(&self) {
        if !self.notified.swap(true, Ordering::SeqCst) {
            self.efd.notify();
        }
    }

    /// Queues `f` to run on the hub; gives it back if the hub has stopped.
    pub(crate) fn call(&self, f: Call) -> Result<(), Call> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(f);
        }
        self.calls.push(f);
        // Closed meanwhile: the hub may have drained already, so drop what
        // is queued here (this call included) rather than leave it waiting
        // forever. Dropping a call is how its submitter learns it never ran.
        if self.closed.load(Ordering::SeqCst) {
            while let Some(call) = self.calls.pop() {
                drop(call);
            }
            return Ok(());
        }
        self.notify();
        Ok(())
    }

    /// Refuses further calls; those already queued are dropped unrun when
    /// the hub next drains the inbox, or at `close`.
    pub(crate) fn refuse(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Refuses further calls, drops those queued, unrun, and wakes whoever
    /// waits for the close.
    pub(crate) fn close(&self) {
        self.refuse();
        while let Some(call) = self.calls.pop() {
            drop(call);
        }
        let waiters = std::mem::take(&mut *self.close_waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters {
            w.wake();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn owns_thread(&self) -> bool {
        self.owns_thread.load(Ordering::SeqCst)
    }

    pub(crate) fn set_owns_thread(&self) {
        self.owns_thread.store(true, Ordering::SeqCst);
    }

    /// Wakes `waker` when the inbox closes; false (and `waker` dropped,
    /// which wakes too) if it is closed already.
    pub(crate) fn on_close(&self, waker: RemoteWaker) -> bool {
        let mut waiters = self.close_waiters.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_closed() {
            return false;
        }
        waiters.push(waker);
        true
    }
}

/// One outstanding remote wait.
#[derive(Default)]
struct Waiting {
    /// The waker of its current park, if parked.
    waker: Option<Waker>,
    /// Its `RemoteWaker` has fired (or was dropped).
    done: bool,
}

/// The hub's side: the inbox and who waits on which number.
#[derive(Default)]
pub(crate) struct Remotes {
    inbox: Option<Arc<Inbox>>,
    /// Remote waits still outstanding. While any are, the hub may wait
    /// without a deadline.
    waiting: HashMap<u64, Waiting>,
    next_id: u64,
    /// When calls from other OS threads last arrived.
    last_call: Option<std::time::Instant>,
}

/// How long after calls from other threads the hub still expects more.
const RECENT_CALLS: std::time::Duration = std::time::Duration::from_millis(1);

impl Remotes {
    /// Whether something on another OS thread may still wake this hub: a
    /// remote wait in progress, or a live `HubHandle` that can hand in work.
    pub(crate) fn outstanding(&self) -> bool {
        !self.waiting.is_empty()
            || self
                .inbox
                .as_ref()
                .is_some_and(|i| Arc::strong_count(i) > 1 && !i.closed.load(Ordering::Relaxed))
    }
}

impl Hub {
    pub(crate) fn inbox(&self) -> io::Result<Arc<Inbox>> {
        if let Some(inbox) = &self.remotes.borrow().inbox {
            return Ok(inbox.clone());
        }
        let efd = self.poller()?.notifier(INBOX_TOKEN)?;
        let inbox = Arc::new(Inbox {
            done: SegQueue::new(),
            calls: SegQueue::new(),
            closed: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            efd,
            owns_thread: AtomicBool::new(false),
            close_waiters: std::sync::Mutex::new(Vec::new()),
        });
        self.remotes.borrow_mut().inbox = Some(inbox.clone());
        Ok(inbox)
    }

    /// While a remote wait is in flight, or calls came from other threads in
    /// the last millisecond (more are likely), watches the inbox for up to `limit` before the hub sleeps;
    /// returns whether something arrived (then the poller need not wait).
    /// Bounded, and only while another thread may be about to answer, so
    /// an idle hub with nothing outstanding never spins.
    pub(crate) fn spin_for_remote(&self, limit: std::time::Duration) -> bool {
        let remotes = self.remotes.borrow();
        let Some(inbox) = remotes.inbox.clone() else {
            return false;
        };
        let recent = remotes.last_call.is_some_and(|t| t.elapsed() < RECENT_CALLS);
        if remotes.waiting.is_empty() && !recent {
            return false;
        }
        drop(remotes);
        let start = std::time::Instant::now();
        loop {
            if inbox.notified.load(Ordering::Acquire) {
                return true;
            }
            if start.elapsed() >= limit {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// After `fork`, in the child: the inbox gets its own eventfd (the
    /// inherited one is shared with the parent) in the hub's fresh poller;
    /// what the parent had posted is dropped unrun; remote waits in flight
    /// (their workers are threads of the parent) end as done, so each
    /// waiter re-checks and finds no result (`blocking::run` then panics
    /// saying its job was lost) instead of waiting forever.
    pub(crate) fn reinit_remotes_after_fork(&self, poller: &crate::sys::Poller) -> io::Result<()> {
        let inbox = self.remotes.borrow().inbox.clone();
        if let Some(inbox) = inbox {
            inbox.efd.renew(poller, INBOX_TOKEN)?;
            inbox.notified.store(false, Ordering::SeqCst);
            while inbox.done.pop().is_some() {}
            while inbox.calls.pop().is_some() {}
        }
        let wakers: Vec<Waker> = self
            .remotes
            .borrow_mut()
            .waiting
            .values_mut()
            .filter_map(|w| {
                w.done = true;
                w.waker.take()
            })
            .collect();
        for w in wakers {
            w.wake();
        }
        Ok(())
    }

    /// The inbox's eventfd fired: wake every finished remote wait.
    pub(crate) fn drain_inbox(&self) {
        let Some(inbox) = self.remotes.borrow().inbox.clone() else {
            return;
        };
        inbox.efd.reset();
        // Cleared before draining: a completion pushed after this point
        // writes the eventfd again, so none is missed.
        inbox.notified.store(false, Ordering::SeqCst);
        while let Some(id) = inbox.done.pop() {
            let waker = self.remotes.borrow_mut().waiting.get_mut(&id).and_then(|w| {
                w.done = true;
                w.waker.take()
            });
            if let Some(w) = waker {
                w.wake();
            }
        }
        if !inbox.calls.is_empty() {
            self.remotes.borrow_mut().last_call = Some(std::time::Instant::now());
        }
        while let Some(call) = inbox.calls.pop() {
            if inbox.is_closed() {
                drop(call);
            } else {
                self.push(super::Ready::call(super::callback::slot(call)));
            }
        }
    }
}

/// Sent to another OS thread: wakes the remote wait it belongs to. Dropping
/// it without `wake` (the work was lost) also wakes, so the waiter is never
/// left parked forever; it then finds no result and reports that.
#[derive(Debug)]
pub(crate) struct RemoteWaker {
    inbox: Arc<Inbox>,
    id: u64,
    sent: bool,
}

impl RemoteWaker {
    pub(crate) fn wake(mut self) {
        self.sent = true;
        self.inbox.post(self.id);
    }
}

impl Drop for RemoteWaker {
    fn drop(&mut self) {
        if !self.sent {
            self.inbox.post(self.id);
        }
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("pending", &self.done.len())
            .finish()
    }
}

/// One wait of the current green thread for a `RemoteWaker`. Ends (and is
/// forgotten by the hub) on drop, including when the waiter is killed.
#[derive(Debug)]
pub(crate) struct RemoteWait {
    id: u64,
}

impl RemoteWait {
    /// Starts a remote wait; the `RemoteWaker` goes to the other OS thread.
    pub(crate) fn new() -> io::Result<(RemoteWait, RemoteWaker)> {
        with(|h| {
            let inbox = h.inbox()?;
            let mut r = h.remotes.borrow_mut();
            let id = r.next_id;
            r.next_id += 1;
            r.waiting.insert(id, Waiting::default());
            Ok((
                RemoteWait { id },
                RemoteWaker {
                    inbox,
                    id,
                    sent: false,
                },
            ))
        })
    }

    /// Parks until the remote side wakes (or drops) its `RemoteWaker`, or
    /// `deadline` passes; returns at once if it already has. Wakes carry no
    /// data: the caller checks the shared result first, and after this.
    pub(crate) fn park(&self, deadline: Option<std::time::Instant>) -> super::Wake {
        super::park_as(crate::debug::WaitTag::REMOTE, deadline, |w| {
            with(|h| match h.remotes.borrow_mut().waiting.get_mut(&self.id) {
                Some(state) if !state.done => state.waker = Some(w.clone()),
                _ => {
                    w.wake();
                }
            })
        })
    }

    /// Whether the remote side has woken (or dropped) its `RemoteWaker`.
    pub(crate) fn is_done(&self) -> bool {
        with(|h| h.remotes.borrow().waiting.get(&self.id).is_none_or(|w| w.done))
    }
}

impl Drop for RemoteWait {
    fn drop(&mut self) {
        super::try_with(|h| h.remotes.borrow_mut().waiting.remove(&self.id));
    }
}
