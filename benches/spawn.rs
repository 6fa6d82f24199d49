//! Cost of spawning and joining many trivial green threads: time per green
//! thread and peak memory (`VmHWM`).
//!
//! - `spawn+join_all 1M`: spawn 1,000,000 green threads running `|| ()`,
//!   keep every handle in a `Vec`, `join_all(&handles)`, then `join` each
//!   handle. Reports ns per green thread (also split into the spawn phase
//!   and the run/join phase) and the peak RSS of the process.
//! - the same with `GREENHUB_STACK_GUARD=mprotect` (one mapping per stack,
//!   `mprotect` guard) for comparison with the slab stacks.
//! - `spawn->join one at a time`: spawn and immediately join, 100,000 times,
//!   so every green thread reuses the previous one's pooled stack.
//! - `baseline`: the peak RSS of a child that does nothing, and of one that
//!   only starts the hub (spawns and joins one green thread), so the peak of
//!   the 1M case can be read as a delta.
//!
//! Every round runs in a fresh child process (this binary re-executed with
//! `GREENHUB_BENCH_CHILD` set), so each peak RSS is that round's own. The
//! table shows median, min and max over the rounds; nothing is asserted.
//!
//! Run: `cargo bench --bench spawn` (only matching cases:
//! `cargo bench --bench spawn -- mprotect`). Without `--bench` (as under
//! `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{ns_per, report, run_child, status_kib, Mode, Table};
use greenhub::{join_all, spawn, JoinHandle};

/// Environment variable carrying the number of green threads to a child.
const N_ENV: &str = "GREENHUB_BENCH_N";

/// Child: spawn `n`, keep the handles, `join_all`, join each; report times
/// and peak memory.
fn child_spawn_all(n: u64) {
    let t = Instant::now();
    let handles: Vec<JoinHandle<()>> = (0..n).map(|_| spawn(|| ())).collect();
    let spawned = t.elapsed();
    join_all(&handles);
    let ran = t.elapsed() - spawned;
    let t_join = Instant::now();
    let mut failed = 0u64;
    for h in handles {
        if let Err(e) = h.join() {
            if failed == 0 {
                println!("first join error: {e}");
            }
            failed += 1;
        }
    }
    let joined = t_join.elapsed();
    let total = t.elapsed();
    report("ns_per", ns_per(total, n));
    report("join_ns_per", ns_per(joined, n));
    report("spawn_ns_per", ns_per(spawned, n));
    report("run_ns_per", ns_per(ran, n));
    report("failed", failed as f64);
    report("hwm_kib", status_kib("VmHWM").unwrap_or(0) as f64);
}

/// Child: spawn and immediately join, `n` times.
fn child_one_at_a_time(n: u64) {
    spawn(|| ()).join().expect("warm-up green thread");
    let t = Instant::now();
    for i in 0..n {
        black_box(spawn(move || i).join().expect("green thread"));
    }
    report("ns_per", ns_per(t.elapsed(), n));
    report("hwm_kib", status_kib("VmHWM").unwrap_or(0) as f64);
}

/// Child: report the peak RSS of an idle process, or of one whose hub has run.
fn child_baseline(start_hub: bool) {
    if start_hub {
        spawn(|| ()).join().expect("green thread");
    }
    report("hwm_kib", status_kib("VmHWM").unwrap_or(0) as f64);
}

fn run_as_child(case: &str) {
    let n: u64 = std::env::var(N_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    common::watch(case, Duration::from_secs(120));
    match case {
        "spawn_all" => child_spawn_all(n),
        "one_at_a_time" => child_one_at_a_time(n),
        "baseline_idle" => child_baseline(false),
        "baseline_hub" => child_baseline(true),
        other => panic!("unknown child case {other}"),
    }
    common::unwatch();
}

/// Runs `rounds` children of `case`; returns their reports, or prints the
/// error and returns `None`.
fn rounds_of(case: &str, env: &[(&str, String)], rounds: usize) -> Option<Vec<HashMap<String, f64>>> {
    let mut out = Vec::new();
    for _ in 0..rounds {
        match run_child(case, env, Duration::from_secs(180)) {
            Ok(v) => out.push(v),
            Err(e) => {
                println!("ERROR in `{case}`: {e}");
                return None;
            }
        }
    }
    Some(out)
}

fn main() {
    if let Ok(case) = std::env::var(common::CHILD_ENV) {
        run_as_child(&case);
        return;
    }
    let mode = Mode::from_args();
    let rounds = mode.rounds(7);
    let n: u64 = mode.pick(1_000_000, 1_000);
    let n_seq: u64 = mode.pick(100_000, 1_000);
    let mib = |kib: Vec<f64>| kib.into_iter().map(|k| k / 1024.0).collect::<Vec<_>>();
    let mut table = Table::new();

    let mut base_hub_mib = None;
    if mode.wants("baseline") {
        if let Some(r) = rounds_of("baseline_idle", &[], rounds) {
            table.add(
                "baseline: idle child, peak RSS",
                "MiB",
                &mib(common::column(&r, "hwm_kib")),
                None,
            );
        }
        if let Some(r) = rounds_of("baseline_hub", &[], rounds) {
            let v = mib(common::column(&r, "hwm_kib"));
            base_hub_mib = Some(common::summarize(&v).median);
            table.add("baseline: hub started, peak RSS", "MiB", &v, None);
        }
    }

    let n_env = (N_ENV, n.to_string());
    let variants: [(&str, Vec<(&str, String)>); 2] = [
        ("spawn+join_all 1M", vec![n_env.clone()]),
        (
            "spawn+join_all 1M (mprotect guards)",
            vec![n_env, ("GREENHUB_STACK_GUARD", "mprotect".to_string())],
        ),
    ];
    for (name, env) in &variants {
        if !mode.wants(name) {
            continue;
        }
        let Some(r) = rounds_of("spawn_all", env, rounds) else {
            continue;
        };
        let failed: f64 = common::column(&r, "failed").iter().sum();
        if failed > 0.0 {
            println!("ERROR in `{name}`: {failed} joins failed over {rounds} rounds");
        }
        let is_main = !name.contains("mprotect");
        table.add(
            name,
            "ns/thread",
            &common::column(&r, "ns_per"),
            is_main.then_some(200.0),
        );
        table.add_columns(
            &r,
            &[
                ("  of which spawn phase", "ns/thread", "spawn_ns_per"),
                ("  of which join_all phase (runs them)", "ns/thread", "run_ns_per"),
                ("  of which join-each phase", "ns/thread", "join_ns_per"),
            ],
        );
        let peak = mib(common::column(&r, "hwm_kib"));
        table.add("  peak RSS", "MiB", &peak, is_main.then_some(150.0));
        if let Some(base) = base_hub_mib {
            let delta: Vec<f64> = peak.iter().map(|p| p - base).collect();
            table.add("  peak RSS - hub baseline", "MiB", &delta, None);
            let per: Vec<f64> = delta.iter().map(|d| d * 1024.0 * 1024.0 / n as f64).collect();
            table.add("  peak RSS - baseline, per thread", "B/thread", &per, None);
        }
    }

    let name = "spawn->join one at a time (pooled stack)";
    if mode.wants(name) {
        if let Some(r) = rounds_of("one_at_a_time", &[(N_ENV, n_seq.to_string())], rounds) {
            table.add(name, "ns/thread", &common::column(&r, "ns_per"), None);
        }
    }

    table.print(&mode.title(&format!("spawn ({rounds} fresh processes per case)")));
}
