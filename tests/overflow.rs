//! Stack overflow in a green thread: a clear report and an abort, in a child
//! process; other segfaults still reach the previous handler.

#![cfg(unix)]

mod util;

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use util::{is_child, run_child, ChildOutput};

const SIGABRT: i32 = 6;
const SIGSEGV: i32 = 11;
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// Recurses without bound, each frame holding a 4 KiB array the optimiser
/// cannot remove.
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 4096];
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(black_box(depth + 1));
    below + u64::from(frame[(depth % 4096) as usize])
}

/// Finds `green thread '<name>' (#<id>) overflowed its <kib> KiB stack` in
/// `stderr`, with any id.
fn has_report(stderr: &str, name: &str, kib: usize) -> bool {
    let head = format!("green thread '{name}' (#");
    let tail = format!(") overflowed its {kib} KiB stack");
    stderr.lines().any(|line| {
        let Some(start) = line.find(&head) else {
            return false;
        };
        let rest = &line[start + head.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with(&tail)
    })
}

fn describe(out: &ChildOutput) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status, out.stdout, out.stderr
    )
}

#[test]
fn named_overflow_reports_and_aborts() {
    let out = run_child("child_overflow", "named", CHILD_LIMIT);
    assert_eq!(out.status.signal(), Some(SIGABRT), "{}", describe(&out));
    assert!(has_report(&out.stderr, "deep-diver", 128), "{}", describe(&out));
}

#[test]
fn unnamed_overflow_reports_and_aborts() {
    let out = run_child("child_overflow", "unnamed", CHILD_LIMIT);
    assert_eq!(out.status.signal(), Some(SIGABRT), "{}", describe(&out));
    let kib = greenhub::DEFAULT_STACK_SIZE / 1024;
    assert!(has_report(&out.stderr, "<unnamed>", kib), "{}", describe(&out));
}

#[test]
fn other_segfaults_still_crash_with_sigsegv() {
    let out = run_child("child_overflow", "wild-write", CHILD_LIMIT);
    assert_eq!(out.status.signal(), Some(SIGSEGV), "{}", describe(&out));
    assert!(!out.stderr.contains("overflowed its"), "{}", describe(&out));
}

/// Run by the tests above in a child process; returns at once otherwise.
#[test]
fn child_overflow() {
    let mode = ["named", "unnamed", "wild-write"]
        .into_iter()
        .find(|m| is_child(m));
    let h = match mode {
        None => return,
        Some("named") => greenhub::Builder::new()
            .name("deep-diver")
            .stack_size(128 * 1024)
            .spawn(|| recurse(0))
            .unwrap(),
        Some("unnamed") => greenhub::spawn(|| recurse(0)),
        Some(_) => greenhub::spawn(|| {
            // SAFETY: not safe at all: this writes to an unmapped address on
            // purpose, to check that the fault still kills the process.
            unsafe { std::ptr::write_volatile(16 as *mut u64, 1) };
            0
        }),
    };
    let r = h.join();
    // Reaching here means the child did not crash: the parent test fails on the exit status.
    println!("child survived: {:?}", r.map_err(|e| e.to_string()));
}
