//! Ctrl+C as a graceful stop: asyncio's "cancel every task on
//! KeyboardInterrupt, then close the loop", with greenhub.
//!
//! Three green threads do periodic work, each holding a guard whose `Drop`
//! is its cleanup. The main green thread waits for SIGINT with
//! `greenhub::signal::wait`; when it comes, it kills every task (each
//! unwinds from where it was parked, running its cleanup), waits for them,
//! and exits with status 0.
//!
//! Run: `cargo run --example graceful_shutdown`, then press Ctrl+C (or
//! `kill -INT <pid>`, the pid is printed).

use std::time::Duration;

use greenhub::signal::{self, SIGINT};

/// The task's cleanup, run however the task ends.
struct Cleanup(usize);

impl Drop for Cleanup {
    fn drop(&mut self) {
        println!("task {} cleaned up", self.0);
    }
}

fn task(n: usize) {
    let _cleanup = Cleanup(n);
    for round in 0.. {
        if round % 10 == 0 {
            println!("task {n}: round {round}");
        }
        greenhub::sleep(Duration::from_millis(50 * (n as u64 + 1)));
    }
}

fn main() -> std::io::Result<()> {
    let interrupted = signal::Signals::new(SIGINT)?;
    let tasks: Vec<_> = (0..3).map(|n| greenhub::spawn(move || task(n))).collect();
    println!("ready: pid {}; press Ctrl+C to stop", std::process::id());
    interrupted.recv();
    println!("got SIGINT: cancelling {} tasks", tasks.len());
    for t in &tasks {
        t.kill();
    }
    for t in tasks {
        assert!(t.join().is_err_and(|e| e.is_killed()), "every task was killed");
    }
    println!("all tasks cleaned up; bye");
    Ok(())
}
