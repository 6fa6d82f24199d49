//! Raw-fd readiness on the hub: `wait_readable` / `wait_writable`.

mod util;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use greenhub::hub::{wait_readable, wait_writable};
use util::bounded;

fn nonblocking(fd: &impl AsRawFd) {
    // SAFETY: fcntl on a live fd we own, with integer arguments only.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK),
            0
        );
    }
}

#[test]
fn a_reader_parks_until_a_writer_green_thread_writes() {
    bounded(|| {
        let (mut r, mut w) = std::io::pipe().unwrap();
        nonblocking(&r);
        let writer = greenhub::spawn(move || {
            greenhub::sleep(Duration::from_millis(20));
            w.write_all(b"ping").unwrap();
        });
        let start = Instant::now();
        wait_readable(r.as_fd(), None).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(15));
        let mut buf = [0; 4];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        writer.join().unwrap();
    });
}

#[test]
fn the_deadline_gives_timed_out() {
    bounded(|| {
        let (r, _w) = std::io::pipe().unwrap();
        let e = wait_readable(r.as_fd(), Some(Instant::now() + Duration::from_millis(10))).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    });
}

#[test]
fn a_writable_pipe_is_ready_at_once() {
    bounded(|| {
        let (_r, w) = std::io::pipe().unwrap();
        wait_writable(w.as_fd(), Some(Instant::now() + Duration::from_secs(5))).unwrap();
    });
}

#[test]
fn a_green_thread_killed_while_waiting_releases_its_registration() {
    bounded(|| {
        let (r, mut w) = std::io::pipe().unwrap();
        let r = std::rc::Rc::new(r);
        let r2 = r.clone();
        let waiter = greenhub::spawn(move || wait_readable(r2.as_fd(), None));
        greenhub::yield_now();
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        // The fd can be waited on again: had the killed wait left its epoll
        // registration behind, registering it again would fail (EEXIST).
        w.write_all(b"x").unwrap();
        wait_readable(r.as_fd(), Some(Instant::now() + Duration::from_secs(5))).unwrap();
    });
}

#[test]
fn io_waits_keep_the_hub_from_declaring_a_deadlock() {
    bounded(|| {
        let (r, mut w) = std::io::pipe().unwrap();
        nonblocking(&r);
        // The writer lives on another OS thread: nothing on this hub can wake
        // the reader except the fd itself, and the root must wait, not panic.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            w.write_all(b"late").unwrap();
        });
        wait_readable(r.as_fd(), None).unwrap();
        t.join().unwrap();
    });
}
