//! Waiting on several: wait_any, wait, as_completed, gather, try_gather,
//! kill_all, over JoinHandles and a user-defined Waitable.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::hub::Waker;
use greenhub::wait::{
    as_completed, as_completed_timeout, gather, kill_all, try_gather, wait, wait_any, wait_any_timeout,
    Waitable,
};
use greenhub::{call_later, sleep, spawn, with_timeout, yield_now, JoinHandle};
use util::{bounded, expect_panic, flag, SetOnDrop};

const LONG: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A green thread sleeping `n` ms, returning `n`.
fn sleeper(n: u64) -> JoinHandle<u64> {
    spawn(move || {
        sleep(ms(n));
        n
    })
}

/// A minimal user-defined Waitable: a flag set once.
#[derive(Default)]
struct Flag {
    set: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Flag {
    fn set(&self) {
        self.set.set(true);
        for w in self.waiters.take() {
            w.wake();
        }
    }
}

impl Waitable for Flag {
    fn is_ready(&self) -> bool {
        self.set.get()
    }
    fn register(&self, waker: &Waker) {
        if self.set.get() {
            waker.wake();
        } else {
            self.waiters.borrow_mut().push(waker.clone());
        }
    }
}

// ---- wait_any ----

#[test]
fn wait_any_returns_the_first_to_finish() {
    bounded(|| {
        let hs = vec![sleeper(60_000), sleeper(30), sleeper(5)];
        assert_eq!(wait_any(&hs), 2);
        kill_all(&hs);
    });
}

#[test]
fn wait_any_returns_at_once_if_one_is_ready() {
    bounded(|| {
        let done = spawn(|| 0u64);
        yield_now();
        let slow = sleeper(60_000);
        let t = Instant::now();
        assert_eq!(wait_any(&[&slow, &done]), 1);
        assert!(t.elapsed() < ms(50));
        slow.kill();
    });
}

#[test]
fn wait_any_on_nothing_panics() {
    bounded(|| {
        let none: [JoinHandle<()>; 0] = [];
        let msg = expect_panic(|| wait_any(&none));
        assert!(msg.contains("wait forever"), "{msg}");
    });
}

#[test]
fn wait_any_timeout_gives_none_after_the_timeout() {
    bounded(|| {
        let h = sleeper(60_000);
        let t = Instant::now();
        assert_eq!(wait_any_timeout(&[&h], ms(20)), None);
        assert!(t.elapsed() >= ms(20));
        h.kill();
    });
}

#[test]
fn wait_any_works_on_a_user_waitable_and_mixed_items() {
    bounded(|| {
        let f = Rc::new(Flag::default());
        let f2 = f.clone();
        call_later(ms(10), move || f2.set());
        let slow = sleeper(60_000);
        let items: [&dyn Waitable; 2] = [&slow, &*f];
        assert_eq!(wait_any(&items), 1);
        slow.kill();
        assert_eq!(wait_any(&items), 0);
    });
}

#[test]
fn wait_any_mixes_join_handles_events_and_results() {
    bounded(|| {
        let event = Rc::new(greenhub::sync::Event::new());
        let result = greenhub::sync::AsyncResult::<u8>::new();
        let slow = sleeper(60_000);
        let (e, r) = (event.clone(), result.clone());
        call_later(ms(5), move || e.set());
        call_later(ms(15), move || {
            r.set(1);
        });
        let items: [&dyn Waitable; 3] = [&slow, &*event, &result];
        assert_eq!(wait_any(&items), 1);
        let (done, pending) = wait(&items, Some(ms(500)), Some(2));
        assert_eq!((done, pending), (vec![1, 2], vec![0]));
        slow.kill();
    });
}

// ---- wait ----

#[test]
fn wait_first_completed_returns_done_and_pending() {
    bounded(|| {
        let hs = vec![sleeper(60_000), sleeper(10), sleeper(60_000)];
        let (done, pending) = wait(&hs, None, Some(1));
        assert_eq!(done, [1]);
        assert_eq!(pending, [0, 2]);
        kill_all(&hs);
    });
}

#[test]
fn wait_all_waits_for_every_one() {
    bounded(|| {
        let hs = vec![sleeper(100), sleeper(50), sleeper(80)];
        let t = Instant::now();
        let (done, pending) = wait(&hs, None, None);
        assert_eq!(done, [0, 1, 2]);
        assert!(pending.is_empty());
        assert!(t.elapsed() >= ms(100));
        assert!(
            t.elapsed() < ms(200),
            "in parallel, not one after another (230 ms)"
        );
    });
}

#[test]
fn wait_with_count_returns_once_that_many_are_done() {
    bounded(|| {
        let hs = vec![sleeper(10), sleeper(60_000), sleeper(20), sleeper(60_000)];
        let (done, pending) = wait(&hs, None, Some(2));
        assert_eq!(done, [0, 2]);
        assert_eq!(pending, [1, 3]);
        kill_all(&hs);
    });
}

#[test]
fn wait_times_out_with_what_is_done() {
    bounded(|| {
        let hs = vec![sleeper(60_000), sleeper(5)];
        let t = Instant::now();
        let (done, pending) = wait(&hs, Some(ms(30)), None);
        assert!(t.elapsed() >= ms(30));
        assert_eq!((done, pending), (vec![1], vec![0]));
        let (done, pending) = wait(&hs, Some(ms(5)), Some(1));
        assert_eq!((done, pending), (vec![1], vec![0]), "already enough: no wait");
        kill_all(&hs);
    });
}

#[test]
fn wait_for_zero_or_on_nothing_returns_at_once() {
    bounded(|| {
        let h = sleeper(60_000);
        assert_eq!(wait(&[&h], None, Some(0)), (vec![], vec![0]));
        let none: [JoinHandle<()>; 0] = [];
        assert_eq!(wait(&none, None, None), (vec![], vec![]));
        h.kill();
    });
}

// ---- as_completed ----

#[test]
fn as_completed_yields_in_finish_order() {
    bounded(|| {
        let hs: Vec<_> = [40, 10, 30, 20].into_iter().map(sleeper).collect();
        let got: Vec<(usize, u64)> = as_completed(hs).map(|(i, h)| (i, h.join().unwrap())).collect();
        assert_eq!(got, [(1, 10), (3, 20), (2, 30), (0, 40)]);
    });
}

#[test]
fn as_completed_by_reference_leaves_the_items() {
    bounded(|| {
        // 150 ms against 10: far enough apart for a loaded machine.
        let hs: Vec<_> = [150, 10].into_iter().map(sleeper).collect();
        let order: Vec<usize> = as_completed(&hs).map(|(i, _)| i).collect();
        assert_eq!(order, [1, 0]);
        assert_eq!(
            gather(hs).into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [150, 10]
        );
    });
}

#[test]
fn as_completed_timeout_stops_waiting_and_hands_back_the_rest() {
    bounded(|| {
        let hs = vec![sleeper(60_000), sleeper(5), sleeper(60_000)];
        let t = Instant::now();
        let mut it = as_completed_timeout(hs, ms(30));
        assert_eq!(it.next().map(|(i, _)| i), Some(1));
        assert!(it.next().is_none());
        assert!(it.timed_out());
        assert!(t.elapsed() >= ms(30));
        assert_eq!(it.remaining(), 2);
        let rest: Vec<(usize, JoinHandle<u64>)> = it.drain_remaining();
        assert_eq!(rest.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 2]);
        kill_all(rest.iter().map(|(_, h)| h));
    });
}

#[test]
fn as_completed_over_ten_thousand_in_random_order() {
    bounded(|| {
        let n = 10_000u64;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let hs: Vec<_> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let d = Duration::from_micros(x % 200_000);
                spawn(move || sleep(d))
            })
            .collect();
        let mut seen = 0u64;
        let mut it = as_completed(&hs);
        for (i, h) in &mut it {
            assert!(h.is_finished(), "item {i} yielded unfinished");
            seen += 1;
        }
        assert_eq!(seen, n);
    });
}

// ---- gather / try_gather / kill_all ----

#[test]
fn gather_returns_results_in_input_order_with_errors_as_values() {
    bounded(|| {
        let hs = vec![
            sleeper(20),
            spawn(|| -> u64 { panic!("broken") }),
            sleeper(60_000),
            sleeper(5),
        ];
        hs[2].kill();
        let r = gather(hs);
        assert_eq!(r[0].as_ref().ok(), Some(&20));
        assert_eq!(r[1].as_ref().unwrap_err().panic_message(), Some("broken"));
        assert!(r[2].as_ref().unwrap_err().is_killed());
        assert_eq!(r[3].as_ref().ok(), Some(&5));
    });
}

#[test]
fn gather_takes_as_long_as_the_slowest() {
    bounded(|| {
        let t = Instant::now();
        let r = gather([sleeper(100), sleeper(100), sleeper(100)]);
        assert!(r.iter().all(Result::is_ok));
        assert!(t.elapsed() < ms(250), "took {:?}, not about 100 ms", t.elapsed());
    });
}

/// A green thread that sleeps for good, returning a `T` if it ever woke,
/// and the flag its drop of a guard sets (when it is killed).
fn long_sleeper<T: Default + 'static>() -> (JoinHandle<T>, Rc<Cell<bool>>) {
    let dropped = flag();
    let d = dropped.clone();
    let h = spawn(move || {
        let _g = SetOnDrop(d);
        sleep(LONG);
        T::default()
    });
    (h, dropped)
}

#[test]
fn gather_cut_short_by_a_timeout_kills_the_rest() {
    bounded(|| {
        let (slow, dropped) = long_sleeper::<()>();
        yield_now();
        assert!(with_timeout(ms(10), || gather([slow])).is_err());
        sleep(ms(5));
        assert!(dropped.get(), "the gathered green thread was killed");
    });
}

#[test]
fn try_gather_returns_every_value_in_order() {
    bounded(|| {
        assert_eq!(
            try_gather([sleeper(20), sleeper(5), sleeper(10)]).unwrap(),
            [20, 5, 10]
        );
    });
}

#[test]
fn try_gather_fails_fast_and_kills_the_rest() {
    bounded(|| {
        let (slow, dropped) = long_sleeper::<u64>();
        let bad = spawn(|| {
            sleep(ms(5));
            panic!("first failure")
        });
        let t = Instant::now();
        let err = try_gather([slow, sleeper(60_000), bad]).unwrap_err();
        assert_eq!(err.panic_message(), Some("first failure"));
        assert!(dropped.get(), "the others were killed before it returned");
        assert!(t.elapsed() < ms(1000));
    });
}

#[test]
fn try_gather_cut_short_by_a_timeout_kills_the_rest() {
    bounded(|| {
        let (slow, dropped) = long_sleeper::<()>();
        assert!(with_timeout(ms(10), || try_gather([slow])).is_err());
        sleep(ms(5));
        assert!(dropped.get());
    });
}

#[test]
fn kill_all_kills_each_and_skips_finished_ones() {
    bounded(|| {
        let done = spawn(|| 1u64);
        yield_now();
        let hs = vec![done, sleeper(60_000), sleeper(60_000)];
        kill_all(&hs);
        assert!(hs.iter().all(JoinHandle::is_finished));
        let r = gather(hs);
        assert_eq!(r[0].as_ref().ok(), Some(&1));
        assert!(r[1].as_ref().unwrap_err().is_killed());
        assert!(r[2].as_ref().unwrap_err().is_killed());
    });
}
