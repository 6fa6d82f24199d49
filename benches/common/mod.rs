//! Helpers shared by the benches (each bench binary includes this module
//! with `mod common;` and uses only part of it): run-mode detection,
//! statistics, the results table, `/proc/self` readers, fresh child
//! processes with a bounded wait, and a watchdog so that a hang ends in an
//! error message instead of a stuck run.
//!
//! Not every bench uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Environment variable that turns a re-executed bench binary into a child
/// running one case; its value names the case.
pub const CHILD_ENV: &str = "GREENHUB_BENCH_CHILD";

/// How the bench binary was invoked.
#[derive(Debug, Clone)]
pub struct Mode {
    /// `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
    /// every bench runs a tiny smoke version of each case, once.
    pub quick: bool,
    /// Optional substring: only cases whose name contains it run.
    pub filter: Option<String>,
}

impl Mode {
    /// Reads the command line.
    pub fn from_args() -> Mode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = !args.iter().any(|a| a == "--bench");
        let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
        Mode { quick, filter }
    }

    /// Whether the case named `name` is selected.
    pub fn wants(&self, name: &str) -> bool {
        match &self.filter {
            Some(f) => name.contains(f.as_str()),
            None => true,
        }
    }

    /// A table title, marked as a smoke run in quick mode.
    pub fn title(&self, title: &str) -> String {
        if self.quick {
            format!("{title} [QUICK SMOKE RUN: sizes reduced, not a benchmark; use `cargo bench`]")
        } else {
            title.to_string()
        }
    }

    /// Number of rounds: `full` when benchmarking (or `GREENHUB_BENCH_ROUNDS`
    /// if set), 1 in quick mode.
    pub fn rounds(&self, full: usize) -> usize {
        if self.quick {
            return 1;
        }
        std::env::var("GREENHUB_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&r| r > 0)
            .unwrap_or(full)
    }

    /// `full` when benchmarking, `smoke` in quick mode.
    pub fn pick<T>(&self, full: T, smoke: T) -> T {
        if self.quick {
            smoke
        } else {
            full
        }
    }
}

/// Median, minimum and maximum of some samples.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Middle value (mean of the two middle ones for an even count).
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Number of samples.
    pub n: usize,
}

/// Summarises `samples` (which must not be empty).
pub fn summarize(samples: &[f64]) -> Summary {
    assert!(!samples.is_empty(), "no samples");
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Summary {
        median,
        min: s[0],
        max: s[n - 1],
        n,
    }
}

/// Value at quantile `q` (0..=1) of already sorted samples (nearest rank).
pub fn quantile_sorted<T: Copy>(sorted: &[T], q: f64) -> T {
    assert!(!sorted.is_empty(), "no samples");
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of a results table.
#[derive(Debug, Clone)]
pub struct Row {
    name: String,
    unit: &'static str,
    summary: Summary,
    /// Upper bound the median should stay under, if the issue sets one.
    target: Option<f64>,
}

/// A results table, printed at the end of a bench.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// Adds a row from raw samples; `target` is an upper bound for the median.
    pub fn add(&mut self, name: &str, unit: &'static str, samples: &[f64], target: Option<f64>) {
        let summary = summarize(samples);
        self.rows.push(Row {
            name: name.to_string(),
            unit,
            summary,
            target,
        });
    }

    /// Adds one row per `(name, unit, key)`, from column `key` of the
    /// children's reports, with no target.
    pub fn add_columns(&mut self, reports: &[HashMap<String, f64>], rows: &[(&str, &'static str, &str)]) {
        for &(name, unit, key) in rows {
            self.add(name, unit, &column(reports, key), None);
        }
    }

    /// Prints the table: median, min, max, unit, target, and whether the
    /// median meets the target. Informational only: nothing fails.
    pub fn print(&self, title: &str) {
        let w = self.rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
        println!();
        println!("== {title} ==");
        println!(
            "{:<w$}  {:>12}  {:>12}  {:>12}  {:<10}  {:>10}  {:>4}  verdict",
            "case", "median", "min", "max", "unit", "target", "runs"
        );
        for r in &self.rows {
            let (target, verdict) = match r.target {
                Some(t) if r.summary.median <= t => (fmt_num(t), "ok"),
                Some(t) => (fmt_num(t), "OVER"),
                None => ("-".to_string(), ""),
            };
            println!(
                "{:<w$}  {:>12}  {:>12}  {:>12}  {:<10}  {:>10}  {:>4}  {}",
                r.name,
                fmt_num(r.summary.median),
                fmt_num(r.summary.min),
                fmt_num(r.summary.max),
                r.unit,
                target,
                r.summary.n,
                verdict
            );
        }
    }
}

/// Formats a number with a precision that suits its size.
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

/// Nanoseconds per operation.
pub fn ns_per(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

/// A `kB` field of `/proc/self/status` (e.g. `VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Number of memory mappings of this process (lines of `/proc/self/maps`).
pub fn map_count() -> Option<usize> {
    let mut maps = Vec::new();
    std::fs::File::open("/proc/self/maps")
        .ok()?
        .read_to_end(&mut maps)
        .ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}

/// The kernel's cap on mappings per process (`vm.max_map_count`).
pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// In a child, prints one result for the parent to parse.
pub fn report(key: &str, value: f64) {
    println!("{key}={value}");
}

/// Runs this bench binary again as a child running case `case`, with extra
/// environment variables, and waits at most `timeout` for it. Returns the
/// `key=value` lines the child printed on stdout; other lines are echoed.
///
/// # Errors
/// A description of what went wrong: the child could not start, timed out
/// (it is then killed), or exited unsuccessfully (its stdout is included).
pub fn run_child(
    case: &str,
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<HashMap<String, f64>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.env(CHILD_ENV, case)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawning child `{case}`: {e}"))?;
    // Drain stdout on a thread so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let out = reader.join().unwrap_or_default();
                return Err(format!(
                    "child `{case}` did not finish within {timeout:?} and was killed (hang?); \
                     its output:\n{out}"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for child `{case}`: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("child `{case}` failed ({status}); its output:\n{out}"));
    }
    let mut values = HashMap::new();
    for line in out.lines() {
        match line
            .split_once('=')
            .and_then(|(k, v)| Some((k, v.trim().parse::<f64>().ok()?)))
        {
            Some((k, v)) => {
                values.insert(k.to_string(), v);
            }
            None => println!("  [{case}] {line}"),
        }
    }
    Ok(values)
}

/// Pulls `key` out of every report (NaN where a report lacks it).
pub fn column(reports: &[HashMap<String, f64>], key: &str) -> Vec<f64> {
    reports.iter().map(|r| get(r, key).unwrap_or(f64::NAN)).collect()
}

/// Looks up a value a child reported.
///
/// # Errors
/// When the child did not report `key`.
pub fn get(values: &HashMap<String, f64>, key: &str) -> Result<f64, String> {
    values
        .get(key)
        .copied()
        .ok_or_else(|| format!("child did not report `{key}`"))
}

/// What the watchdog is guarding: a phase name and its deadline.
static WATCHED: Mutex<Option<(String, Instant)>> = Mutex::new(None);

/// Starts the watchdog thread (once per process). If a phase set with
/// [`watch`] outlives its limit, it prints an error and exits the process
/// with status 3, so a hang in greenhub shows up as a clear failure.
pub fn start_watchdog() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(50));
            let guard = WATCHED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((phase, deadline)) = &*guard {
                if Instant::now() > *deadline {
                    eprintln!("ERROR: `{phase}` did not finish in time: greenhub hung (watchdog)");
                    std::process::exit(3);
                }
            }
        });
    });
}

/// Arms the watchdog for `phase`, to finish within `limit`.
pub fn watch(phase: &str, limit: Duration) {
    start_watchdog();
    *WATCHED.lock().unwrap_or_else(|e| e.into_inner()) = Some((phase.to_string(), Instant::now() + limit));
}

/// Disarms the watchdog.
pub fn unwatch() {
    *WATCHED.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// A small xorshift64* generator, so the benches need no `rand` crate.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded generator (a zero seed is replaced, xorshift must not be 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// Next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Kills whichever of `handles` has not finished, joins them all and returns
/// how many did not return a value, printing the first error.
pub fn join_all_counting_failures<T: 'static>(handles: Vec<greenhub::JoinHandle<T>>) -> u64 {
    let mut failed = 0u64;
    for h in handles {
        if !h.is_finished() {
            h.kill();
        }
        if let Err(e) = h.join() {
            if failed == 0 {
                println!("first join error: {e}");
            }
            failed += 1;
        }
    }
    failed
}
