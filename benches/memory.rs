//! Memory per parked green thread, measured with `VmRSS` in a fresh child
//! process per round.
//!
//! - `parked 100k`: spawn 100,000 green threads that each `sleep(1 s)`;
//!   once all have started and parked, read `VmRSS` and report
//!   `(RSS_after - RSS_before) / 100_000` bytes (the `Vec` of join handles,
//!   8 bytes each, is included), then let them all finish.
//! - `parked 1M`: the same with 1,000,000 green threads sleeping 2 s, which
//!   must fit under the default `vm.max_map_count` (65530); also reports the
//!   process's mapping count (lines of `/proc/self/maps`) while all are
//!   parked.
//!
//! Also reported: spawn and start-up time per green thread, how late the
//! hub finished draining the wake-ups after the last deadline, and the RSS
//! left once all have finished. Next to the start-up time, the machine's
//! floor for it: touching one fresh page per stack-sized slot, outside
//! greenhub (each fresh stack pays that page fault once; on this project's
//! 2-vCPU VM it measured about 3 to 4 us, most of a parked green thread's
//! start-up). `RSS_before` is read after the hub has run
//! one green thread, so the hub's own setup is not counted.
//!
//! The table shows the median with min and max over the rounds; nothing is
//! asserted. Run: `cargo bench --bench memory` (only matching cases:
//! `cargo bench --bench memory -- 100k`). Without `--bench` (as under
//! `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::cell::Cell;

use std::time::{Duration, Instant};

use common::{map_count, max_map_count, ns_per, report, run_child, status_kib, Mode, Table};
use greenhub::{join_all_timeout, sleep, spawn, yield_now, JoinHandle};

/// Environment variables carrying a child's parameters.
const N_ENV: &str = "GREENHUB_BENCH_N";
const SLEEP_MS_ENV: &str = "GREENHUB_BENCH_SLEEP_MS";

thread_local! {
    /// Green threads that have started (all run on this OS thread).
    static STARTED: Cell<u64> = const { Cell::new(0) };
    /// Green threads whose sleep has ended.
    static WOKE: Cell<u64> = const { Cell::new(0) };
}

fn bump(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    counter.with(|c| c.set(c.get() + 1));
}

/// Child: park `n` green threads in `sleep(nap)` and measure.
fn child_parked(n: u64, nap: Duration) {
    spawn(|| ()).join().expect("warm-up green thread");
    let rss_before = status_kib("VmRSS").unwrap_or(0);
    let maps_before = map_count().unwrap_or(0);

    let t0 = Instant::now();
    let handles: Vec<JoinHandle<()>> = (0..n)
        .map(|_| {
            spawn(move || {
                bump(&STARTED);
                sleep(nap);
                bump(&WOKE);
            })
        })
        .collect();
    let spawned = t0.elapsed();
    // One yield runs every ready green thread up to its park; a few more in
    // case some were not started in that turn.
    for _ in 0..10 {
        yield_now();
        if STARTED.with(Cell::get) == n {
            break;
        }
    }
    let all_started = Instant::now();
    let started = STARTED.with(Cell::get);
    let woke_early = WOKE.with(Cell::get);
    let rss_after = status_kib("VmRSS").unwrap_or(0);
    let maps = map_count().unwrap_or(0);

    let done = join_all_timeout(&handles, nap + Duration::from_secs(60));
    let joined = Instant::now();
    let unfinished = n - done.len() as u64;
    let failed = common::join_all_counting_failures(handles);
    let rss_end = status_kib("VmRSS").unwrap_or(0);

    let delta_bytes = (rss_after as f64 - rss_before as f64) * 1024.0;
    report("bytes_per", delta_bytes / n as f64);
    report("rss_before_kib", rss_before as f64);
    report("rss_after_kib", rss_after as f64);
    report("rss_end_kib", rss_end as f64);
    report("hwm_kib", status_kib("VmHWM").unwrap_or(0) as f64);
    report("maps_before", maps_before as f64);
    report("maps", maps as f64);
    report("spawn_ns_per", ns_per(spawned, n));
    report("start_ns_per", ns_per(all_started - t0 - spawned, n));
    let last_deadline = all_started + nap;
    report(
        "drain_ms",
        joined.saturating_duration_since(last_deadline).as_secs_f64() * 1e3,
    );
    report("not_started", (n - started) as f64);
    report("woke_early", woke_early as f64);
    report("unfinished", unfinished as f64);
    report("failed", failed as f64);
    report("fault_ns_per", first_touch_ns(n));
}

/// This machine's floor for starting green threads on fresh stacks: the
/// time to touch one fresh page in each of `n` slots laid out as the stack
/// pool lays them out (a guard page plus `DEFAULT_STACK_SIZE`), which is the
/// page fault (and the zeroing of the page) every fresh stack pays once.
/// Measured after the green threads are done, so no RSS figure above
/// includes it.
fn first_touch_ns(n: u64) -> f64 {
    let stride = greenhub::DEFAULT_STACK_SIZE + 4096;
    let len = stride * n as usize;
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return f64::NAN;
    }
    let base = p.cast::<u8>();
    let t = Instant::now();
    for i in 0..n as usize {
        // SAFETY: `i * stride + stride - 64` lies inside the `len` bytes just mapped.
        unsafe { base.add(i * stride + stride - 64).write_volatile(1) };
    }
    let took = t.elapsed();
    // SAFETY: unmaps exactly the mapping made above, no longer used.
    unsafe { libc::munmap(p, len) };
    ns_per(took, n)
}

fn run_as_child(case: &str) {
    let n: u64 = std::env::var(N_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let ms: u64 = std::env::var(SLEEP_MS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    common::watch(case, Duration::from_secs(150) + Duration::from_millis(ms));
    match case {
        "parked" => child_parked(n, Duration::from_millis(ms)),
        other => panic!("unknown child case {other}"),
    }
    common::unwatch();
}

fn main() {
    if let Ok(case) = std::env::var(common::CHILD_ENV) {
        run_as_child(&case);
        return;
    }
    let mode = Mode::from_args();
    // (name, green threads, sleep, rounds, target bytes per green thread)
    let cases: [(&str, u64, u64, usize, Option<f64>); 2] = [
        (
            "parked 100k",
            mode.pick(100_000, 1_000),
            mode.pick(1000, 50),
            mode.rounds(5),
            Some(4600.0),
        ),
        (
            "parked 1M",
            mode.pick(1_000_000, 2_000),
            mode.pick(2000, 50),
            mode.rounds(3),
            None,
        ),
    ];
    println!(
        "vm.max_map_count = {}",
        max_map_count().map_or("?".to_string(), |m| m.to_string())
    );
    let mut table = Table::new();
    for (name, n, ms, rounds, target) in cases {
        if !mode.wants(name) {
            continue;
        }
        let env = [(N_ENV, n.to_string()), (SLEEP_MS_ENV, ms.to_string())];
        let mut reports = Vec::new();
        for _ in 0..rounds {
            match run_child(
                "parked",
                &env,
                Duration::from_secs(200) + Duration::from_millis(ms),
            ) {
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
        for key in ["not_started", "woke_early", "unfinished", "failed"] {
            let bad: f64 = common::column(&reports, key).iter().sum();
            if bad > 0.0 {
                println!("ERROR in `{name}`: `{key}` = {bad} (summed over rounds); see the child's output");
            }
        }
        let mib = |key: &str| {
            common::column(&reports, key)
                .into_iter()
                .map(|k| k / 1024.0)
                .collect::<Vec<_>>()
        };
        table.add(
            &format!("{name}: RSS per parked green thread"),
            "B/thread",
            &common::column(&reports, "bytes_per"),
            target,
        );
        table.add("  RSS before spawning", "MiB", &mib("rss_before_kib"), None);
        table.add("  RSS with all parked", "MiB", &mib("rss_after_kib"), None);
        table.add("  RSS after all finished", "MiB", &mib("rss_end_kib"), None);
        table.add("  peak RSS", "MiB", &mib("hwm_kib"), None);
        table.add_columns(
            &reports,
            &[
                ("  mappings before spawning", "maps", "maps_before"),
                ("  mappings with all parked", "maps", "maps"),
                ("  spawn", "ns/thread", "spawn_ns_per"),
                ("  start up to the park", "ns/thread", "start_ns_per"),
                (
                    "  of which floor: first touch of a fresh page",
                    "ns/page",
                    "fault_ns_per",
                ),
                ("  drain after last deadline", "ms", "drain_ms"),
            ],
        );
    }
    table.print(&mode.title("memory (one fresh process per round)"));
}
