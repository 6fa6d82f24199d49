//! [`Group`]: a set of green threads joined or killed together.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::imap::{Imap, ImapUnordered, Runner};
use crate::hub::{park, Wake, Waker};
use crate::wait::KillOnDrop;
use crate::{Greenlet, JoinHandle};

/// A set of green threads that can be joined or killed together (gevent's
/// `Group`). Members leave the group as they end. Cloning gives another
/// handle to the same group.
///
/// ```
/// use std::time::Duration;
/// use greenhub::pool::Group;
///
/// let group = Group::new();
/// let a = group.spawn(|| greenhub::sleep(Duration::from_millis(10)));
/// group.spawn(|| greenhub::sleep(Duration::from_secs(60)));
/// assert_eq!(group.len(), 2);
/// assert!(!group.join_timeout(Duration::from_millis(30))); // the slow one is left
/// assert_eq!(group.len(), 1);
/// assert!(a.is_finished());
/// group.kill();
/// assert!(group.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Group {
    inner: Rc<GroupInner>,
}

#[derive(Default)]
struct GroupInner {
    /// Live members by a group-local key.
    members: RefCell<HashMap<u64, Member>>,
    next_key: Cell<u64>,
    /// Green threads parked in `join` or `kill`, each with the number of
    /// members it waits to see left (1 for a member waiting on the others).
    waiters: RefCell<Vec<(usize, Waker)>>,
}

#[derive(Default)]
struct Member {
    /// The green thread's id, which `discard` and `contains` match.
    id: u64,
    /// Set as it starts: the handle `kill` reaches it by.
    green: Option<Greenlet>,
    /// Killed before it started: it unwinds as it starts.
    killed: bool,
}

/// A member's place in its group, owned by the member's closure: dropped
/// when the member ends, however it ends (even killed before it started),
/// it takes the member out.
struct Membership {
    group: Weak<GroupInner>,
    key: u64,
}

impl Membership {
    /// Runs first in the member: records how to kill it.
    fn start(&self) {
        let Some(group) = self.group.upgrade() else {
            return;
        };
        let me = Greenlet::current();
        let killed = match group.members.borrow_mut().get_mut(&self.key) {
            Some(m) => {
                m.green = Some(me.clone());
                m.killed
            }
            None => false,
        };
        drop(group);
        if killed {
            me.kill();
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let Some(group) = self.group.upgrade() else {
            return;
        };
        let gone = group.members.borrow_mut().remove(&self.key);
        group.member_left();
        drop(gone);
    }
}

impl GroupInner {
    /// Wakes the joiners and killers that now see few enough members.
    fn member_left(&self) {
        let left = self.members.borrow().len();
        self.waiters.borrow_mut().retain(|(most, w)| {
            if left <= *most {
                w.wake();
                false
            } else {
                w.is_waiting()
            }
        });
    }
}

impl Group {
    /// An empty group.
    ///
    /// ```
    /// assert!(greenhub::pool::Group::new().is_empty());
    /// ```
    pub fn new() -> Group {
        Group::default()
    }

    /// Spawns `f` as a green thread in the group; it leaves the group when
    /// it ends. Take its result from the returned handle.
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// let h = group.spawn(|| 6 * 7);
    /// assert_eq!(h.join().unwrap(), 42);
    /// assert!(group.is_empty());
    /// ```
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        let place = self.enter();
        let key = place.key;
        let h = crate::spawn(move || {
            place.start();
            f()
        });
        if let Some(m) = self.inner.members.borrow_mut().get_mut(&key) {
            m.id = h.id();
        }
        h
    }

    /// Takes a member out of the group without killing it (gevent's
    /// `discard`): the group no longer joins or kills it. Returns whether it
    /// was a member.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenhub::pool::Group::new();
    /// let h = group.spawn(|| greenhub::sleep(Duration::from_millis(20)));
    /// assert!(group.discard(&h));
    /// assert!(group.is_empty() && !group.discard(&h));
    /// group.kill(); // h is not a member: it goes on
    /// assert!(h.join().is_ok());
    /// ```
    pub fn discard<T>(&self, handle: &JoinHandle<T>) -> bool {
        let id = handle.id();
        let key = self
            .inner
            .members
            .borrow()
            .iter()
            .find(|(_, m)| m.id == id)
            .map(|(k, _)| *k);
        let Some(key) = key else { return false };
        let gone = self.inner.members.borrow_mut().remove(&key);
        self.inner.member_left();
        drop(gone);
        true
    }

    /// Whether the green thread of `handle` is a member (gevent's
    /// `greenlet in group`).
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// let h = group.spawn(|| ());
    /// assert!(group.contains(&h));
    /// greenhub::join_all([&h]);
    /// assert!(!group.contains(&h));
    /// ```
    pub fn contains<T>(&self, handle: &JoinHandle<T>) -> bool {
        let id = handle.id();
        self.inner.members.borrow().values().any(|m| m.id == id)
    }

    /// Whether the running green thread is a member.
    pub(super) fn contains_current(&self) -> bool {
        let me = Greenlet::current().id();
        self.inner.members.borrow().values().any(|m| m.id == me)
    }

    /// Runs `f` on every item, each in a member green thread, all at once,
    /// and returns the results in input order (gevent's `Group.map`; a
    /// [`Pool`](super::Pool) bounds how many run at once).
    ///
    /// # Panics
    /// As [`Pool::map`](super::Pool::map).
    ///
    /// # Blocking
    /// Parks the current green thread until every call has finished.
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// assert_eq!(group.map(|x: u8| x + 1, [1, 2, 3]), [2, 3, 4]);
    /// ```
    pub fn map<A: 'static, T: 'static>(
        &self,
        f: impl Fn(A) -> T + 'static,
        items: impl IntoIterator<Item = A>,
    ) -> Vec<T> {
        super::map_with(Runner::Group(self.clone()), f, items)
    }

    /// Like [`map`](Group::map), iterating over the results in input order
    /// as they come (gevent's `Group.imap`). All calls start with the first
    /// `next`; dropping the iterator early kills the calls it started.
    ///
    /// # Panics
    /// As [`Pool::imap`](super::Pool::imap).
    ///
    /// # Blocking
    /// `next` parks until the next call in input order has finished.
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// let v: Vec<u8> = group.imap(|x: u8| x * 2, [3, 1]).collect();
    /// assert_eq!(v, [6, 2]);
    /// ```
    pub fn imap<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: IntoIterator<Item = A>>(
        &self,
        f: F,
        items: I,
    ) -> Imap<T, F, I::IntoIter> {
        Imap::new(Runner::Group(self.clone()), f, items.into_iter())
    }

    /// Like [`imap`](Group::imap), in the order the calls finish (gevent's
    /// `Group.imap_unordered`).
    ///
    /// # Panics
    /// As [`Pool::imap_unordered`](super::Pool::imap_unordered).
    ///
    /// # Blocking
    /// `next` parks until a call has finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenhub::pool::Group::new();
    /// let sleep_then = |ms: u64| { greenhub::sleep(Duration::from_millis(ms)); ms };
    /// let order: Vec<u64> = group.imap_unordered(sleep_then, [90, 30, 60]).collect();
    /// assert_eq!(order, [30, 60, 90]);
    /// ```
    pub fn imap_unordered<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: IntoIterator<Item = A>>(
        &self,
        f: F,
        items: I,
    ) -> ImapUnordered<T, F, I::IntoIter> {
        ImapUnordered::new(Runner::Group(self.clone()), f, items.into_iter())
    }

    /// Adds a green thread spawned elsewhere: the group takes its handle,
    /// joins and kills it with the others, and drops its result (keep the
    /// handle and use [`spawn`](Group::spawn) to keep the result).
    ///
    /// It is watched by a small member green thread of the group, which is
    /// what [`len`](Group::len) counts.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenhub::pool::Group::new();
    /// group.add(greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60))));
    /// assert_eq!(group.len(), 1);
    /// group.kill(); // kills the added green thread too
    /// assert!(group.is_empty());
    /// ```
    pub fn add<T: 'static>(&self, handle: JoinHandle<T>) {
        self.spawn(move || watch(handle));
    }

    /// How many members are alive.
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// group.spawn(|| ());
    /// assert_eq!(group.len(), 1);
    /// greenhub::yield_now();
    /// assert_eq!(group.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.members.borrow().len()
    }

    /// Whether no member is alive.
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// group.spawn(|| ());
    /// assert!(!group.is_empty());
    /// group.join();
    /// assert!(group.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every member has ended, including members spawned while
    /// it waits. Called from a member, it waits for the others.
    ///
    /// # Blocking
    /// Parks the current green thread until the group is empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenhub::pool::Group::new();
    /// let hs: Vec<_> = (1..=3).map(|i| group.spawn(move || greenhub::sleep(Duration::from_millis(i)))).collect();
    /// group.join();
    /// assert!(hs.iter().all(|h| h.is_finished()));
    /// ```
    #[doc(alias = "joinall")]
    pub fn join(&self) {
        self.wait_emptied(None);
    }

    /// Like [`join`](Group::join), giving up after `timeout`; returns whether
    /// the group emptied in time.
    ///
    /// # Blocking
    /// Parks the current green thread until the group is empty or the time
    /// is up.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenhub::pool::Group::new();
    /// group.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// assert!(!group.join_timeout(Duration::from_millis(5)));
    /// group.kill();
    /// assert!(group.join_timeout(Duration::ZERO));
    /// ```
    #[must_use = "false means members are still running"]
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.wait_emptied(crate::hub::deadline_after(timeout))
    }

    /// Kills every member and waits until all have ended; members not yet
    /// started never run. Called from a member, it kills the others (a green
    /// thread cannot wait for its own death).
    ///
    /// # Blocking
    /// Parks the current green thread until the members have unwound.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenhub::pool::Group::new();
    /// let h = group.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// group.kill();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn kill(&self) {
        let me = Greenlet::current().id();
        loop {
            for g in self.kill_targets(me) {
                g.kill();
            }
            let most = usize::from(self.is_member(me));
            if self.len() <= most {
                return;
            }
            self.park_until_at_most(most, None);
        }
    }

    /// The started members other than `me`; marks unstarted ones killed.
    fn kill_targets(&self, me: u64) -> Vec<Greenlet> {
        let mut members = self.inner.members.borrow_mut();
        members
            .values_mut()
            .filter_map(|m| match &m.green {
                Some(g) if g.id() == me => None,
                Some(g) => Some(g.clone()),
                None => {
                    m.killed = true;
                    None
                }
            })
            .collect()
    }

    fn is_member(&self, id: u64) -> bool {
        let members = self.inner.members.borrow();
        members
            .values()
            .any(|m| m.green.as_ref().is_some_and(|g| g.id() == id))
    }

    fn enter(&self) -> Membership {
        let key = self.inner.next_key.get();
        self.inner.next_key.set(key + 1);
        self.inner.members.borrow_mut().insert(key, Member::default());
        Membership {
            group: Rc::downgrade(&self.inner),
            key,
        }
    }

    /// Parks until no member but the caller is left; false if `deadline`
    /// passed first.
    fn wait_emptied(&self, deadline: Option<Instant>) -> bool {
        let most = usize::from(self.is_member(Greenlet::current().id()));
        loop {
            if self.len() <= most {
                return true;
            }
            if self.park_until_at_most(most, deadline) == Wake::TimedOut {
                return self.len() <= most;
            }
        }
    }

    fn park_until_at_most(&self, most: usize, deadline: Option<Instant>) -> Wake {
        park(deadline, |w| {
            let mut waiters = self.inner.waiters.borrow_mut();
            waiters.retain(|(_, w)| w.is_waiting());
            waiters.push((most, w.clone()));
        })
    }
}

/// The body of a member watching an added green thread: waits for it, and
/// kills it if the member is killed.
pub(super) fn watch<T: 'static>(handle: JoinHandle<T>) {
    let mut held = KillOnDrop(VecDeque::from([handle]));
    let waited = panic::catch_unwind(AssertUnwindSafe(|| crate::join_all(&held.0)));
    if let Err(unwind) = waited {
        // Caught, so the kill can wait here: the group's `kill` returns only
        // once the added green thread is dead too.
        held.kill_now();
        panic::resume_unwind(unwind);
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.len()).finish()
    }
}
