//! [`ImapUnordered`]: the iterator of [`Pool::imap_unordered`].

use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use super::{reraise, Pool};
use crate::wait::{self, KillOnDrop};

/// The results of [`Pool::imap_unordered`], in the order the calls finish.
///
/// ```
/// let pool = greenhub::pool::Pool::new(2);
/// let mut doubled: Vec<u32> = pool.imap_unordered(|x: u32| x * 2, 1..=3).collect();
/// doubled.sort();
/// assert_eq!(doubled, [2, 4, 6]);
/// ```
pub struct ImapUnordered<T: 'static, F, I> {
    pool: Pool,
    f: Rc<F>,
    items: I,
    /// Calls started and not yet yielded, in start order.
    running: KillOnDrop<T>,
}

impl<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: Iterator<Item = A>> ImapUnordered<T, F, I> {
    pub(super) fn new(pool: Pool, f: F, items: I) -> ImapUnordered<T, F, I> {
        ImapUnordered {
            pool,
            f: Rc::new(f),
            items,
            running: KillOnDrop(VecDeque::new()),
        }
    }

    /// Starts calls while the pool has room (at least one, so that a pool
    /// kept full by others still makes progress).
    fn fill(&mut self) {
        while self.running.0.is_empty() || !self.pool.is_full() {
            let Some(item) = self.items.next() else {
                return;
            };
            let f = self.f.clone();
            let h = self.pool.spawn(move || f(item));
            self.running.0.push_back(h);
        }
    }
}

impl<A: 'static, T: 'static, F: Fn(A) -> T + 'static, I: Iterator<Item = A>> Iterator
    for ImapUnordered<T, F, I>
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.fill();
        if self.running.0.is_empty() {
            return None;
        }
        let i = wait::wait_any(self.running.0.make_contiguous());
        let h = self
            .running
            .0
            .remove(i)
            .expect("greenhub: wait_any gives a valid index");
        match h.join() {
            Ok(v) => Some(v),
            Err(e) => {
                self.running.kill_now();
                reraise(e)
            }
        }
    }
}

impl<T: 'static, F, I> fmt::Debug for ImapUnordered<T, F, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("pool", &self.pool)
            .field("running", &self.running.0.len())
            .finish()
    }
}
