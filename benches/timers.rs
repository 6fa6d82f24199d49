//! Timer precision and order with 1,000,000 sleeping green threads.
//!
//! Every green thread sleeps until a pseudo-random deadline (xorshift, fixed
//! seed) and, when it wakes, records its lateness (`Instant::now()` minus
//! its deadline) and its place in the order of wake-ups. Reported: p50, p99
//! and max lateness, the share of wake-ups late by more than 2 ms, and
//! order inversions: wake-ups that came after the wake-up of a green thread
//! whose deadline was more than 1 ms later (and, as `any`, later at all).
//!
//! Two cases:
//! - `sleep from own start`: each green thread, when it starts, sleeps a
//!   random 0-1 s (`sleep_until(now + d)`, which is `sleep(d)`), as in the
//!   issue. Starting a million green threads takes about 3 s here (each
//!   first touch of a stack page is a page fault), so sleepers wake while
//!   others are still starting: this measures how promptly the hub turns
//!   from a flood of starts to the timers that came due (it bounds a turn
//!   to `TURN_SLICE`).
//! - `all parked, then 0-1 s`: all green threads first wait at a gate (a
//!   `hub::park` each); the gate then opens them all with a common base
//!   2.5 s ahead, and each sleeps until `base + d`, d random in 0-1 s. This
//!   measures the timers alone, with every sleeper parked before the first
//!   deadline (the time the gate's own turn took is reported too).
//!
//! With `GREENHUB_BENCH_VERBOSE=1` each child also prints lateness per 50 ms
//! window of deadlines, which shows whether lateness is jitter or a backlog.
//!
//! Each round runs in a fresh child process. The table shows median, min and
//! max over the rounds; nothing is asserted.
//!
//! Run: `cargo bench --bench timers` (only matching cases:
//! `cargo bench --bench timers -- gate`). Without `--bench` (as under
//! `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::cell::{Cell, RefCell};

use std::time::{Duration, Instant};

use common::{quantile_sorted, report, run_child, Mode, Table, XorShift};
use greenhub::hub::{park, Waker};
use greenhub::{join_all_timeout, sleep_until, spawn, yield_now, JoinHandle};

/// Environment variable carrying the number of green threads to a child.
const N_ENV: &str = "GREENHUB_BENCH_N";

/// Longest random sleep.
const SPREAD: Duration = Duration::from_secs(1);

/// How far ahead of the gate's opening the common base lies.
const GATE_MARGIN: Duration = Duration::from_millis(2500);

thread_local! {
    /// The instant every reported time is measured from.
    static T0: Cell<Option<Instant>> = const { Cell::new(None) };
    /// (deadline, wake time) in nanoseconds since `T0`, in wake-up order.
    static LOG: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
    /// Wakers of the green threads waiting at the gate.
    static GATE: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
    /// The common base, once the gate is open.
    static BASE: Cell<Option<Instant>> = const { Cell::new(None) };
}

fn since_t0(t: Instant) -> u64 {
    let t0 = T0.with(Cell::get).expect("T0 is set before spawning");
    t.saturating_duration_since(t0).as_nanos() as u64
}

/// Sleeps until `deadline` and logs the wake-up.
fn sleep_and_log(deadline: Instant) {
    sleep_until(deadline);
    let woke = Instant::now();
    LOG.with(|l| l.borrow_mut().push((since_t0(deadline), since_t0(woke))));
}

/// Body of a `gate` green thread: wait for the gate, then sleep to base + d.
fn gated(d: Duration) {
    while BASE.with(Cell::get).is_none() {
        park(None, |w| GATE.with(|g| g.borrow_mut().push(w.clone())));
    }
    let base = BASE.with(Cell::get).expect("the gate is open");
    sleep_and_log(base + d);
}

/// Child: one round of `case` with `n` green threads; reports statistics.
fn child(case: &str, n: u64) {
    LOG.with(|l| l.borrow_mut().reserve(n as usize));
    let mut rng = XorShift::new(0x5EED_1234_ABCD_0001);
    let t0 = Instant::now();
    T0.with(|t| t.set(Some(t0)));
    // `GREENHUB_BENCH_SPREAD_MS` narrows the spread for diagnosis: with 0,
    // every deadline is the same and the lateness is the time to drain them.
    let spread = std::env::var("GREENHUB_BENCH_SPREAD_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(SPREAD.as_nanos() as u64, |ms| ms * 1_000_000)
        .max(1);
    let mut handles: Vec<JoinHandle<()>> = Vec::with_capacity(n as usize);
    let gate = case == "gate";
    for _ in 0..n {
        let d = Duration::from_nanos(rng.below(spread));
        handles.push(if gate {
            spawn(move || gated(d))
        } else {
            spawn(move || {
                let deadline = Instant::now() + d;
                // What `sleep(d)` does, with the deadline kept for the log.
                sleep_and_log(deadline);
            })
        });
    }
    let spawned = t0.elapsed();
    report("spawn_ms", spawned.as_secs_f64() * 1e3);
    if gate {
        // Let every green thread reach the gate, then open it.
        for _ in 0..10 {
            yield_now();
            if GATE.with(|g| g.borrow().len()) as u64 == n {
                break;
            }
        }
        let at_gate = GATE.with(|g| g.borrow().len()) as u64;
        report("not_at_gate", (n - at_gate) as f64);
        report("start_ms", (t0.elapsed() - spawned).as_secs_f64() * 1e3);
        let opened = Instant::now();
        BASE.with(|b| b.set(Some(opened + GATE_MARGIN)));
        let wakers = GATE.with(|g| std::mem::take(&mut *g.borrow_mut()));
        for w in &wakers {
            w.wake();
        }
        drop(wakers);
        yield_now(); // one turn: every green thread goes from the gate to its sleep
        report("gate_turn_ms", opened.elapsed().as_secs_f64() * 1e3);
    }
    let done = join_all_timeout(&handles, Duration::from_secs(120));
    report("unfinished", (n - done.len() as u64) as f64);
    report("total_ms", t0.elapsed().as_secs_f64() * 1e3);
    let failed = common::join_all_counting_failures(handles);
    report("failed", failed as f64);

    let log = LOG.with(|l| std::mem::take(&mut *l.borrow_mut()));
    report("logged", log.len() as f64);
    if log.is_empty() {
        return;
    }
    if std::env::var_os("GREENHUB_BENCH_VERBOSE").is_some() {
        print_windows(&log);
    }
    let mut late: Vec<u64> = log
        .iter()
        .map(|&(deadline, woke)| woke.saturating_sub(deadline))
        .collect();
    late.sort_unstable();
    let us = |ns: u64| ns as f64 / 1e3;
    report("p50_us", us(quantile_sorted(&late, 0.50)));
    report("p99_us", us(quantile_sorted(&late, 0.99)));
    report("p999_us", us(quantile_sorted(&late, 0.999)));
    report("max_us", us(*late.last().expect("not empty")));
    let over_2ms = late.iter().filter(|&&l| l > 2_000_000).count();
    report("over_2ms_pct", over_2ms as f64 * 100.0 / late.len() as f64);
    // A wake-up is an inversion when some green thread with a later deadline
    // woke before it.
    let (mut max_deadline, mut inv_1ms, mut inv_any) = (0u64, 0u64, 0u64);
    for &(deadline, _) in &log {
        if max_deadline > deadline + 1_000_000 {
            inv_1ms += 1;
        }
        if max_deadline > deadline {
            inv_any += 1;
        }
        max_deadline = max_deadline.max(deadline);
    }
    report("inversions_1ms", inv_1ms as f64);
    report("inversions_any", inv_any as f64);
}

/// Diagnostics (`GREENHUB_BENCH_VERBOSE=1`): lateness by 50 ms window of
/// deadlines, to show when in the round the late wake-ups happen.
fn print_windows(log: &[(u64, u64)]) {
    const WINDOW: u64 = 50_000_000;
    let mut windows: std::collections::BTreeMap<u64, Vec<u64>> = std::collections::BTreeMap::new();
    for &(deadline, woke) in log {
        windows
            .entry(deadline / WINDOW)
            .or_default()
            .push(woke.saturating_sub(deadline));
    }
    for (w, mut late) in windows {
        late.sort_unstable();
        println!(
            "deadlines {:>5}..{:>5} ms: {:>7} wake-ups, lateness p50 {:>9.3} ms, p99 {:>9.3} ms, max {:>9.3} ms",
            w * 50,
            (w + 1) * 50,
            late.len(),
            quantile_sorted(&late, 0.5) as f64 / 1e6,
            quantile_sorted(&late, 0.99) as f64 / 1e6,
            *late.last().expect("not empty") as f64 / 1e6
        );
    }
}

fn run_as_child(case: &str) {
    let n: u64 = std::env::var(N_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    common::watch(case, Duration::from_secs(170));
    child(case, n);
    common::unwatch();
}

fn main() {
    if let Ok(case) = std::env::var(common::CHILD_ENV) {
        run_as_child(&case);
        return;
    }
    let mode = Mode::from_args();
    let n: u64 = mode.pick(1_000_000, 2_000);
    // (name, child case, rounds)
    let cases = [
        ("sleep from own start", "own", mode.rounds(3)),
        ("all parked, then 0-1 s (gate)", "gate", mode.rounds(5)),
    ];
    let mut table = Table::new();
    for (name, case, rounds) in cases {
        if !mode.wants(name) {
            continue;
        }
        let mut reports = Vec::new();
        for _ in 0..rounds {
            match run_child(case, &[(N_ENV, n.to_string())], Duration::from_secs(180)) {
                Ok(r) => reports.push(r),
                Err(e) => {
                    println!("ERROR in `{name}`: {e}");
                    break;
                }
            }
        }
        if reports.is_empty() {
            continue;
        }
        for key in ["unfinished", "failed", "not_at_gate"] {
            let bad: f64 = common::column(&reports, key).iter().filter(|v| !v.is_nan()).sum();
            if bad > 0.0 {
                println!("ERROR in `{name}`: `{key}` = {bad} (summed over rounds)");
            }
        }
        let ms = |key: &str| {
            common::column(&reports, key)
                .into_iter()
                .map(|us| us / 1e3)
                .collect::<Vec<_>>()
        };
        table.add(&format!("{name}: p50 lateness"), "ms", &ms("p50_us"), None);
        table.add("  p99 lateness", "ms", &ms("p99_us"), Some(2.0));
        table.add("  p99.9 lateness", "ms", &ms("p999_us"), None);
        table.add("  max lateness", "ms", &ms("max_us"), None);
        table.add_columns(
            &reports,
            &[
                ("  woke > 2 ms late", "%", "over_2ms_pct"),
                ("  order inversions > 1 ms", "wake-ups", "inversions_1ms"),
                ("  order inversions (any)", "wake-ups", "inversions_any"),
                ("  spawn phase", "ms", "spawn_ms"),
            ],
        );
        if case == "gate" {
            table.add_columns(&reports, &[("  start-up turn (to the gate)", "ms", "start_ms")]);
            let margin = GATE_MARGIN.as_secs_f64() * 1e3;
            table.add(
                "  gate-opening turn",
                "ms",
                &common::column(&reports, "gate_turn_ms"),
                Some(margin),
            );
        }
        table.add("  whole round", "ms", &common::column(&reports, "total_ms"), None);
    }
    table.print(&mode.title(&format!(
        "timers ({n} green threads, deadlines spread over {SPREAD:?})"
    )));
}
