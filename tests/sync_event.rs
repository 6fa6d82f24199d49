//! `greenhub::sync::Event`.

mod util;

use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::hub::park;
use greenhub::sync::Event;
use greenhub::wait::Waitable;
use greenhub::{spawn, yield_now};
use util::bounded;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn set_wakes_every_waiter() {
    bounded(|| {
        let e = Rc::new(Event::new());
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let e = e.clone();
                spawn(move || {
                    e.wait();
                    i
                })
            })
            .collect();
        yield_now();
        assert!(hs.iter().all(|h| !h.is_finished()), "waiters park until set");
        e.set();
        let got: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(got, [0, 1, 2]);
    });
}

#[test]
fn wait_returns_at_once_while_set_and_parks_after_clear() {
    bounded(|| {
        let e = Event::new();
        e.set();
        e.wait();
        assert!(e.wait_timeout(ms(0)));
        e.clear();
        assert!(!e.is_set());
        assert!(!e.wait_timeout(ms(2)));
    });
}

#[test]
fn wait_timeout_gives_up_after_the_timeout() {
    bounded(|| {
        let e = Event::new();
        let start = Instant::now();
        assert!(!e.wait_timeout(ms(20)));
        assert!(start.elapsed() >= ms(20));
    });
}

#[test]
fn wait_timeout_returns_true_when_set_in_time() {
    bounded(|| {
        let e = Rc::new(Event::new());
        let e2 = e.clone();
        greenhub::call_later(ms(2), move || e2.set());
        assert!(e.wait_timeout(ms(5_000)));
    });
}

#[test]
fn a_waiter_woken_by_set_returns_true_even_if_cleared_before_it_runs() {
    bounded(|| {
        let e = Rc::new(Event::new());
        let e2 = e.clone();
        let h = spawn(move || e2.wait_timeout(ms(5_000)));
        yield_now();
        e.set();
        e.clear();
        assert!(h.join().unwrap());
    });
}

/// Two green threads wait; the first is killed before or right after
/// `set`; the other must still return.
fn kill_one_of_two_waiters(kill_after_set: bool) {
    let e = Rc::new(Event::new());
    let (e1, e2) = (e.clone(), e.clone());
    let doomed = spawn(move || e1.wait());
    let survivor = spawn(move || e2.wait());
    yield_now();
    if kill_after_set {
        e.set();
        doomed.kill(); // woken but not yet run
    } else {
        doomed.kill();
        e.set();
    }
    survivor.join().unwrap();
    assert!(doomed.join().unwrap_err().is_killed());
}

#[test]
fn a_killed_waiter_leaves_the_event_working() {
    bounded(|| kill_one_of_two_waiters(false));
}

#[test]
fn a_waiter_killed_right_after_set_does_not_disturb_the_others() {
    bounded(|| kill_one_of_two_waiters(true));
}

#[test]
fn waitable_registration_is_woken_by_set() {
    bounded(|| {
        let e = Rc::new(Event::new());
        assert!(!e.is_ready());
        let e2 = e.clone();
        greenhub::call_later(ms(1), move || e2.set());
        park(None, |w| e.register(w));
        assert!(e.is_ready());
        // Already set: registering wakes at once.
        park(None, |w| e.register(w));
    });
}

#[test]
fn many_timed_out_waits_do_not_leave_waiters_behind() {
    bounded(|| {
        let e = Event::new();
        for _ in 0..200 {
            assert!(!e.wait_timeout(Duration::ZERO));
        }
        assert!(format!("{e:?}").contains("waiters: 0"), "{e:?}");
    });
}
