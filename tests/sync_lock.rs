//! `greenhub::sync::Mutex` and `RLock`.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::sync::{Mutex, RLock};
use greenhub::{sleep, spawn, yield_now};
use util::bounded;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_mutex_stays_exclusive_across_a_blocking_section() {
    bounded(|| {
        let m = Rc::new(Mutex::new(0));
        let inside = Rc::new(Cell::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (m, inside) = (m.clone(), inside.clone());
                spawn(move || {
                    for _ in 0..3 {
                        let mut g = m.lock();
                        inside.set(inside.get() + 1);
                        assert_eq!(inside.get(), 1, "two holders at once");
                        sleep(ms(1));
                        *g += 1;
                        inside.set(inside.get() - 1);
                    }
                })
            })
            .collect();
        greenhub::join_all(&hs);
        assert_eq!(*m.lock(), 12);
    });
}

#[test]
fn mutex_waiters_get_it_in_arrival_order() {
    bounded(|| {
        let m = Rc::new(Mutex::new(Vec::new()));
        let held = m.lock();
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let m = m.clone();
                let h = spawn(move || m.lock().push(i));
                yield_now();
                h
            })
            .collect();
        drop(held);
        greenhub::join_all(&hs);
        assert_eq!(*m.lock(), [0, 1, 2, 3]);
    });
}

#[test]
fn a_mutex_whose_owner_is_killed_is_released() {
    bounded(|| {
        let m = Rc::new(Mutex::new(0));
        let m2 = m.clone();
        let owner = spawn(move || {
            let mut g = m2.lock();
            *g = 1;
            sleep(ms(60_000));
        });
        yield_now();
        assert!(m.is_locked());
        let m3 = m.clone();
        let waiter = spawn(move || *m3.lock());
        yield_now();
        owner.kill();
        assert_eq!(waiter.join().unwrap(), 1, "the waiter got the lock");
        assert!(!m.is_locked());
    });
}

#[test]
fn a_mutex_waiter_killed_right_after_the_hand_off_passes_the_lock_on() {
    bounded(|| {
        let m = Rc::new(Mutex::new(()));
        let held = m.lock();
        let (m1, m2) = (m.clone(), m.clone());
        let doomed = spawn(move || drop(m1.lock()));
        let next = spawn(move || drop(m2.lock()));
        yield_now();
        drop(held);
        doomed.kill();
        next.join().unwrap();
        assert!(!m.is_locked());
    });
}

#[test]
fn lock_timeout_and_try_lock_do_not_wait() {
    bounded(|| {
        let m = Mutex::new(());
        let held = m.try_lock().unwrap();
        assert!(m.try_lock().is_none());
        let start = Instant::now();
        assert!(m.lock_timeout(ms(15)).is_err());
        assert!(start.elapsed() >= ms(15));
        drop(held);
        assert!(m.lock_timeout(ms(15)).is_ok());
    });
}

#[test]
fn an_rlock_is_re_entrant_for_its_holder() {
    bounded(|| {
        let lock = RLock::new(RefCell::new(0));
        let a = lock.lock();
        let b = lock.lock();
        let c = lock.try_lock().unwrap();
        *c.borrow_mut() += 1;
        drop((a, b));
        assert!(lock.is_locked(), "one guard is still held");
        drop(c);
        assert!(!lock.is_locked());
        assert_eq!(*lock.lock().borrow(), 1);
    });
}

#[test]
fn an_rlock_makes_other_green_threads_wait_until_fully_released() {
    bounded(|| {
        let lock = Rc::new(RLock::new(()));
        let outer = lock.lock();
        let inner = lock.lock();
        let l = lock.clone();
        let other = spawn(move || {
            assert!(l.try_lock().is_none());
            assert!(l.lock_timeout(ms(1)).is_err());
            drop(l.lock());
        });
        yield_now();
        drop(inner);
        sleep(ms(3));
        assert!(!other.is_finished(), "still held once");
        drop(outer);
        other.join().unwrap();
    });
}

#[test]
fn an_rlock_whose_owner_is_killed_mid_nesting_is_released() {
    bounded(|| {
        let lock = Rc::new(RLock::new(()));
        let l = lock.clone();
        let owner = spawn(move || {
            let _a = l.lock();
            let _b = l.lock();
            sleep(ms(60_000));
        });
        yield_now();
        assert!(lock.is_locked());
        owner.kill();
        assert!(!lock.is_locked());
        assert!(lock.try_lock().is_some());
    });
}

/// Item 15 of issue 10: an `RLockGuard` moved to another green thread and
/// dropped there released a lock that green thread did not hold. Now the
/// drop is refused with a clear panic and the lock stays with its holder.
#[test]
fn rlock_guard_dropped_by_another_green_thread_is_refused() {
    util::bounded(|| {
        use std::rc::Rc;
        let lock: &'static greenhub::sync::RLock<()> = Box::leak(Box::new(greenhub::sync::RLock::new(())));
        let guard = lock.lock();
        let slot = Rc::new(std::cell::Cell::new(Some(guard)));
        let s = slot.clone();
        let other = greenhub::spawn(move || {
            let g = s.take().unwrap();
            util::expect_panic(move || drop(g))
        });
        let msg = other.join().unwrap();
        assert!(msg.contains("only the holder can release an RLock"), "{msg}");
        assert!(lock.is_locked(), "a non-owner's drop released the lock");
        let probe = greenhub::spawn(move || lock.try_lock().is_some());
        assert!(!probe.join().unwrap());
    });
}
