//! `greenhub::sync::AsyncResult`.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::hub::park;
use greenhub::sync::{AsyncError, AsyncResult, ResultState};
use greenhub::wait::Waitable;
use greenhub::{spawn, yield_now};
use util::bounded;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn get_parks_until_set_and_every_getter_gets_the_value() {
    bounded(|| {
        let r = AsyncResult::new();
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let r = r.clone();
                spawn(move || r.get().unwrap())
            })
            .collect();
        yield_now();
        assert!(hs.iter().all(|h| !h.is_finished()));
        assert!(r.set(String::from("v")));
        for h in hs {
            assert_eq!(h.join().unwrap(), "v");
        }
    });
}

#[test]
fn set_error_makes_get_fail_with_that_error() {
    bounded(|| {
        let r = AsyncResult::<u8>::new();
        let r2 = r.clone();
        let h = spawn(move || r2.get());
        yield_now();
        r.set_error(std::io::Error::other("disk on fire"));
        match h.join().unwrap() {
            Err(AsyncError::Failed(e)) => assert_eq!(e.to_string(), "disk on fire"),
            other => panic!("expected Failed, got {other:?}"),
        }
        assert_eq!(r.state(), ResultState::Done);
    });
}

#[test]
fn cancel_wakes_getters_with_cancelled() {
    bounded(|| {
        let r = AsyncResult::<u8>::new();
        let r2 = r.clone();
        let h = spawn(move || r2.get());
        yield_now();
        assert!(r.cancel());
        assert!(matches!(h.join().unwrap(), Err(AsyncError::Cancelled)));
        assert!(r.is_cancelled());
        assert!(!r.set(1), "a cancelled result cannot be set");
        assert!(!r.cancel(), "nor cancelled twice");
    });
}

#[test]
fn a_result_is_set_once() {
    bounded(|| {
        let r = AsyncResult::new();
        assert!(r.set(1));
        assert!(!r.set(2));
        assert!(!r.set_error("late"));
        assert!(!r.cancel());
        assert_eq!(r.get().unwrap(), 1);
    });
}

#[test]
fn get_timeout_times_out_while_pending() {
    bounded(|| {
        let r = AsyncResult::<u8>::new();
        let start = Instant::now();
        assert!(matches!(r.get_timeout(ms(15)), Err(AsyncError::TimedOut)));
        assert!(start.elapsed() >= ms(15));
        assert_eq!(r.state(), ResultState::Pending);
    });
}

#[test]
fn try_get_does_not_wait() {
    bounded(|| {
        let r = AsyncResult::new();
        assert!(matches!(r.try_get(), Err(AsyncError::NotReady)));
        r.set(4);
        assert_eq!(r.try_get().unwrap(), 4);
    });
}

#[test]
fn done_callbacks_run_on_the_hub_once_in_order() {
    bounded(|| {
        let r = AsyncResult::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        for tag in ["a", "b"] {
            let log = log.clone();
            r.add_done_callback(move |r| log.borrow_mut().push((tag, r.try_get().unwrap())));
        }
        r.set(7);
        assert!(log.borrow().is_empty(), "callbacks run later, on the hub");
        yield_now();
        assert_eq!(*log.borrow(), [("a", 7), ("b", 7)]);
        yield_now();
        assert_eq!(log.borrow().len(), 2, "each runs once");
    });
}

#[test]
fn a_callback_added_when_done_is_scheduled_at_once() {
    bounded(|| {
        let r = AsyncResult::<u8>::new();
        r.cancel();
        let seen = Rc::new(RefCell::new(None));
        let s = seen.clone();
        r.add_done_callback(move |r| *s.borrow_mut() = Some(r.state()));
        yield_now();
        assert_eq!(*seen.borrow(), Some(ResultState::Cancelled));
    });
}

#[test]
fn waitable_registration_is_woken_by_completion() {
    bounded(|| {
        let r = AsyncResult::new();
        let r2 = r.clone();
        greenhub::call_later(ms(1), move || {
            r2.set(());
        });
        assert!(!Waitable::is_ready(&r));
        park(None, |w| r.register(w));
        assert!(Waitable::is_ready(&r));
    });
}

#[test]
fn a_killed_getter_leaves_the_result_working() {
    bounded(|| {
        let r = AsyncResult::new();
        let (r1, r2) = (r.clone(), r.clone());
        let doomed = spawn(move || r1.get());
        let survivor = spawn(move || r2.get());
        yield_now();
        doomed.kill();
        r.set(5);
        assert_eq!(survivor.join().unwrap().unwrap(), 5);
        assert!(doomed.join().unwrap_err().is_killed());
    });
}
