//! greenhub::debug: green thread names in panics, the blocking monitor, run
//! info, the SIGQUIT dump and the switch hook. What prints on stderr is
//! checked in child processes (re-running one test of this binary with the
//! environment variables set).

mod util;

use std::cell::RefCell;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use util::{is_child, run_bounded, ChildOutput, CHILD_ENV};

const LIMIT: Duration = Duration::from_secs(30);

/// Runs test `test` alone in a child process in child mode `test`, with `env`.
fn child(test: &str, env: &[(&str, &str)]) -> ChildOutput {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env_remove("GREENHUB_MONITOR")
        .env_remove("GREENHUB_DUMP_ON_SIGQUIT")
        .env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_bounded(cmd, test, LIMIT);
    assert!(
        out.status.success(),
        "child `{test}` failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains("CHILD DONE"),
        "child `{test}` did not run:\n{}",
        out.stdout
    );
    out
}

/// A green thread named "busy" that computes for 300 ms, then one named
/// "sleeper" that blocks its OS thread in `std::thread::sleep` for 300 ms.
#[test]
fn child_blocking() {
    if !is_child("child_blocking") {
        return;
    }
    let busy = greenhub::Builder::new()
        .name("busy")
        .spawn(|| {
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_millis(300) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            x
        })
        .unwrap();
    busy.join().unwrap();
    let sleeper = greenhub::Builder::new()
        .name("sleeper")
        .spawn(|| std::thread::sleep(Duration::from_millis(300)))
        .unwrap();
    sleeper.join().unwrap();
    // A hub that waits (here: a green thread sleeping on the hub) is idle, not stalled.
    greenhub::spawn(|| greenhub::sleep(Duration::from_millis(300)))
        .join()
        .unwrap();
    println!("CHILD DONE");
}

#[test]
fn the_monitor_names_a_green_thread_that_computes_and_one_that_blocks_the_os_thread() {
    let out = child("child_blocking", &[("GREENHUB_MONITOR", "1")]);
    let err = &out.stderr;
    for name in ["busy", "sleeper"] {
        let line = format!("green thread '{name}' (#");
        assert_eq!(
            err.matches(&line).count(),
            1,
            "one report for {name} (once per stall):\n{err}"
        );
    }
    assert_eq!(
        err.matches("has not switched for").count(),
        2,
        "no report for an idle hub:\n{err}"
    );
    assert!(err.contains("spawned at tests/debug.rs:"), "{err}");
    assert!(err.contains("the hub of thread 'child_blocking'"), "{err}");
}

#[test]
fn the_monitor_is_off_by_default() {
    let out = child("child_blocking", &[]);
    assert!(!out.stderr.contains("greenhub monitor"), "{}", out.stderr);
}

#[test]
fn the_monitor_threshold_comes_from_the_environment() {
    // 1 s: neither 300 ms stall is reported.
    let out = child(
        "child_blocking",
        &[("GREENHUB_MONITOR", "1"), ("GREENHUB_MAX_BLOCKING_MS", "1000")],
    );
    assert!(!out.stderr.contains("greenhub monitor"), "{}", out.stderr);
}

#[test]
fn child_monitor_callback() {
    if !is_child("child_monitor_callback") {
        return;
    }
    use greenhub::debug::monitor;
    let (tx, rx) = std::sync::mpsc::channel();
    monitor::start(
        monitor::Config::new()
            .max_blocking_time(Duration::from_millis(50))
            .on_report(move |r| tx.send(r.clone()).unwrap()),
    );
    let h = greenhub::Builder::new()
        .name("stuck")
        .spawn(|| std::thread::sleep(Duration::from_millis(200)))
        .unwrap();
    let id = h.id();
    h.join().unwrap();
    let report = rx.recv_timeout(Duration::from_secs(5)).expect("a report");
    assert_eq!(report.green_thread, Some(id));
    assert!(report.blocked_for >= Duration::from_millis(50), "{report:?}");
    assert!(report.spawned_at.unwrap().file().ends_with("debug.rs"));
    // Started with the API after this hub's first spawn: the name is known
    // from spawns after `start`.
    assert_eq!(report.name.as_deref(), Some("stuck"));
    println!("CHILD DONE");
}

#[test]
fn the_monitor_reports_to_a_callback() {
    let out = child("child_monitor_callback", &[]);
    assert!(
        !out.stderr.contains("greenhub monitor"),
        "reports go to the callback only:\n{}",
        out.stderr
    );
}

#[test]
fn child_panic() {
    if !is_child("child_panic") {
        return;
    }
    let h = greenhub::Builder::new()
        .name("panicker")
        .spawn(|| -> () { panic!("boom in a green thread") })
        .unwrap();
    let id = h.id();
    let err = h.join().unwrap_err();
    println!("JOIN ERROR: {err} / id {id}");
    println!("CHILD DONE");
}

#[test]
fn a_panic_names_its_green_thread() {
    let out = child("child_panic", &[]);
    let id: u64 = out
        .stdout
        .split("/ id ")
        .nth(1)
        .and_then(|s| s.trim().lines().next())
        .and_then(|s| s.trim().parse().ok())
        .expect("the child prints the id");
    let expected = format!("green thread 'panicker' (#{id}) panicked at tests/debug.rs:");
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert!(out.stderr.contains("boom in a green thread"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("thread 'child_panic'"),
        "std's own line is replaced:\n{}",
        out.stderr
    );
}

#[test]
fn child_user_hook() {
    if !is_child("child_user_hook") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let who = greenhub::current_name().unwrap_or_default();
        eprintln!("USER HOOK in '{who}': {info}");
    }));
    let h = greenhub::Builder::new()
        .name("panicker")
        .spawn(|| -> () { panic!("boom") })
        .unwrap();
    assert!(h.join().is_err());
    println!("CHILD DONE");
}

#[test]
fn a_panic_hook_set_before_first_use_is_kept() {
    let out = child("child_user_hook", &[]);
    assert!(out.stderr.contains("USER HOOK in 'panicker'"), "{}", out.stderr);
    assert!(!out.stderr.contains("green thread 'panicker'"), "{}", out.stderr);
}

/// The `N` of "parked: ... for N ms" in a run info line.
fn waited_ms(line: &str) -> u64 {
    let rest = &line[line
        .find(" for ")
        .unwrap_or_else(|| panic!("no wait time in {line}"))
        + 5..];
    rest[..rest.find(" ms").unwrap()].parse().unwrap()
}

#[test]
fn run_info_lists_a_green_thread_parked_in_a_read_with_its_fd() {
    let (a, mut b) = greenhub::net::UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    let reader = greenhub::Builder::new()
        .name("reader")
        .spawn(move || {
            let mut buf = [0u8; 8];
            b.read(&mut buf).unwrap()
        })
        .unwrap();
    let sleeper = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(30)));
    let joiner_target = reader.id();
    greenhub::yield_now();
    // Both have waited about this long when run info is taken.
    greenhub::sleep(Duration::from_millis(250));
    let fresh = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(30)));
    greenhub::yield_now();
    let text = greenhub::debug::run_info().to_string();
    let line = text
        .lines()
        .find(|l| l.contains("'reader'"))
        .unwrap_or_else(|| panic!("no line for the reader:\n{text}"));
    assert!(line.contains(&format!("#{joiner_target}")), "{text}");
    assert!(line.contains(&format!("parked: read on fd {fd} for ")), "{text}");
    assert!((200..30_000).contains(&waited_ms(line)), "{text}");
    assert!(line.contains("spawned at tests/debug.rs:"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(&format!("#{} ", sleeper.id())))
        .unwrap_or_else(|| panic!("no line for the sleeper:\n{text}"));
    assert!(
        line.contains("parked: sleep for ") && line.contains(" ms, wakes in "),
        "{text}"
    );
    assert!((200..30_000).contains(&waited_ms(line)), "{text}");
    // One that parked just now has waited less than the others.
    let line = text
        .lines()
        .find(|l| l.contains(&format!("#{} ", fresh.id())))
        .unwrap_or_else(|| panic!("no line for the fresh sleeper:\n{text}"));
    assert!(waited_ms(line) < 200, "{text}");
    fresh.kill();
    assert!(text.lines().any(|l| l.contains("#0 main: running")), "{text}");
    assert!(text.contains("fds registered (1 waited on)"), "{text}");
    drop(a); // EOF: the reader returns
    assert_eq!(reader.join().unwrap(), 0);
    sleeper.kill();
}

#[test]
fn run_info_says_whom_a_join_waits_for() {
    let target = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(30)));
    let tid = target.id();
    let joiner = greenhub::Builder::new()
        .name("joiner")
        .spawn(move || target.join().is_err())
        .unwrap();
    greenhub::yield_now();
    let text = greenhub::debug::run_info().to_string();
    let line = text.lines().find(|l| l.contains("'joiner'")).unwrap();
    assert!(line.contains(&format!("parked: join of #{tid}")), "{text}");
    let q = Rc::new(greenhub::sync::Queue::<u8>::new());
    let q2 = q.clone();
    let getter = greenhub::Builder::new()
        .name("getter")
        .spawn(move || q2.get())
        .unwrap();
    greenhub::yield_now();
    let text = greenhub::debug::run_info().to_string();
    let line = text.lines().find(|l| l.contains("'getter'")).unwrap();
    assert!(line.contains("parked: Queue get"), "{text}");
    q.put(1).unwrap();
    assert_eq!(getter.join().unwrap().ok(), Some(1));
    joiner.kill();
}

#[test]
fn child_sigquit() {
    if !is_child("child_sigquit") {
        return;
    }
    let (_a, mut b) = greenhub::net::UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    let reader = greenhub::Builder::new()
        .name("reader")
        .spawn(move || {
            let mut buf = [0u8; 8];
            let _ = b.read(&mut buf);
        })
        .unwrap();
    greenhub::yield_now();
    println!("READER FD {fd}");
    greenhub::signal::raise(greenhub::signal::SIGQUIT).unwrap();
    greenhub::sleep(Duration::from_millis(300));
    reader.kill();
    println!("CHILD DONE");
}

#[test]
fn sigquit_dumps_run_info_and_the_process_goes_on() {
    let out = child("child_sigquit", &[("GREENHUB_DUMP_ON_SIGQUIT", "1")]);
    let fd = out
        .stdout
        .split("READER FD ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim();
    assert!(
        out.stderr.contains("hub of thread 'child_sigquit'"),
        "{}",
        out.stderr
    );
    let line = out.stderr.lines().find(|l| l.contains("'reader'")).unwrap_or("");
    assert!(
        line.contains(&format!("parked: read on fd {fd}")),
        "{}",
        out.stderr
    );
}

#[test]
fn the_switch_hook_sees_every_switch() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let seen = calls.clone();
    let s = seen.clone();
    greenhub::debug::set_switch_hook(Some(Box::new(move |from, to| s.borrow_mut().push((from, to)))));
    let a = greenhub::spawn(|| {
        for _ in 0..3 {
            greenhub::yield_now();
        }
    });
    let b = greenhub::spawn(|| {
        for _ in 0..3 {
            greenhub::yield_now();
        }
    });
    let (ia, ib) = (a.id(), b.id());
    greenhub::join_all([&a, &b]);
    assert!(greenhub::debug::set_switch_hook(None).is_some());
    let seen = calls.borrow();
    assert_eq!(seen.first(), Some(&(0, ia)), "{seen:?}");
    assert!(seen.iter().filter(|&&s| s == (ia, ib)).count() >= 3, "{seen:?}");
    assert!(seen.iter().filter(|&&s| s == (ib, ia)).count() >= 3, "{seen:?}");
    assert_eq!(seen.last().map(|s| s.1), Some(0), "{seen:?}");
    // Consecutive: each switch starts where the last one ended.
    assert!(seen.windows(2).all(|w| w[0].1 == w[1].0), "{seen:?}");
    let n = seen.len();
    drop(seen);
    greenhub::spawn(|| ()).join().unwrap();
    assert_eq!(calls.borrow().len(), n, "removed: no more calls");
}

#[test]
fn run_info_tells_ready_not_started_and_waiting_for_a_switch() {
    let ready = greenhub::Builder::new().name("queued").spawn(|| ()).unwrap();
    let fresh = greenhub::Greenlet::new(|(): ()| ());
    let paused = greenhub::Greenlet::new(|(): ()| {
        greenhub::Greenlet::current()
            .parent()
            .unwrap()
            .switch::<(), ()>(());
    });
    paused.switch::<(), ()>(()); // it runs, then switches back here
    let text = greenhub::debug::run_info().to_string();
    let line_of = |id: u64| {
        text.lines()
            .find(|l| l.starts_with(&format!("  #{id} ")))
            .unwrap_or_else(|| panic!("no #{id} in:\n{text}"))
            .to_owned()
    };
    let queued = line_of(ready.id());
    assert!(
        queued.contains("'queued' spawned at tests/debug.rs:") && queued.ends_with(": ready"),
        "{text}"
    );
    assert!(line_of(fresh.id()).ends_with(": not started"), "{text}");
    assert!(line_of(paused.id()).ends_with(": waiting for a switch"), "{text}");
    ready.join().unwrap();
    paused.switch::<(), ()>(());
    let text = greenhub::debug::run_info().to_string();
    assert!(
        !text.contains(&format!("#{} ", paused.id())),
        "an ended green thread is not listed:\n{text}"
    );
}

#[test]
fn a_panicking_switch_hook_is_removed() {
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    greenhub::debug::set_switch_hook(Some(Box::new(move |_, _| {
        *c.borrow_mut() += 1;
        panic!("hook fails");
    })));
    greenhub::spawn(greenhub::yield_now).join().unwrap();
    assert_eq!(*calls.borrow(), 1, "called once, then removed");
    assert!(greenhub::debug::set_switch_hook(None).is_none());
}

#[test]
fn run_info_lists_no_freed_green_thread() {
    // More than one slab chunk (256 records) of green threads, all ended
    // and dropped: their slots are free and must not be listed.
    let ids: Vec<u64> = (0..600)
        .map(|_| {
            let h = greenhub::spawn(|| ());
            let id = h.id();
            h.join().unwrap();
            id
        })
        .collect();
    let keep = greenhub::Builder::new()
        .name("kept")
        .spawn(|| greenhub::sleep(Duration::from_secs(30)))
        .unwrap();
    greenhub::yield_now();
    let info = greenhub::debug::run_info();
    assert!(info.green_threads.iter().all(|g| !ids.contains(&g.id)), "{info}");
    assert!(info.green_threads.iter().any(|g| g.id == keep.id()), "{info}");
    keep.kill();
}
