//! Each example run as a user would run it (`cargo run --example NAME`),
//! checking its output and exit status.

mod util;

use std::process::Command;
use std::time::Duration;

/// What an example printed, and whether it succeeded.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cargo run --quiet --example name`, killing it and failing the test
/// if it takes longer than `limit` (which includes building it).
fn run_example(name: &str, limit: Duration) -> Run {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = util::run_bounded(cmd, &format!("example `{name}`"), limit);
    Run {
        success: out.status.success(),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// The seconds printed after `after` on the line starting with `prefix`.
fn seconds_after(out: &str, prefix: &str, after: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"));
    let rest = &line[line.find(after).expect("the marker") + after.len()..];
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().unwrap_or_else(|_| panic!("no number in {line:?}"))
}

#[test]
fn gather_wait_example() {
    let run = run_example("gather_wait", Duration::from_secs(120));
    assert!(run.success, "failed:\n{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(out.contains(r#"gather: ["one", "two", "four"]"#), "{out}");
    let gathered = seconds_after(out, "gather:", " in ");
    assert!((3.9..5.5).contains(&gathered), "gather took {gathered} s:\n{out}");
    assert!(out.contains("done [0], pending [1, 2]"), "{out}");
    let first = seconds_after(out, "wait first:", "after ");
    assert!((0.9..2.0).contains(&first), "{out}");
    let order: Vec<&str> = out.lines().filter(|l| l.starts_with("as completed:")).collect();
    assert_eq!(order.len(), 3, "{out}");
    assert!(
        order[0].contains("task 0 (one)") && order[1].contains("task 1 (two)"),
        "{out}"
    );
    assert!(order[2].contains("task 2 (four)"), "{out}");
    let last = seconds_after(order[2], "as completed: task 2", " at ");
    assert!((3.9..5.5).contains(&last), "{out}");
}

#[test]
fn producer_consumer_example() {
    let run = run_example("producer_consumer", Duration::from_secs(120));
    assert!(run.success, "failed:\n{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    let puts = out.lines().filter(|l| l.contains(" put ")).count();
    let gets = out.lines().filter(|l| l.contains(" got ")).count();
    assert_eq!((puts, gets), (10, 10), "every value put is consumed:\n{out}");
    for p in ["producer-1", "producer-2"] {
        assert!(out.contains(&format!("{p}: ok: {p} produced 5 values")), "{out}");
    }
    for c in ["consumer-1", "consumer-2"] {
        assert!(
            out.contains(&format!("{c}: error: green thread was killed")),
            "{out}"
        );
    }
}

/// The seed's greenlet program, exactly: 12, 56, 34, 78 and nothing else.
#[test]
fn greenlet_switch_example() {
    let run = run_example("greenlet_switch", Duration::from_secs(120));
    assert!(run.success, "failed:\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "12\n56\n34\n78\n");
}

#[test]
fn debug_blocking_example() {
    let run = run_example("debug_blocking", Duration::from_secs(120));
    assert!(run.success, "failed:\n{}\n{}", run.stdout, run.stderr);
    let err = &run.stderr;
    for name in ["busy", "blocker"] {
        let report = format!("green thread '{name}' (#");
        assert_eq!(err.matches(&report).count(), 1, "one report for {name}:\n{err}");
    }
    assert!(err.contains("spawned at examples/debug_blocking.rs:"), "{err}");
    let out = &run.stdout;
    assert!(
        out.contains("'ticker' spawned at examples/debug_blocking.rs:"),
        "{out}"
    );
    assert!(
        out.contains("'waiting' spawned at")
            && out.contains("parked: sleep for ")
            && out.contains(" ms, wakes in"),
        "{out}"
    );
}
