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
use crate::sys::EventFd;

/// The poller token of the inbox's eventfd (fd slots use generation<<32|index,
/// which never reaches this).
pub(crate) const INBOX_TOKEN: u64 = u64::MAX;

/// The part of a hub that other OS threads may touch.
pub(crate) struct Inbox {
    /// Numbers of remote waits that have finished.
    done: SegQueue<u64>,
    /// Set by the first completion after a drain; later ones skip the write.
    notified: AtomicBool,
    efd: EventFd,
}

impl Inbox {
    fn post(&self, id: u64) {
        self.done.push(id);
        if !self.notified.swap(true, Ordering::SeqCst) {
            self.efd.notify();
        }
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
}

impl Remotes {
    pub(crate) fn outstanding(&self) -> bool {
        !self.waiting.is_empty()
    }
}

impl Hub {
    fn inbox(&self) -> io::Result<Arc<Inbox>> {
        if let Some(inbox) = &self.remotes.borrow().inbox {
            return Ok(inbox.clone());
        }
        let efd = EventFd::new()?;
        self.poller()?.add(efd.raw(), INBOX_TOKEN)?;
        let inbox = Arc::new(Inbox {
            done: SegQueue::new(),
            notified: AtomicBool::new(false),
            efd,
        });
        self.remotes.borrow_mut().inbox = Some(inbox.clone());
        Ok(inbox)
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

    /// Parks until the remote side wakes (or drops) its `RemoteWaker`;
    /// returns at once if it already has. Wakes carry no data: the caller
    /// checks the shared result first, and after this returns.
    pub(crate) fn park(&self) {
        super::park(None, |w| {
            with(|h| match h.remotes.borrow_mut().waiting.get_mut(&self.id) {
                Some(state) if !state.done => state.waker = Some(w.clone()),
                _ => {
                    w.wake();
                }
            })
        });
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
