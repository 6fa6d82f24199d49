//! Before `patch_all()`, the interposed symbols are the plain system calls:
//! std's sleep blocks the OS thread, as without the feature. (A test binary
//! of its own: `patch_all` is process-wide.)
#![cfg(feature = "monkey")]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn calls_before_patch_all_block_the_os_thread_then_cooperate_after() {
    assert!(!greenhub::monkey::is_patched());
    let start = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(100))))
        .collect();
    greenhub::join_all(&hs);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "unpatched sleeps overlapped"
    );
    // Plain blocking I/O still works, and leaves the fd's flags alone.
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    greenhub::spawn(move || {
        b.write_all(b"ok").unwrap();
        let mut buf = [0u8; 2];
        a.read_exact(&mut buf).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL takes no argument.
        let fl = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(fl & libc::O_NONBLOCK, 0);
    })
    .join()
    .unwrap();

    greenhub::monkey::patch_all().unwrap();
    let start = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(100))))
        .collect();
    greenhub::join_all(&hs);
    assert!(
        start.elapsed() < Duration::from_millis(280),
        "patched sleeps did not overlap"
    );
}
