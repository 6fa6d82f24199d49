//! The blocking pool: results, panics, concurrency, kills.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhub::blocking;
use util::bounded;

#[test]
fn returns_the_closures_value() {
    bounded(|| assert_eq!(blocking::run(|| 2 + 2), 4));
}

#[test]
fn a_panic_reaches_the_caller_with_its_payload() {
    bounded(|| {
        let r = std::panic::catch_unwind(|| blocking::run(|| -> u8 { panic!("in the pool") }));
        let payload = r.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"in the pool"));
    });
}

#[test]
fn only_the_caller_waits_while_others_run() {
    bounded(|| {
        let ticks = greenhub::spawn(|| {
            let mut n = 0;
            for _ in 0..5 {
                greenhub::sleep(Duration::from_millis(5));
                n += 1;
            }
            n
        });
        blocking::run(|| std::thread::sleep(Duration::from_millis(100)));
        assert!(
            ticks.is_finished(),
            "the hub ran the ticker while the pool worked"
        );
        assert_eq!(ticks.join().unwrap(), 5);
    });
}

#[test]
fn many_green_threads_use_the_pool_at_once() {
    bounded(|| {
        let start = Instant::now();
        let hs: Vec<_> = (0..32u64)
            .map(|i| {
                greenhub::spawn(move || {
                    blocking::run(move || {
                        std::thread::sleep(Duration::from_millis(50));
                        i * 2
                    })
                })
            })
            .collect();
        let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..32).map(|i| i * 2).sum());
        assert!(
            start.elapsed() < Duration::from_millis(50 * 32 / 2),
            "ran concurrently"
        );
    });
}

#[test]
fn a_killed_caller_unwinds_and_the_job_still_finishes() {
    bounded(|| {
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let h = greenhub::spawn(move || {
            blocking::run(move || {
                std::thread::sleep(Duration::from_millis(50));
                f.fetch_add(1, Ordering::SeqCst);
            })
        });
        greenhub::sleep(Duration::from_millis(5));
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        // The hub is still usable, and the job ran to its end on its thread.
        assert_eq!(blocking::run(|| 1), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while finished.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            greenhub::sleep(Duration::from_millis(5));
        }
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn works_from_a_plain_os_thread() {
    let v = std::thread::spawn(|| blocking::run(|| "std thread"))
        .join()
        .unwrap();
    assert_eq!(v, "std thread");
}
