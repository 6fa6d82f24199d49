//! The blocking monitor and run info at work.
//!
//! A ticker green thread means to tick every 20 ms; two misbehaving green
//! threads stop the whole hub: one computes for 300 ms without yielding,
//! one calls `std::thread::sleep`. The monitor (started here with the API;
//! `GREENHUB_MONITOR=1` does it without code) reports each stall on stderr
//! while it lasts, naming the green thread and where it was spawned. Then
//! `run_info()` shows what every green thread is doing.
//!
//! Run: `cargo run --example debug_blocking`

use std::time::{Duration, Instant};

use greenhub::debug::{self, monitor};
use greenhub::Builder;

fn main() {
    monitor::start(monitor::Config::new().max_blocking_time(Duration::from_millis(100)));

    let start = Instant::now();
    let ticker = Builder::new()
        .name("ticker")
        .spawn(move || {
            let mut worst = Duration::ZERO;
            let mut last = Instant::now();
            while start.elapsed() < Duration::from_millis(900) {
                greenhub::sleep(Duration::from_millis(20));
                worst = worst.max(last.elapsed());
                last = Instant::now();
            }
            worst
        })
        .unwrap();

    greenhub::sleep(Duration::from_millis(100));
    let busy = Builder::new()
        .name("busy")
        .spawn(|| {
            // Computes for 300 ms without yielding: the hub cannot run anything else.
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_millis(300) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            x
        })
        .unwrap();
    busy.join().unwrap();

    let blocker = Builder::new()
        .name("blocker")
        // Blocks the OS thread: greenhub::sleep would have let the ticker run.
        .spawn(|| std::thread::sleep(Duration::from_millis(300)))
        .unwrap();
    blocker.join().unwrap();

    // What is everyone doing now? (The ticker is parked in its sleep.)
    let waiting = Builder::new()
        .name("waiting")
        .spawn(|| greenhub::sleep(Duration::from_secs(10)))
        .unwrap();
    greenhub::yield_now();
    println!("{}", debug::run_info());
    waiting.kill();

    let worst = ticker.join().unwrap();
    println!(
        "the ticker's longest gap between ticks: {} ms (it asked for 20)",
        worst.as_millis()
    );
}
