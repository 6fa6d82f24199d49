//! Crossing OS threads, per operation:
//!
//! - `remote spawn+join (OS thread)`: a plain OS thread runs
//!   `HubHandle::spawn(|| x).join()` against a hub on another OS thread
//!   (`spawn_hub`); the round trip in µs. Target: median ≤ 10 µs.
//! - `blocking::run(|| ()) (green)`: a green thread hands an empty closure
//!   to the blocking pool and parks until it is back; µs. Target ≤ 10 µs.
//! - `call_soon submit (1 thread)`: one OS thread submits closures to a
//!   hub with `HubHandle::call_soon`; millions per second submitted.
//! - `call_soon run (1 thread)`: the rate at which the hub ran them, from
//!   the first submission to the hub finishing the last. Target ≥ 2 M/s
//!   for both (shown as ns per call in the table: ≤ 500 ns).
//!
//! Latencies are timed one operation at a time; each round reports its
//! median, and the table shows the median of the rounds with min and max.
//!
//! Run: `cargo bench --bench remote` (only matching cases:
//! `cargo bench --bench remote -- call_soon`). Without `--bench` (as under
//! `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{summarize, Mode, Table};
use greenhub::thread::{spawn_hub, HubHandle};

/// Median of `n` one-at-a-time timings of `op`, in µs.
fn median_us(n: usize, mut op: impl FnMut()) -> f64 {
    let samples: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            op();
            t.elapsed().as_nanos() as f64 / 1000.0
        })
        .collect();
    summarize(&samples).median
}

fn remote_round_trip(hub: &HubHandle, n: usize) -> f64 {
    median_us(n, || {
        let v = hub.spawn(|| black_box(7u64)).unwrap().join().unwrap();
        black_box(v);
    })
}

fn blocking_round_trip(n: usize) -> f64 {
    greenhub::spawn(move || median_us(n, || greenhub::blocking::run(|| black_box(()))))
        .join()
        .expect("the measuring green thread")
}

/// Submits `n` counting closures from this OS thread; returns the submit
/// rate and the rate the hub ran them, in calls per second.
fn call_soon_rates(hub: &HubHandle, n: u64) -> (f64, f64) {
    let ran = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let ran = ran.clone();
        hub.call_soon(move || {
            ran.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    }
    let submitted = start.elapsed();
    // Spawned after every call, so it runs after them all: its time is when
    // the hub had run the last one.
    let finished = hub.spawn(Instant::now).unwrap().join().unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), n, "every call ran once");
    let ran_for = finished.duration_since(start);
    (
        n as f64 / submitted.as_secs_f64(),
        n as f64 / ran_for.as_secs_f64(),
    )
}

fn main() {
    let mode = Mode::from_args();
    let rounds = mode.rounds(9);
    let trips = mode.pick(20_000, 200);
    let calls: u64 = mode.pick(2_000_000, 10_000);
    let hub = spawn_hub("bench-hub").expect("start the hub thread");
    let mut table = Table::new();

    let name = "remote spawn+join (OS thread)";
    if mode.wants(name) {
        common::watch(name, Duration::from_secs(120));
        remote_round_trip(&hub, trips / 10);
        let samples: Vec<f64> = (0..rounds).map(|_| remote_round_trip(&hub, trips)).collect();
        common::unwatch();
        table.add(name, "µs/op", &samples, Some(10.0));
    }

    let name = "blocking::run(|| ()) (green)";
    if mode.wants(name) {
        common::watch(name, Duration::from_secs(120));
        blocking_round_trip(trips / 10);
        let samples: Vec<f64> = (0..rounds).map(|_| blocking_round_trip(trips)).collect();
        common::unwatch();
        table.add(name, "µs/op", &samples, Some(10.0));
    }

    if mode.wants("call_soon") {
        common::watch("call_soon", Duration::from_secs(120));
        call_soon_rates(&hub, calls / 10);
        let rates: Vec<(f64, f64)> = (0..rounds).map(|_| call_soon_rates(&hub, calls)).collect();
        common::unwatch();
        let ns = |r: f64| 1e9 / r;
        let submit: Vec<f64> = rates.iter().map(|r| ns(r.0)).collect();
        let run: Vec<f64> = rates.iter().map(|r| ns(r.1)).collect();
        table.add("call_soon submit (1 thread)", "ns/call", &submit, Some(500.0));
        table.add("call_soon run (1 thread)", "ns/call", &run, Some(500.0));
        let millions = |v: &[f64]| 1e3 / summarize(v).median;
        println!(
            "call_soon: median {:.2} M/s submitted, {:.2} M/s run",
            millions(&submit),
            millions(&run)
        );
    }
    hub.stop();
    table.print(&mode.title(&format!("remote ({trips} round trips, {calls} calls per round)")));
}
