//! `greenhub::sync::Semaphore` and `BoundedSemaphore`.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::sync::{BoundedSemaphore, ReleaseError, Semaphore};
use greenhub::{sleep, spawn, yield_now, JoinHandle};
use util::bounded;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A semaphore and the green threads acquiring it: each records its tag
/// once it has a permit, and keeps the permit while `hold` is set.
struct Court {
    sem: Rc<Semaphore>,
    order: Rc<RefCell<Vec<u32>>>,
    hold: Rc<Cell<bool>>,
}

impl Court {
    fn new(permits: usize) -> Court {
        Court {
            sem: Rc::new(Semaphore::new(permits)),
            order: Rc::new(RefCell::new(Vec::new())),
            hold: Rc::new(Cell::new(false)),
        }
    }

    /// Spawns an acquirer tagged `tag` and lets it run until it parks.
    fn acquirer(&self, tag: u32) -> JoinHandle<()> {
        let (sem, order, hold) = (self.sem.clone(), self.order.clone(), self.hold.clone());
        let h = spawn(move || {
            let _permit = sem.acquire();
            order.borrow_mut().push(tag);
            while hold.get() {
                sleep(ms(1));
            }
        });
        yield_now();
        h
    }

    fn order(&self) -> Vec<u32> {
        self.order.borrow().clone()
    }
}

#[test]
fn permits_are_counted() {
    bounded(|| {
        let sem = Semaphore::new(2);
        let a = sem.acquire();
        let b = sem.try_acquire().unwrap();
        assert_eq!(sem.available(), 0);
        assert!(sem.try_acquire().is_none());
        drop(a);
        assert_eq!(sem.available(), 1);
        drop(b);
        assert_eq!(sem.available(), 2);
    });
}

#[test]
fn acquirers_are_served_in_arrival_order() {
    bounded(|| {
        let court = Court::new(1);
        let held = court.sem.acquire();
        let hs: Vec<_> = (0..4).map(|i| court.acquirer(i)).collect();
        drop(held);
        greenhub::join_all(&hs);
        assert_eq!(court.order(), [0, 1, 2, 3]);
        assert_eq!(court.sem.available(), 1);
    });
}

#[test]
fn a_released_permit_is_not_taken_by_a_newcomer() {
    bounded(|| {
        let court = Court::new(1);
        let held = court.sem.acquire();
        let waiter = court.acquirer(0);
        drop(held);
        assert!(
            court.sem.try_acquire().is_none(),
            "the permit went to the parked waiter"
        );
        waiter.join().unwrap();
        assert!(court.sem.try_acquire().is_some());
    });
}

#[test]
fn acquire_timeout_gives_up_after_the_timeout() {
    bounded(|| {
        let sem = Semaphore::new(0);
        let start = Instant::now();
        assert_eq!(sem.acquire_timeout(ms(15)).unwrap_err(), greenhub::Elapsed);
        assert!(start.elapsed() >= ms(15));
        sem.release();
        assert!(sem.acquire_timeout(ms(15)).is_ok());
    });
}

#[test]
fn an_acquirer_killed_while_parked_leaves_the_semaphore_consistent() {
    bounded(|| {
        let court = Court::new(1);
        let held = court.sem.acquire();
        let doomed = court.acquirer(0);
        let next = court.acquirer(1);
        doomed.kill();
        drop(held);
        next.join().unwrap();
        assert_eq!(court.order(), [1]);
        assert_eq!(court.sem.available(), 1, "no permit lost");
    });
}

#[test]
fn an_acquirer_killed_right_after_the_hand_off_passes_the_permit_on() {
    bounded(|| {
        let court = Court::new(1);
        let held = court.sem.acquire();
        let doomed = court.acquirer(0);
        let next = court.acquirer(1);
        drop(held); // handed to `doomed`, which has not run yet
        assert_eq!(court.sem.available(), 0, "the permit is in flight");
        doomed.kill();
        next.join().unwrap();
        assert_eq!(court.order(), [1]);
        assert_eq!(court.sem.available(), 1, "no permit lost");
    });
}

#[test]
fn an_acquirer_killed_after_the_hand_off_with_nobody_waiting_returns_the_permit() {
    bounded(|| {
        let court = Court::new(1);
        let held = court.sem.acquire();
        let doomed = court.acquirer(0);
        drop(held);
        doomed.kill();
        assert_eq!(court.sem.available(), 1);
    });
}

#[test]
fn a_holder_killed_returns_its_permit() {
    bounded(|| {
        let court = Court::new(1);
        court.hold.set(true);
        let holder = court.acquirer(0);
        assert_eq!(court.sem.available(), 0);
        holder.kill();
        assert_eq!(court.sem.available(), 1);
    });
}

#[test]
fn forget_and_release_move_permits_by_hand() {
    bounded(|| {
        let sem = Semaphore::new(1);
        sem.acquire().forget();
        assert_eq!(sem.available(), 0);
        sem.release();
        sem.release(); // unbounded: may exceed the initial count
        assert_eq!(sem.available(), 2);
    });
}

#[test]
fn a_bounded_semaphore_refuses_a_release_beyond_its_initial_count() {
    bounded(|| {
        let sem = BoundedSemaphore::new(2);
        assert_eq!(sem.release(), Err(ReleaseError));
        sem.acquire().forget();
        assert_eq!(sem.release(), Ok(()));
        assert_eq!(sem.release(), Err(ReleaseError));
        assert_eq!(sem.available(), 2);
    });
}

#[test]
fn the_semaphore_inside_a_bounded_one_panics_on_a_release_beyond_the_bound() {
    bounded(|| {
        let sem = BoundedSemaphore::new(1);
        let msg = util::expect_panic(|| Semaphore::release(&sem));
        assert!(msg.contains("released more times"), "{msg}");
        assert_eq!(sem.available(), 1);
    });
}

#[test]
fn a_bounded_semaphore_hands_permits_to_waiters() {
    bounded(|| {
        let sem = Rc::new(BoundedSemaphore::new(1));
        let held = sem.acquire();
        let s = sem.clone();
        let waiter = spawn(move || s.acquire_timeout(ms(5_000)).is_ok());
        yield_now();
        assert!(sem.try_acquire().is_none());
        assert!(sem.acquire_timeout(ms(1)).is_err());
        drop(held);
        assert!(waiter.join().unwrap());
        assert_eq!(sem.available(), 1);
    });
}
