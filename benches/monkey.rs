//! What an interposed libc call costs when it does not cooperate: a
//! `read` of 0 bytes from `/dev/null` (the cheapest real system call) made
//! through greenhub's `read`, against the same call made with `syscall(2)`
//! directly and through glibc's own `read` (found with `dlsym(RTLD_NEXT)`:
//! what a program without the feature pays).
//!
//! - `raw syscall`: `libc::syscall(SYS_read, ..)`;
//! - `glibc read`: libc's `read`;
//! - `ours, before patch_all`: greenhub's `read` (one relaxed load, then the
//!   system call);
//! - `ours, patched, OS thread`: after `patch_all`, on a thread with no hub
//!   (plus the check that this is not a green thread);
//! - `ours, patched, green thread`: after `patch_all`, in a green thread, on
//!   an fd that does not cooperate (a character device: its bookkeeping is
//!   looked up, then the system call).
//!
//! The added cost is the median over many short batches of (the call's
//! time minus the raw call's time in the batch beside it): on a loaded
//! machine a system call's own time drifts by far more than 5 ns between
//! rounds, and pairing cancels most of that (target: <= 5 ns added). The echo comparison of a
//! std::net server under `patch_all` against the same on `greenhub::net` is
//! in the echo bench: `cargo bench --bench echo --features monkey`.
//!
//! Run: `cargo bench --bench monkey --features monkey`. Without `--bench`
//! it runs a quick smoke version.

mod common;

use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::time::Instant;

use common::{ns_per, Mode, Table};

type ReadFn = unsafe extern "C" fn(libc::c_int, *mut libc::c_void, libc::size_t) -> libc::ssize_t;

fn glibc_read() -> ReadFn {
    // SAFETY: the name is a C string; the next `read` is glibc's, of this type.
    unsafe {
        let p = libc::dlsym(libc::RTLD_NEXT, c"read".as_ptr());
        assert!(!p.is_null(), "glibc's read not found");
        std::mem::transmute::<*mut libc::c_void, ReadFn>(p)
    }
}

/// Nanoseconds per call of `call` over `n` calls.
fn time(n: u64, call: impl Fn() -> isize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        black_box(call());
    }
    ns_per(start.elapsed(), n)
}

fn main() {
    let mode = Mode::from_args();
    let n: u64 = mode.pick(2_000, 200);
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let fd = null.as_raw_fd();
    // Reads of 0 bytes write nothing: any address will do, and a usize
    // can go to another thread.
    let mut buf = [0u8; 1];
    let addr = buf.as_mut_ptr() as usize;
    let glibc = glibc_read();
    // SAFETY: reads 0 bytes into a live buffer from an open fd.
    let raw = move || unsafe { libc::syscall(libc::SYS_read, fd, addr, 0) as isize };
    // SAFETY: as above.
    let ours = move || unsafe { libc::read(fd, addr as *mut libc::c_void, 0) };
    // SAFETY: as above.
    let theirs = move || unsafe { glibc(fd, addr as *mut libc::c_void, 0) };

    let batches = mode.pick(300, 3);
    let mut table = Table::new();
    let mut added = Vec::new();
    let mut run = |name: &'static str, pairs: Vec<(f64, f64)>| {
        let (base, case): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        let diff: Vec<f64> = pairs.iter().map(|(b, c)| c - b).collect();
        table.add(&format!("{name}: raw syscall"), "ns", &base, None);
        table.add(&format!("{name}: the call"), "ns", &case, None);
        table.add(&format!("{name}: added"), "ns", &diff, Some(5.0));
        added.push((name, common::summarize(&diff).median));
    };
    // Before patch_all: glibc's read, and ours, each paired with the raw call.
    run("glibc read", paired(batches, n, raw, theirs));
    run("ours, before patch_all", paired(batches, n, raw, ours));
    let os = std::thread::spawn(move || paired(batches, n, raw, ours))
        .join()
        .expect("OS thread");
    run("ours, before patch_all, OS thread", os);
    greenhub::monkey::patch_all().expect("patch_all");
    let os = std::thread::spawn(move || paired(batches, n, raw, ours))
        .join()
        .expect("OS thread");
    run("ours, patched, OS thread", os);
    let green = greenhub::spawn(move || paired(batches, n, raw, ours))
        .join()
        .expect("green thread");
    run("ours, patched, green thread", green);
    table.print(&mode.title(&format!(
        "a non-cooperating read(2) of 0 bytes: ns per call, {batches} alternating batches of {n}"
    )));
    println!();
    for (case, ns) in added {
        let verdict = if ns <= 5.0 { "ok" } else { "OVER" };
        println!("added by {case:<30} {ns:>6.1} ns median  (target <= 5 ns) {verdict}");
    }
}

/// `batches` pairs of (ns per call of `base`, of `case`), each timed over
/// `n` calls, alternating which goes first, so that drift of a loaded
/// machine hits both alike.
fn paired(
    batches: usize,
    n: u64,
    base: impl Fn() -> isize + Copy,
    case: impl Fn() -> isize + Copy,
) -> Vec<(f64, f64)> {
    (0..batches)
        .map(|i| {
            if i % 2 == 0 {
                let b = time(n, base);
                (b, time(n, case))
            } else {
                let c = time(n, case);
                (time(n, base), c)
            }
        })
        .collect()
}
