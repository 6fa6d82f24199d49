//! Speed of `greenhub::sync`:
//!
//! - `event ping-pong`: two green threads hand a turn back and forth through
//!   a pair of [`Event`]s (set the other's, wait on one's own, clear it);
//!   nanoseconds per hand-off (target 80).
//! - `channel ping-pong`: the same through a pair of [`Channel`]s (put to
//!   the other, get from one's own); nanoseconds per hand-off (target 80).
//! - `queue 1p/1c unbounded` and `bounded(1024)`: one producer puts
//!   integers, one consumer gets them; nanoseconds per item (target 50, that
//!   is 20 M items/s), with the rate in M items/s on a second row.
//!
//! Each case runs a warm-up, then several rounds; the table shows the median
//! with min and max. Numbers are informational, nothing is asserted.
//!
//! Run: `cargo bench --bench sync` (only matching cases:
//! `cargo bench --bench sync -- queue`). Without `--bench` (as under
//! `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{ns_per, Mode, Table};
use greenhub::spawn;
use greenhub::sync::{Channel, Event, Queue};

/// `n` round trips through two events: `2 n` hand-offs.
fn event_pingpong(n: u64) -> Duration {
    let (ping, pong) = (Rc::new(Event::new()), Rc::new(Event::new()));
    let (pi, po) = (ping.clone(), pong.clone());
    let echo = spawn(move || {
        for _ in 0..n {
            pi.wait();
            pi.clear();
            po.set();
        }
    });
    let t = Instant::now();
    let driver = spawn(move || {
        for _ in 0..n {
            ping.set();
            pong.wait();
            pong.clear();
        }
    });
    driver.join().expect("event driver");
    let elapsed = t.elapsed();
    echo.join().expect("event echo");
    elapsed
}

/// `n` round trips through two channels: `2 n` hand-offs.
fn channel_pingpong(n: u64) -> Duration {
    let (ping, pong) = (Rc::new(Channel::new()), Rc::new(Channel::new()));
    let (pi, po) = (ping.clone(), pong.clone());
    let echo = spawn(move || {
        for x in pi.iter() {
            po.put(x).expect("pong is open");
        }
    });
    let t = Instant::now();
    let driver = spawn(move || {
        for i in 0..n {
            ping.put(i).expect("ping is open");
            black_box(pong.get().expect("pong is open"));
        }
        ping.close();
    });
    driver.join().expect("channel driver");
    let elapsed = t.elapsed();
    echo.join().expect("channel echo");
    elapsed
}

/// One producer puts `n` items, one consumer gets them.
fn queue_throughput(q: Queue<u64>, n: u64) -> Duration {
    let q = Rc::new(q);
    let qc = q.clone();
    let t = Instant::now();
    let consumer = spawn(move || {
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(qc.get().expect("never closed"));
        }
        sum
    });
    let producer = spawn(move || {
        for i in 0..n {
            q.put(i).expect("never closed");
        }
    });
    producer.join().expect("producer");
    black_box(consumer.join().expect("consumer"));
    t.elapsed()
}

fn unbounded(n: u64) -> Duration {
    queue_throughput(Queue::new(), n)
}

fn bounded_1024(n: u64) -> Duration {
    queue_throughput(Queue::bounded(1024), n)
}

type Run = fn(u64) -> Duration;

/// Times `run` (after a warm-up) in several rounds of `iters` iterations,
/// each `ops` counted operations; returns ns per operation, or `None` when
/// the command line's filter leaves the case out.
fn measure(mode: &Mode, name: &str, run: Run, iters: u64, ops: u64) -> Option<Vec<f64>> {
    if !mode.wants(name) {
        return None;
    }
    common::watch(name, Duration::from_secs(60));
    black_box(run(iters / 10)); // warm-up: stacks pooled, code paged in
    let samples = (0..mode.rounds(9))
        .map(|_| ns_per(run(iters), iters * ops))
        .collect();
    common::unwatch();
    Some(samples)
}

fn main() {
    let mode = Mode::from_args();
    let iters: u64 = mode.pick(1_000_000, 1_000);
    let mut table = Table::new();
    let pingpongs: [(&str, Run); 2] = [
        ("event ping-pong", event_pingpong),
        ("channel ping-pong", channel_pingpong),
    ];
    for (name, run) in pingpongs {
        // Two hand-offs per round trip.
        if let Some(ns) = measure(&mode, name, run, iters, 2) {
            table.add(name, "ns/hand-off", &ns, Some(80.0));
        }
    }
    let queues: [(&str, Run); 2] = [
        ("queue 1p/1c unbounded", unbounded),
        ("queue 1p/1c bounded(1024)", bounded_1024),
    ];
    for (name, run) in queues {
        if let Some(ns) = measure(&mode, name, run, iters, 1) {
            // 50 ns per item is the 20 M items/s.
            table.add(name, "ns/item", &ns, Some(50.0));
            let rates: Vec<f64> = ns.iter().map(|ns| 1_000.0 / ns).collect();
            table.add(&format!("{name} rate"), "M items/s", &rates, None);
        }
    }
    table.print(&mode.title(&format!("sync ({iters} iterations per round)")));
}
