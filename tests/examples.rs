//! Each example run as a user would run it (`cargo run --example NAME`),
//! checking its output and exit status.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What an example printed, and whether it succeeded.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cargo run --quiet --example name`, killing it and failing the test
/// if it takes longer than `limit` (which includes building it).
fn run_example(name: &str, limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cargo");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example `{name}` still running after {limit:?}: killed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        success: status.success(),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
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
