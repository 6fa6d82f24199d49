//! A hub in a second OS thread, fed from the first: asyncio's
//! `new_event_loop` + `run_forever` in a thread and
//! `run_coroutine_threadsafe(...).result(timeout)`, with greenhub.
//!
//! The main thread (a plain OS thread, not a green thread) hands two
//! sleeping tasks, 0.6 s and 0.3 s, to the hub with `HubHandle::spawn` and
//! waits for both results with a timeout. They sleep concurrently on the
//! hub, so the total is about the longer one, 0.6 s, not 0.9 s.
//!
//! Run: `cargo run --example threadsafe`.

use std::time::{Duration, Instant};

fn nap(seconds: f64) -> String {
    greenhub::sleep(Duration::from_secs_f64(seconds));
    format!(
        "slept {seconds} s on {}",
        std::thread::current().name().unwrap_or("?")
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = greenhub::thread::spawn_hub("event-loop")?;
    let start = Instant::now();
    let mut slow = hub.spawn(|| nap(0.6))?;
    let mut fast = hub.spawn(|| nap(0.3))?;
    let timeout = Duration::from_secs(5);
    println!("{}", slow.join_timeout(timeout)?);
    println!("{}", fast.join_timeout(timeout)?);
    println!("total: {:.2} s", start.elapsed().as_secs_f64());
    hub.stop();
    Ok(())
}
