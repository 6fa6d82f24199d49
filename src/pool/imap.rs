//! The iterators of `imap` and `imap_unordered` ([`Imap`],
//! [`ImapUnordered`]), for a [`Pool`] (bounded) and a [`Group`] (not).

use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use super::{reraise, Group, Pool};
use crate::wait::{self, KillOnDrop};
use crate::JoinHandle;

/// Where the calls of a map run.
#[derive(Clone, Debug)]
pub(super) enum Runner {
    Pool(Pool),
    Group(Group),
}

impl Runner {
    fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        match self {
            Runner::Pool(p) => p.spawn(f),
            Runner::Group(g) => g.spawn(f),
        }
    }

    /// Whether another call can start without parking.
    fn has_room(&self) -> bool {
        match self {
            Runner::Pool(p) => !p.is_full(),
            Runner::Group(_) => true,
        }
    }

    /// How many calls may be started and not yet handed out: a pool's size
    /// (an ordered map holds finished results until their turn, and must
    /// not start more meanwhile); a group has no bound.
    fn most_pending(&self) -> usize {
        match self {
            Runner::Pool(p) => p.size(),
            Runner::Group(_) => usize::MAX,
        }
    }
}

/// What both iterators share: the calls started, in start order.
struct Calls<T: 'static, F, I> {
    runner: Runner,
    f: Rc<F>,
    items: I,
    running: KillOnDrop<T>,
}

impl<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: Iterator<Item = A>> Calls<T, F, I> {
    fn new(runner: Runner, f: F, items: I) -> Self {
        Calls {
            runner,
            f: Rc::new(f),
            items,
            running: KillOnDrop(VecDeque::new()),
        }
    }

    /// Starts calls while there is room (at least one, so that a pool kept
    /// full by others still makes progress).
    fn fill(&mut self) {
        while self.running.0.is_empty()
            || (self.runner.has_room() && self.running.0.len() < self.runner.most_pending())
        {
            let Some(item) = self.items.next() else {
                return;
            };
            let f = self.f.clone();
            let h = self.runner.spawn(move || f(item));
            self.running.0.push_back(h);
        }
    }

    /// Joins the `i`th running call; on failure kills the rest and re-raises.
    fn take(&mut self, i: usize) -> T {
        let h = self
            .running
            .0
            .remove(i)
            .expect("greenhub: the index of a running call");
        match h.join() {
            Ok(v) => v,
            Err(e) => {
                self.running.kill_now();
                reraise(e)
            }
        }
    }
}

/// The results of [`Pool::imap_unordered`] and [`Group::imap_unordered`],
/// in the order the calls finish.
///
/// ```
/// let pool = greenhub::pool::Pool::new(2);
/// let mut doubled: Vec<u32> = pool.imap_unordered(|x: u32| x * 2, 1..=3).collect();
/// doubled.sort();
/// assert_eq!(doubled, [2, 4, 6]);
/// ```
pub struct ImapUnordered<T: 'static, F, I>(Calls<T, F, I>);

impl<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: Iterator<Item = A>> ImapUnordered<T, F, I> {
    pub(super) fn new(runner: Runner, f: F, items: I) -> ImapUnordered<T, F, I> {
        ImapUnordered(Calls::new(runner, f, items))
    }
}

impl<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: Iterator<Item = A>> Iterator
    for ImapUnordered<T, F, I>
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.fill();
        if self.0.running.0.is_empty() {
            return None;
        }
        let i = wait::wait_any(self.0.running.0.make_contiguous());
        Some(self.0.take(i))
    }
}

impl<T: 'static, F, I> fmt::Debug for ImapUnordered<T, F, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("runner", &self.0.runner)
            .field("running", &self.0.running.0.len())
            .finish()
    }
}

/// The results of [`Pool::imap`] and [`Group::imap`], in input order.
///
/// ```
/// let pool = greenhub::pool::Pool::new(2);
/// let doubled: Vec<u32> = pool.imap(|x: u32| x * 2, 1..=3).collect();
/// assert_eq!(doubled, [2, 4, 6]);
/// ```
pub struct Imap<T: 'static, F, I>(Calls<T, F, I>);

impl<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: Iterator<Item = A>> Imap<T, F, I> {
    pub(super) fn new(runner: Runner, f: F, items: I) -> Imap<T, F, I> {
        Imap(Calls::new(runner, f, items))
    }
}

impl<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: Iterator<Item = A>> Iterator for Imap<T, F, I> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.fill();
        if self.0.running.0.is_empty() {
            return None;
        }
        Some(self.0.take(0))
    }
}

impl<T: 'static, F, I> fmt::Debug for Imap<T, F, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("runner", &self.0.runner)
            .field("running", &self.0.running.0.len())
            .finish()
    }
}
