//! Tests of the stack pool, guards, error messages and overflow report.
//! Tests that crash on purpose or count process-wide mappings run in a child
//! process: the test binary re-run on that one test.

use super::*;
use corosensei::stack::Stack as _;
use corosensei::Coroutine;
use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

thread_local! {
    /// What these tests tell the fault handler runs (the greenlet layer
    /// answers from its own record instead).
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
}

fn describe() -> Option<Running> {
    RUNNING.try_with(Cell::get).ok().flatten()
}

fn set_running(running: Option<Running>) {
    RUNNING.set(running);
}

fn install_overflow_handler() {
    super::install_overflow_handler(describe);
}

/// Set in the child process, which then does the test's work.
const CHILD_ENV: &str = "GREENHUB_CHILD";

/// In the parent, re-runs test `test` of this module in a child process
/// with `envs` set and returns its output; in the child, returns `None`.
fn rerun_in_child(test: &str, envs: &[(&str, &str)]) -> Option<Output> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return None;
    }
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("{module}::{test}"), "--nocapture"])
        // The child runs the named test even when it is an ignored one.
        .args(["--test-threads=1", "--include-ignored"])
        .env(CHILD_ENV, "1")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    Some(output)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_child_passed(output: &Output) {
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{out}\n{}",
        stderr(output)
    );
    assert!(out.contains("1 passed"), "child ran no test:\n{out}");
}

fn assert_died_by(output: &Output, signal: libc::c_int) {
    assert_eq!(
        output.status.signal(),
        Some(signal),
        "child exited with {:?}; stderr:\n{}",
        output.status,
        stderr(output)
    );
}

/// Recurses until the stack overflows; big frames, opaque to the optimiser.
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + u64::from(frame[1])
}

/// Runs a coroutine named `name` (#`id`) on `stack` that overflows it.
fn overflow_on(stack: Stack, name: &'static str, id: u64) {
    install_overflow_handler();
    let (guard_lo, guard_hi) = stack.guard();
    set_running(Some(Running {
        guard_lo,
        guard_hi,
        size: stack.usable_size(),
        id,
        name: Some(NonNull::from(name)),
    }));
    let mut coroutine = Coroutine::<(), (), u64, Stack>::with_stack(stack, |_, ()| recurse(0));
    coroutine.resume(());
}

fn top(stack: &Stack) -> usize {
    stack.base().get()
}

#[test]
fn stack_is_sixteen_bytes() {
    assert_eq!(std::mem::size_of::<Stack>(), 16);
    assert_eq!(std::mem::size_of::<Option<Stack>>(), 16);
}

#[test]
fn dropped_stack_is_reused() {
    let stack = Stack::new(DEFAULT_STACK_SIZE).unwrap();
    let (base, (lo, hi)) = (top(&stack), stack.guard());
    assert_eq!(stack.usable_size(), DEFAULT_STACK_SIZE);
    assert_eq!(hi, base - DEFAULT_STACK_SIZE);
    assert_eq!(hi - lo, sys::page_size());
    assert_eq!(stack.limit().get(), lo);
    drop(stack);
    assert_eq!(top(&Stack::new(DEFAULT_STACK_SIZE).unwrap()), base);
}

#[test]
fn sizes_round_to_pages_and_classes_stay_apart() {
    assert_eq!(Stack::new(1).unwrap().usable_size(), MIN_STACK_SIZE);
    let odd = Stack::new(5000).unwrap();
    assert_eq!(odd.usable_size(), 5000usize.next_multiple_of(sys::page_size()));
    let base = top(&odd);
    drop(odd);
    assert_ne!(top(&Stack::new(64 * 1024 * 3).unwrap()), base);
    assert_eq!(top(&Stack::new(5000).unwrap()), base);
}

#[test]
fn oversized_request_is_invalid_input() {
    let err = Stack::new(8 << 30).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("larger than 4 GiB"), "{err}");
}

#[test]
fn overflow_report_format() {
    let mut running = Running {
        guard_lo: 0,
        guard_hi: 0,
        size: 64 * 1024,
        id: 42,
        name: Some(NonNull::from("worker")),
    };
    let expected = "green thread 'worker' (#42) overflowed its 64 KiB stack\n";
    assert_eq!(overflow_report(&running).as_bytes(), expected.as_bytes());
    (running.name, running.id) = (None, u64::MAX);
    let expected = format!(
        "green thread '<unnamed>' (#{}) overflowed its 64 KiB stack\n",
        u64::MAX
    );
    assert_eq!(overflow_report(&running).as_bytes(), expected.as_bytes());
}

#[test]
fn overflow_is_reported_and_aborts() {
    if let Some(output) = rerun_in_child("overflow_is_reported_and_aborts", &[]) {
        assert_died_by(&output, libc::SIGABRT);
        let expected = "green thread 'deep' (#7) overflowed its 64 KiB stack\n";
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        return;
    }
    overflow_on(Stack::new(DEFAULT_STACK_SIZE).unwrap(), "deep", 7);
}

#[test]
fn other_faults_reach_the_default_action() {
    if let Some(output) = rerun_in_child("other_faults_reach_the_default_action", &[]) {
        assert_died_by(&output, libc::SIGSEGV);
        assert!(!stderr(&output).contains("overflowed"), "{}", stderr(&output));
        return;
    }
    install_overflow_handler();
    let stack = Stack::new(DEFAULT_STACK_SIZE).unwrap();
    let (guard_lo, guard_hi) = stack.guard();
    let size = stack.usable_size();
    set_running(Some(Running {
        guard_lo,
        guard_hi,
        size,
        id: 1,
        name: None,
    }));
    // SAFETY: deliberately invalid: the test wants the fault.
    black_box(unsafe { std::ptr::read_volatile(black_box(8usize) as *const u8) });
}

#[test]
fn root_stack_overflow_is_still_reported_by_std() {
    if let Some(output) = rerun_in_child("root_stack_overflow_is_still_reported_by_std", &[]) {
        assert_died_by(&output, libc::SIGABRT);
        assert!(
            stderr(&output).contains("has overflowed its stack"),
            "{}",
            stderr(&output)
        );
        return;
    }
    install_overflow_handler();
    set_running(None);
    black_box(recurse(0));
}

/// Turns off the signal stack std gave this thread, to stand for a thread
/// created outside std.
fn disable_alt_stack() {
    let disable = libc::stack_t {
        ss_sp: std::ptr::null_mut(),
        ss_flags: libc::SS_DISABLE,
        ss_size: 0,
    };
    // SAFETY: no signal handler is running on this thread.
    let rc = unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

#[test]
fn signal_stack_is_added_where_missing() {
    std::thread::spawn(|| {
        disable_alt_stack();
        install_overflow_handler();
        // SAFETY: all-zero is a valid stack_t to write into.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: querying only; `current` is valid to write.
        let rc = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
        assert_eq!(rc, 0);
        assert_eq!(current.ss_flags & libc::SS_DISABLE, 0);
    })
    .join()
    .unwrap();
}

#[test]
fn overflow_is_reported_on_a_thread_without_signal_stack() {
    let test = "overflow_is_reported_on_a_thread_without_signal_stack";
    if let Some(output) = rerun_in_child(test, &[]) {
        assert_died_by(&output, libc::SIGABRT);
        let expected = "green thread 'bare' (#5) overflowed its 64 KiB stack\n";
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        return;
    }
    std::thread::spawn(|| {
        disable_alt_stack();
        overflow_on(Stack::new(DEFAULT_STACK_SIZE).unwrap(), "bare", 5);
    })
    .join()
    .unwrap();
}

#[test]
fn pool_unmaps_its_stacks_at_thread_exit() {
    let env = [(GUARD_ENV, "mprotect")];
    if let Some(output) = rerun_in_child("pool_unmaps_its_stacks_at_thread_exit", &env) {
        return assert_child_passed(&output);
    }
    let take_and_return = || {
        drop(
            (0..10)
                .map(|_| Stack::new(32 * 1024).unwrap())
                .collect::<Vec<_>>(),
        )
    };
    // The first thread leaves its own stack in libc's cache for the second.
    std::thread::spawn(|| {}).join().unwrap();
    let Some(before) = sys::mapping_count() else {
        return;
    };
    std::thread::spawn(take_and_return).join().unwrap();
    assert_eq!(sys::mapping_count().unwrap(), before);
}

#[test]
fn stack_outliving_its_pool_is_leaked_safely() {
    thread_local! {
        static HELD: RefCell<Option<Stack>> = const { RefCell::new(None) };
    }
    std::thread::spawn(|| {
        // Registered before the pool's, so destroyed after it on most
        // platforms: the stack is dropped when its pool is gone.
        HELD.with(|_| {});
        let stack = Stack::new(DEFAULT_STACK_SIZE).unwrap();
        HELD.with(|held| *held.borrow_mut() = Some(stack));
    })
    .join()
    .unwrap();
}

#[test]
fn mprotect_fallback_via_env() {
    let env = [(GUARD_ENV, "mprotect")];
    if let Some(output) = rerun_in_child("mprotect_fallback_via_env", &env) {
        assert_died_by(&output, libc::SIGABRT);
        let expected = "green thread 'fallback' (#3) overflowed its 32 KiB stack\n";
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        return;
    }
    assert_eq!(guard_mode(), GuardMode::Separate);
    if let Some(before) = sys::mapping_count() {
        let stacks: Vec<Stack> = (0..100).map(|_| Stack::new(32 * 1024).unwrap()).collect();
        let added = sys::mapping_count().unwrap() - before;
        assert!((200..=210).contains(&added), "{added} mappings for 100 stacks");
        drop(stacks);
    }
    overflow_on(Stack::new(32 * 1024).unwrap(), "fallback", 3);
}

/// Slots are carved and guarded `CARVE_BATCH` at a time: the ones handed
/// out later from `fresh` are guarded too, and come in address order.
#[test]
fn every_slot_of_a_carved_batch_is_guarded() {
    if guard_mode() != GuardMode::Slab {
        return;
    }
    if std::env::var_os(CHILD_ENV).is_none() {
        for which in ["second", "last"] {
            let test = "every_slot_of_a_carved_batch_is_guarded";
            let output = rerun_in_child(test, &[("GREENHUB_TEST_SLOT", which)]).unwrap();
            assert_died_by(&output, libc::SIGABRT);
            let expected = format!("green thread '{which}' (#11) overflowed its 192 KiB stack\n");
            assert!(
                stderr(&output).contains(&expected),
                "{which}: {}",
                stderr(&output)
            );
        }
        return;
    }
    const SIZE: usize = 192 * 1024; // a class of its own: a fresh batch
    let mut stacks: Vec<Stack> = (0..CARVE_BATCH).map(|_| Stack::new(SIZE).unwrap()).collect();
    for pair in stacks.windows(2) {
        assert_eq!(
            top(&pair[1]),
            top(&pair[0]) + SIZE + guard_size(),
            "address order"
        );
    }
    let (stack, name) = match std::env::var("GREENHUB_TEST_SLOT").as_deref() {
        Ok("second") => (stacks.swap_remove(1), "second"),
        _ => (stacks.pop().unwrap(), "last"),
    };
    overflow_on(stack, name, 11);
}

#[test]
fn guard_survives_memory_release() {
    if guard_mode() != GuardMode::Slab {
        return;
    }
    if let Some(output) = rerun_in_child("guard_survives_memory_release", &[]) {
        assert_died_by(&output, libc::SIGABRT);
        let expected = "green thread 'cold' (#9) overflowed its 1024 KiB stack\n";
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        return;
    }
    const SIZE: usize = 1 << 20;
    let stacks: Vec<Stack> = (0..=hot_limit(SIZE)).map(|_| Stack::new(SIZE).unwrap()).collect();
    for stack in &stacks {
        // SAFETY: the top byte of a stack we own and no coroutine uses.
        unsafe { ((top(stack) - 1) as *mut u8).write(0x5a) };
    }
    let released = top(stacks.first().unwrap());
    drop(stacks);
    // One stack over the hot limit: the oldest returned is released.
    assert!(!trim(usize::MAX));
    let hot: Vec<Stack> = (0..hot_limit(SIZE)).map(|_| Stack::new(SIZE).unwrap()).collect();
    let cold = Stack::new(SIZE).unwrap();
    assert_eq!(top(&cold), released);
    // SAFETY: as above; the pool released its memory, so it reads zero.
    assert_eq!(unsafe { ((released - 1) as *const u8).read() }, 0);
    drop(hot);
    overflow_on(cold, "cold", 9);
}

/// Takes and drops 100,000 stacks in rounds of 500, more than stay hot, and
/// checks the mapping count ends where it started.
fn take_drop_cycles_keep_mappings() {
    let round = || {
        drop(
            (0..500)
                .map(|_| Stack::new(DEFAULT_STACK_SIZE).unwrap())
                .collect::<Vec<_>>(),
        )
    };
    round();
    let Some(before) = sys::mapping_count() else {
        return;
    };
    for _ in 0..200 {
        round();
    }
    let after = sys::mapping_count().unwrap();
    assert!(after <= before, "mappings grew from {before} to {after}");
}

#[test]
fn mappings_steady_across_take_drop_cycles() {
    if let Some(output) = rerun_in_child("mappings_steady_across_take_drop_cycles", &[]) {
        return assert_child_passed(&output);
    }
    take_drop_cycles_keep_mappings();
}

#[test]
fn mappings_steady_across_take_drop_cycles_mprotect() {
    let env = [(GUARD_ENV, "mprotect")];
    if let Some(output) = rerun_in_child("mappings_steady_across_take_drop_cycles_mprotect", &env) {
        return assert_child_passed(&output);
    }
    assert_eq!(guard_mode(), GuardMode::Separate);
    take_drop_cycles_keep_mappings();
}

/// Maps `n` stacks at once and checks they cost a small share of the
/// kernel's mapping cap (in a child process: the mappings stay until exit).
fn many_stacks_fit_under_max_map_count(test: &str, n: usize) {
    if guard_mode() != GuardMode::Slab {
        return;
    }
    if let Some(output) = rerun_in_child(test, &[]) {
        return assert_child_passed(&output);
    }
    let mut stacks = Vec::with_capacity(n);
    for _ in 0..n {
        stacks.push(Stack::new(DEFAULT_STACK_SIZE).unwrap());
    }
    let count = sys::mapping_count().unwrap();
    let max = sys::max_map_count().unwrap();
    assert!(count < max / 10, "{count} mappings for {n} stacks (cap {max})");
}

/// 100,000 stacks: already past the cap with a mapping per guard, and
/// light enough (about 0.4 GB) for the default test run.
#[test]
fn many_stacks_fit_under_max_map_count_100k() {
    many_stacks_fit_under_max_map_count("many_stacks_fit_under_max_map_count_100k", 100_000);
}

/// The full million (about 4 GB and 10 s): ignored by default, run by its
/// own step in `.ci/test`.
#[test]
#[ignore = "maps 1,000,000 stacks (about 4 GB); run by .ci/test"]
fn million_stacks_fit_under_max_map_count() {
    many_stacks_fit_under_max_map_count("million_stacks_fit_under_max_map_count", 1_000_000);
}

#[test]
fn burst_gives_memory_back() {
    if guard_mode() != GuardMode::Slab {
        return;
    }
    if let Some(output) = rerun_in_child("burst_gives_memory_back", &[]) {
        return assert_child_passed(&output);
    }
    let mut stacks = Vec::with_capacity(100_000);
    let before = sys::resident_bytes().unwrap();
    for _ in 0..100_000 {
        let stack = Stack::new(DEFAULT_STACK_SIZE).unwrap();
        // SAFETY: the top byte of a stack we own and no coroutine uses.
        unsafe { ((top(&stack) - 1) as *mut u8).write(1) };
        stacks.push(stack);
    }
    let peak = sys::resident_bytes().unwrap() - before;
    drop(stacks);
    trim(usize::MAX);
    let after = sys::resident_bytes().unwrap().saturating_sub(before);
    assert!(peak >= 100_000 * 4096, "touched pages not resident: {peak} bytes");
    assert!(
        after < 16 << 20,
        "{after} bytes still resident after the burst (peak {peak})"
    );
}

#[test]
fn address_space_limit_error_is_explained() {
    if let Some(output) = rerun_in_child("address_space_limit_error_is_explained", &[]) {
        return assert_child_passed(&output);
    }
    sys::set_address_space_limit(2 << 30).unwrap();
    let err = Stack::new(3 << 30).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
    let message = err.to_string();
    assert!(
        message.contains("RLIMIT_AS") && message.contains("ulimit -v"),
        "{message}"
    );
}

#[test]
fn map_count_error_is_explained() {
    let env = [(GUARD_ENV, "mprotect")];
    if let Some(output) = rerun_in_child("map_count_error_is_explained", &env) {
        return assert_child_passed(&output);
    }
    let Some(max) = sys::max_map_count() else {
        return;
    };
    let mut stacks = Vec::with_capacity(max);
    let err = loop {
        match Stack::new(16 * 1024) {
            Ok(stack) => stacks.push(stack),
            Err(err) => break err,
        }
    };
    drop(stacks);
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
    let message = err.to_string();
    let expected = format!("vm.max_map_count is {max}; raise it (sysctl -w vm.max_map_count=");
    assert!(message.contains(&expected), "{message}");
}

/// Bytes of `size` a coroutine running `work` touches, found by filling the
/// stack with a pattern and looking for the deepest byte changed.
fn stack_used_by(size: usize, work: fn()) -> usize {
    const PATTERN: u8 = 0xa5;
    let stack = Stack::new(size).unwrap();
    let (base, len) = (top(&stack), stack.usable_size());
    // SAFETY: the usable bytes of a stack we own that no coroutine uses.
    unsafe { std::ptr::write_bytes((base - len) as *mut u8, PATTERN, len) };
    let mut coroutine = Coroutine::<(), (), (), Stack>::with_stack(stack, move |_, ()| work());
    coroutine.resume(());
    let stack = coroutine.into_stack();
    // SAFETY: as above; the coroutine has finished.
    let bytes = unsafe { std::slice::from_raw_parts((base - len) as *const u8, len) };
    let used = len - bytes.iter().position(|&b| b != PATTERN).unwrap_or(len);
    drop(stack);
    used
}

/// What ordinary green-thread code does: formatting, collections, a panic
/// caught with the default hook printing it.
fn ordinary_work() {
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Point {
        x: f64,
        label: String,
        tags: Vec<&'static str>,
    }
    let point = Point {
        x: 2.0 / 3.0,
        label: format!("p{:>8.3}", 1.0 / 7.0),
        tags: vec!["a"],
    };
    println!(
        "{} {:.5} {:?} {point:#?}",
        1.5f64,
        std::f64::consts::PI,
        point.tags
    );
    let mut map = std::collections::HashMap::new();
    let mut tree = std::collections::BTreeMap::new();
    for i in 0..1000u64 {
        map.insert(i, format!("{i:x}"));
        tree.insert(format!("{i:05}"), i as f64 * 0.5);
    }
    black_box((&map, &tree));
    let caught = std::panic::catch_unwind(|| panic!("ordinary panic {}", 42));
    assert!(caught.is_err());
}

/// Runs `ordinary_work` in a child with `RUST_BACKTRACE` set to `backtrace`
/// (the first panic in a process that prints a backtrace symbolises it,
/// the deepest thing ordinary code does) and checks it uses at most
/// `DEFAULT_STACK_SIZE / divisor`.
fn check_default_size(test: &str, backtrace: &str, divisor: usize) {
    if let Some(output) = rerun_in_child(test, &[("RUST_BACKTRACE", backtrace)]) {
        return assert_child_passed(&output);
    }
    let used = stack_used_by(1 << 20, ordinary_work);
    let bound = DEFAULT_STACK_SIZE / divisor;
    assert!(
        used <= bound,
        "ordinary code used {used} bytes of stack, more than {bound}"
    );
}

#[test]
fn default_size_fits_ordinary_code() {
    check_default_size("default_size_fits_ordinary_code", "0", 4);
}

#[test]
fn default_size_fits_a_panic_printing_a_backtrace() {
    check_default_size("default_size_fits_a_panic_printing_a_backtrace", "1", 2);
}
