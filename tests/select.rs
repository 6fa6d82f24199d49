//! greenhub::select: exactly the ready fds, parking through the hub (other
//! green threads run meanwhile), timeouts, sockets already registered by
//! greenhub, and nothing left registered or open afterwards.

mod util;

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use greenhub::net::{TcpListener, TcpStream};
use greenhub::select::select;
use greenhub::{sleep, spawn};
use util::bounded;

const NONE: &[BorrowedFd<'static>] = &[];

/// A connected pair standing in for a pipe: (read end, write end).
fn pipe() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

/// Tests here count the process's open fds, so they take turns.
static FDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    FDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The open fds, once this OS thread's hub has its poller (made on first
/// use, so it must not count as a leak).
fn open_fds() -> usize {
    let (r, _w) = pipe();
    let soon = Instant::now() + Duration::from_millis(1);
    let _ = greenhub::hub::wait_readable(r.as_fd(), Some(soon));
    drop(r);
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn returns_exactly_the_ready_fds() {
    let _turn = one_at_a_time();
    bounded(|| {
        let pipes: Vec<_> = (0..4).map(|_| pipe()).collect();
        for i in [0, 2] {
            (&pipes[i].1).write_all(b"x").unwrap();
        }
        let reads: Vec<_> = pipes.iter().map(|p| p.0.as_fd()).collect();
        let got = select(&reads, NONE, Some(Duration::ZERO)).unwrap();
        assert_eq!(got.readable, [0, 2]);
        assert!(got.writable.is_empty());

        // A full pipe is not writable; the others are.
        let full = &pipes[3].1;
        full.set_nonblocking(true).unwrap();
        let chunk = [0u8; 4096];
        while (&*full).write(&chunk).is_ok() {}
        let writes: Vec<_> = pipes.iter().map(|p| p.1.as_fd()).collect();
        let got = select(NONE, &writes, Some(Duration::ZERO)).unwrap();
        assert_eq!(got.writable, [0, 1, 2]);
        assert!(got.readable.is_empty());

        // Both lists at once, the same fd asked for both ways too.
        let got = select(&reads, &writes, None).unwrap();
        assert_eq!(
            (got.readable, got.writable),
            (vec![0, 2, 3], vec![0, 1, 2]),
            "the full one has data"
        );
    });
}

#[test]
fn parks_while_other_green_threads_run_and_wakes_on_the_right_fd() {
    let _turn = one_at_a_time();
    bounded(|| {
        let (a, _a_tx) = pipe();
        let (b, b_tx) = pipe();
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let t = ticks.clone();
        let ticker = spawn(move || {
            for _ in 0..5 {
                sleep(Duration::from_millis(5));
                t.set(t.get() + 1);
            }
            (&b_tx).write_all(b"!").unwrap();
            b_tx
        });
        let got = select(&[a.as_fd(), b.as_fd()], NONE, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(got.readable, [1]);
        assert_eq!(ticks.get(), 5, "the ticker ran while select waited");
        drop(ticker.join().unwrap());
    });
}

#[test]
fn a_timeout_returns_nothing_ready() {
    let _turn = one_at_a_time();
    bounded(|| {
        let (a, _tx) = pipe();
        let start = Instant::now();
        let got = select(&[a.as_fd()], NONE, Some(Duration::from_millis(30))).unwrap();
        assert!(got.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(30));
    });
}

#[test]
fn sockets_already_registered_by_greenhub_work_and_keep_working() {
    let _turn = one_at_a_time();
    bounded(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server_side, _) = listener.accept().unwrap();
        drop(listener);
        let peer = spawn(move || {
            sleep(Duration::from_millis(10));
            server_side.write_all(b"hello").unwrap();
            server_side
        });
        let before = open_fds();
        let got = select(&[&client], &[&client], Some(Duration::from_secs(10))).unwrap();
        assert_eq!(got.writable, [0], "a connected socket can be written");
        let got = select(&[&client], NONE, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(got.readable, [0]);
        assert_eq!(
            open_fds(),
            before,
            "the duplicates select watched through are closed"
        );
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        drop(peer.join().unwrap());
    });
}

#[test]
fn a_killed_select_leaves_nothing_registered() {
    let _turn = one_at_a_time();
    bounded(|| {
        let (a, mut tx) = pipe();
        let before = open_fds();
        let a = std::rc::Rc::new(a);
        let a2 = a.clone();
        let waiter = spawn(move || select(&[a2.as_fd()], NONE, None));
        greenhub::yield_now();
        waiter.kill();
        assert!(waiter.join().unwrap_err().is_killed());
        // Registering the fd again would fail with EEXIST had the killed
        // select left its registration behind.
        tx.write_all(b"x").unwrap();
        greenhub::hub::wait_readable(a.as_fd(), None).unwrap();
        assert_eq!(open_fds(), before);
    });
}
