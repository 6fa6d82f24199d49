//! How many threads the blocking pool runs: never more than its bound (in a
//! child process, because the bound is process-wide), and enough for a
//! burst.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use greenhub::blocking;
use util::{is_child, run_child};

const BOUND: usize = 3;

#[test]
fn the_pool_bound_is_respected() {
    if is_child("pool-bound") {
        blocking::set_max_threads(BOUND);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..4 * BOUND)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                greenhub::spawn(move || {
                    blocking::run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            BOUND,
            "ran up to the bound, never past it"
        );
        return;
    }
    let out = run_child(
        "the_pool_bound_is_respected",
        "pool-bound",
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn a_burst_after_the_pool_went_idle_runs_concurrently() {
    util::bounded(|| {
        blocking::run(|| ()); // the pool now has an idle thread
        greenhub::sleep(Duration::from_millis(20));
        let start = std::time::Instant::now();
        let callers: Vec<_> = (0..8)
            .map(|_| greenhub::spawn(|| blocking::run(|| std::thread::sleep(Duration::from_millis(50)))))
            .collect();
        greenhub::join_all(&callers);
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(200),
            "8 jobs of 50 ms took {took:?}: queued behind one thread"
        );
    });
}
