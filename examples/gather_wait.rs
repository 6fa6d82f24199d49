//! Waiting on several green threads at once, with three tasks that sleep
//! 1, 2 and 4 seconds:
//!
//! - `gather` returns all three results in input order after about 4 s,
//!   the longest sleep, not 7 s: the sleeps overlap;
//! - `wait` with a count of 1 (asyncio's `FIRST_COMPLETED`) returns after
//!   about 1 s with one task done and two pending;
//! - `as_completed` over those same tasks prints each as it finishes.
//!
//! Run: `cargo run --example gather_wait`

use std::time::{Duration, Instant};

use greenhub::wait::{as_completed, gather, wait};
use greenhub::{sleep, spawn, JoinHandle};

const TASKS: [(&str, u64); 3] = [("one", 1), ("two", 2), ("four", 4)];

/// Spawns the three tasks; each returns its name.
fn spawn_tasks() -> Vec<JoinHandle<&'static str>> {
    TASKS
        .iter()
        .map(|&(name, secs)| {
            spawn(move || {
                sleep(Duration::from_secs(secs));
                name
            })
        })
        .collect()
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn main() {
    let start = Instant::now();
    let results = gather(spawn_tasks());
    let names: Vec<&str> = results
        .into_iter()
        .map(|r| r.expect("the task ran to the end"))
        .collect();
    println!(
        "gather: {names:?} in {:.2} s (about 4 s, not 7: the sleeps overlapped)",
        secs(start)
    );

    let start = Instant::now();
    let handles = spawn_tasks();
    let (done, pending) = wait(&handles, None, Some(1));
    println!(
        "wait first: after {:.2} s, done {done:?}, pending {pending:?}",
        secs(start)
    );

    for (i, h) in as_completed(handles) {
        let name = h.join().expect("the task ran to the end");
        println!("as completed: task {i} ({name}) at {:.2} s", secs(start));
    }
}
