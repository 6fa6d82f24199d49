//! JoinHandle's gevent surface beyond join: link callbacks (`link`,
//! `link_value`, `link_error`), non-consuming looks at the outcome, and the
//! kill variants (`kill_nowait`, `kill_timeout`, `kill_with`).

mod util;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::{sleep, spawn, yield_now, JoinError};
use util::{bounded, flag, SetOnDrop};

const LONG: Duration = Duration::from_secs(60);

fn log() -> Rc<RefCell<Vec<String>>> {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn each_link_fires_once_with_the_outcome_in_link_order() {
    bounded(|| {
        let seen = log();
        let h = spawn(|| {
            sleep(Duration::from_millis(5));
            5u32
        });
        for tag in ["a", "b"] {
            let s = seen.clone();
            h.link(move |r| s.borrow_mut().push(format!("{tag}{}", r.unwrap())));
        }
        let s = seen.clone();
        h.link_value(move |v| s.borrow_mut().push(format!("value{v}")));
        let s = seen.clone();
        h.link_error(move |_| s.borrow_mut().push("error".into()));
        assert_eq!(
            h.join().unwrap(),
            5,
            "join still gets the value after the links looked"
        );
        for _ in 0..5 {
            yield_now();
        }
        assert_eq!(*seen.borrow(), ["a5", "b5", "value5"]);
    });
}

#[test]
fn a_link_on_a_finished_green_thread_fires_once() {
    bounded(|| {
        let seen = log();
        let h = spawn(|| 1u8);
        yield_now();
        assert!(h.is_finished());
        let s = seen.clone();
        h.link(move |r| s.borrow_mut().push(format!("late{}", r.unwrap())));
        assert!(
            seen.borrow().is_empty(),
            "callbacks run on the hub, not inside link"
        );
        for _ in 0..5 {
            yield_now();
        }
        assert_eq!(*seen.borrow(), ["late1"]);
        assert_eq!(h.join().unwrap(), 1);
    });
}

#[test]
fn link_error_sees_panics_and_kills_and_link_value_does_not() {
    bounded(|| {
        let seen = log();
        let bad = spawn(|| -> u8 { panic!("bad") });
        let bad_id = bad.id();
        let killed = spawn(|| sleep(LONG));
        let s = seen.clone();
        bad.link_error(move |e| s.borrow_mut().push(format!("bad:{e}")));
        let s = seen.clone();
        bad.link_value(move |_| s.borrow_mut().push("value".into()));
        let s = seen.clone();
        killed.link_error(move |e| s.borrow_mut().push(format!("killed:{}", e.is_killed())));
        yield_now();
        killed.kill();
        assert!(bad.join().is_err());
        assert!(killed.join().unwrap_err().is_killed());
        assert_eq!(
            *seen.borrow(),
            [
                format!("bad:green thread #{bad_id} panicked: bad"),
                "killed:true".into()
            ]
        );
    });
}

#[test]
fn a_link_must_not_block() {
    bounded(|| {
        let h = spawn(|| ());
        let blocked = Rc::new(RefCell::new(None));
        let b = blocked.clone();
        h.link(move |_| {
            let r = panic::catch_unwind(AssertUnwindSafe(|| sleep(Duration::from_millis(1))));
            *b.borrow_mut() = Some(r.is_err());
        });
        h.join().unwrap();
        assert_eq!(
            *blocked.borrow(),
            Some(true),
            "sleeping in a link panics, as in any hub callback"
        );
    });
}

#[test]
fn a_panicking_link_does_not_stop_the_others_or_the_join() {
    bounded(|| {
        let seen = log();
        let h = spawn(|| 2u8);
        h.link(|_| panic!("a failing link"));
        let s = seen.clone();
        h.link(move |_| s.borrow_mut().push("second".into()));
        assert_eq!(h.join().unwrap(), 2);
        assert_eq!(*seen.borrow(), ["second"]);
    });
}

#[test]
fn the_outcome_can_be_looked_at_many_times_until_joined() {
    bounded(|| {
        let h = spawn(|| String::from("v"));
        assert_eq!(h.with_outcome(|_| ()), None, "no outcome while it runs");
        assert_eq!(h.value(), None);
        yield_now();
        for _ in 0..3 {
            assert_eq!(h.value().as_deref(), Some("v"));
            assert_eq!(h.with_outcome(|r| r.unwrap().len()), Some(1));
            assert!(h.is_successful());
        }
        let bad = spawn(|| -> String { panic!("x") });
        yield_now();
        for _ in 0..2 {
            assert_eq!(
                bad.with_outcome(|r| r.unwrap_err().panic_message().map(str::to_owned)),
                Some(Some("x".into()))
            );
        }
        assert!(!bad.is_successful());
        assert_eq!(
            bad.join().unwrap_err().panic_message(),
            Some("x"),
            "a look does not take the payload"
        );
        assert_eq!(h.join().unwrap(), "v");
    });
}

#[test]
fn a_look_that_panics_puts_the_outcome_back() {
    bounded(|| {
        let h = spawn(|| 9u8);
        yield_now();
        let r = panic::catch_unwind(AssertUnwindSafe(|| h.with_outcome(|_| panic!("look"))));
        assert!(r.is_err());
        assert_eq!(h.join().unwrap(), 9);
    });
}

#[test]
fn kill_nowait_returns_before_the_target_cleans_up() {
    bounded(|| {
        let cleaned = flag();
        let c = cleaned.clone();
        let h = spawn(move || {
            let _guard = SetOnDrop(c);
            sleep(LONG);
        });
        yield_now();
        h.kill_nowait();
        assert!(!cleaned.get(), "kill_nowait returned before the target unwound");
        assert!(!h.is_finished());
        assert!(h.join().unwrap_err().is_killed());
        assert!(cleaned.get());
    });
}

#[test]
fn kill_timeout_gives_up_on_a_target_that_keeps_running() {
    bounded(|| {
        let h = spawn(|| {
            // Swallows the first kill, then sleeps on.
            let _ = panic::catch_unwind(|| sleep(LONG));
            sleep(LONG);
        });
        yield_now();
        let start = Instant::now();
        assert!(!h.kill_timeout(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(!h.is_finished());
        assert!(h.kill_timeout(Duration::from_secs(5)), "the second kill lands");
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[derive(Debug, PartialEq)]
struct Stop(u32);

#[test]
fn kill_with_surfaces_the_payload_in_join_error() {
    bounded(|| {
        let cleaned = flag();
        let c = cleaned.clone();
        let running = spawn(move || {
            let _guard = SetOnDrop(c);
            sleep(LONG);
        });
        yield_now();
        running.kill_with(Stop(1));
        assert!(cleaned.get(), "kill_with waits for the unwind, as kill does");
        let unstarted = spawn(|| unreachable!("killed before it ran"));
        unstarted.kill_with(Stop(2));
        for (h, n) in [(running, 1), (unstarted, 2)] {
            match h.join() {
                Err(JoinError::Panicked(p)) => assert_eq!(p.payload().downcast_ref::<Stop>(), Some(&Stop(n))),
                other => panic!("expected the payload, got {other:?}"),
            }
        }
    });
}

#[test]
fn kill_all_nowait_and_timeout() {
    bounded(|| {
        let hs: Vec<_> = (0..3).map(|_| spawn(|| sleep(LONG))).collect();
        yield_now();
        greenhub::wait::kill_all_nowait(&hs);
        assert!(hs.iter().all(|h| !h.is_finished()));
        assert!(greenhub::wait::kill_all_timeout(&hs, Duration::from_secs(5)));
        assert!(hs.into_iter().all(|h| h.join().unwrap_err().is_killed()));
    });
}
