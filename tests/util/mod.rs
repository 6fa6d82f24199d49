//! Helpers shared by the integration tests: time bounds, drop guards, panic
//! messages and re-running one test of this binary in a child process.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::any::Any;
use std::cell::Cell;
use std::io::Read;
use std::panic;
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test body may take before it counts as hung.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on a fresh OS thread (so on a fresh hub) and returns its value;
/// re-raises its panic; fails the test if it does not finish within [`LIMIT`].
pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    bounded_for(LIMIT, f)
}

/// [`bounded`] with a chosen limit.
pub fn bounded_for<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let name = thread::current().name().unwrap_or("bounded").to_owned();
    let worker = thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn the test's OS thread");
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the worker sends before it returns"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("test body hung: still running after {limit:?}"),
    }
}

/// A flag shared with code that runs later on the same OS thread.
pub fn flag() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(false))
}

/// Sets its flag when dropped: proves a stack was unwound past it.
pub struct SetOnDrop(pub Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Runs `f`, expecting it to panic; returns the panic's message.
pub fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match panic::catch_unwind(panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, but the call returned"),
        Err(p) => panic_message(&*p),
    }
}

/// The environment variable that tells a child test to do its real work.
pub const CHILD_ENV: &str = "GREENHUB_TEST_CHILD";

/// Whether this process is a child started by [`run_child`] for `mode`.
pub fn is_child(mode: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == mode)
}

/// What a child process did.
#[derive(Debug)]
pub struct ChildOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Re-runs the test `test` of this test binary alone in a child process,
/// with [`CHILD_ENV`] set to `mode`; kills it and fails if it runs longer
/// than `limit`.
pub fn run_child(test: &str, mode: &str, limit: Duration) -> ChildOutput {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode);
    run_bounded(cmd, &format!("child test `{test}` ({mode})"), limit)
}

/// Runs `cmd` to its end with its output captured; kills it and fails if
/// it runs longer than `limit` (`what` names it in that message).
pub fn run_bounded(mut cmd: Command, what: &str, limit: Duration) -> ChildOutput {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    // Read both pipes while waiting, so a chatty child cannot block on a full pipe.
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
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}: killed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    ChildOutput {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Runs `test` in a child process (see [`run_child`]) and fails unless it
/// exits successfully having printed `marker` (so a child that returned
/// early, not being in child mode, cannot pass).
pub fn assert_child_passes(test: &str, mode: &str, limit: Duration, marker: &str) {
    let out = run_child(test, mode, limit);
    assert!(
        out.status.success(),
        "child failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains(marker), "child did not run: {}", out.stdout);
}

/// Builds example `name` with the profile of this test binary and returns
/// the path of its executable, so that a test can run (and signal) the
/// example's own process rather than a `cargo run` wrapping it.
pub fn example_path(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let mut build = Command::new(env!("CARGO"));
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--example", name]);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build for the example");
    assert!(status.success(), "cargo build --example {name} failed: {status}");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "example binary not found at {}", path.display());
    path
}

/// A child process that is killed (and reaped) when dropped, so a failing
/// test never leaves it running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the built example `name` (see [`example_path`]) with `args`, its
/// stdout read line by line; the process is killed when the guard drops.
pub fn start_example(name: &str, args: &[&str]) -> (KillOnDrop, mpsc::Receiver<String>) {
    let mut child = KillOnDrop(
        Command::new(example_path(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start example {name}: {e}")),
    );
    let lines = lines_of(child.0.stdout.take().expect("piped stdout"));
    (child, lines)
}

/// Sends every line of `pipe` to the returned receiver, from a thread of
/// its own, so a test can wait for a line with a timeout.
pub fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to `limit` for a line starting with `prefix`; returns it and
/// every line before it.
pub fn wait_for_line(lines: &mpsc::Receiver<String>, prefix: &str, limit: Duration) -> (String, Vec<String>) {
    let deadline = Instant::now() + limit;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return (line, before),
            Ok(line) => before.push(line),
            Err(e) => panic!("no line starting with {prefix:?} within {limit:?} ({e}); got {before:?}"),
        }
    }
}

/// Waits up to `limit` for `child` to exit; kills it and fails after.
pub fn wait_exit(child: &mut std::process::Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child process still running after {limit:?}: killed");
        }
        thread::sleep(Duration::from_millis(10));
    }
}
