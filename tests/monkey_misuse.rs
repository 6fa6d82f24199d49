//! The semantics the patched calls keep, and misuse: user non-blocking fds,
//! `F_GETFL`, close while parked, an fd shared with an OS thread, kills and
//! timeouts of a parked patched call, and the errno of each path.
#![cfg(feature = "monkey")]

mod monkey_util;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use monkey_util::{patch, Ticker, MAX_GAP};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

fn getfl(fd: i32) -> i32 {
    // SAFETY: F_GETFL takes no argument.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

#[test]
fn a_user_non_blocking_fd_gets_eagain_at_once() {
    patch();
    greenhub::spawn(|| {
        let (mut a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let e = a.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        assert!(start.elapsed() < Duration::from_millis(100));
        assert_ne!(getfl(a.as_raw_fd()) & libc::O_NONBLOCK, 0);
    })
    .join()
    .unwrap();
}

#[test]
fn f_getfl_never_shows_the_flag_greenhub_set() {
    patch();
    greenhub::spawn(|| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        assert_eq!(getfl(fd) & libc::O_NONBLOCK, 0);
        let reader = greenhub::spawn(move || {
            let mut buf = [0u8; 2];
            a.read_exact(&mut buf).unwrap();
            (buf, getfl(a.as_raw_fd()))
        });
        greenhub::sleep(Duration::from_millis(20));
        b.write_all(b"hi").unwrap();
        let (buf, fl) = reader.join().unwrap();
        assert_eq!(&buf, b"hi");
        assert_eq!(
            fl & libc::O_NONBLOCK,
            0,
            "greenhub's O_NONBLOCK leaked into F_GETFL"
        );
    })
    .join()
    .unwrap();
}

#[test]
fn set_nonblocking_after_cooperating_reads_is_honoured_both_ways() {
    patch();
    greenhub::spawn(|| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"x").unwrap();
        a.read_exact(&mut [0u8; 1]).unwrap(); // now tracked, kernel non-blocking
        a.set_nonblocking(true).unwrap();
        assert_eq!(
            a.read(&mut [0u8; 1]).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
        assert_ne!(getfl(a.as_raw_fd()) & libc::O_NONBLOCK, 0);
        a.set_nonblocking(false).unwrap();
        assert_eq!(getfl(a.as_raw_fd()) & libc::O_NONBLOCK, 0);
        let ticker = Ticker::start();
        let writer = greenhub::spawn(move || {
            greenhub::sleep(Duration::from_millis(200));
            b.write_all(b"y").unwrap();
            b
        });
        let start = Instant::now();
        let mut buf = [0u8; 1];
        a.read_exact(&mut buf).unwrap(); // blocks again, cooperatively
        assert!(start.elapsed() >= Duration::from_millis(190));
        assert_eq!(&buf, b"y");
        drop(writer.join().unwrap());
        assert!(ticker.finish() < MAX_GAP);
    })
    .join()
    .unwrap();
}

#[test]
fn close_while_parked_wakes_the_reader_with_ebadf() {
    patch();
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.into_raw_fd();
    let reader = greenhub::spawn(move || {
        let mut buf = [0u8; 4];
        // SAFETY: reads into a live buffer of its length.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        (r, errno())
    });
    greenhub::sleep(Duration::from_millis(50));
    assert!(!reader.is_finished());
    // SAFETY: closes the fd the reader parked on; it is not used again.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    let (r, e) = reader.join().unwrap();
    assert_eq!((r, e), (-1, libc::EBADF));
    // The number's reuse starts fresh: a new blocking pipe end there works.
    let (mut c, mut d) = UnixStream::pair().unwrap();
    d.write_all(b"ok").unwrap();
    let mut buf = [0u8; 2];
    greenhub::spawn(move || c.read_exact(&mut buf).map(|_| buf))
        .join()
        .unwrap()
        .unwrap();
    drop(b);
}

#[test]
fn an_fd_shared_with_an_os_thread_keeps_blocking_there() {
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    // A green thread makes `a` cooperate (the kernel flag is now on).
    b.write_all(b"1").unwrap();
    let a = greenhub::spawn(move || {
        let mut a = a;
        a.read_exact(&mut [0u8; 1]).unwrap();
        a
    })
    .join()
    .unwrap();
    // A duplicate made now shares the bookkeeping (dups made before a
    // green thread first used the fd do not: see the module docs).
    let a2 = a.try_clone().unwrap();
    // An OS thread reads the same socket: it must block until data comes,
    // as the user's blocking fd does, not fail with EAGAIN.
    let os = std::thread::spawn(move || {
        let mut a2 = a2;
        let start = Instant::now();
        let mut buf = [0u8; 1];
        a2.read_exact(&mut buf).map(|_| (buf, start.elapsed()))
    });
    std::thread::sleep(Duration::from_millis(150));
    b.write_all(b"2").unwrap();
    let (buf, waited) = os.join().unwrap().unwrap();
    assert_eq!(&buf, b"2");
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
}

#[test]
fn an_os_thread_honours_the_read_timeout_of_a_shared_fd() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
    // Green: the timeout, cooperatively.
    let (e, a) = greenhub::spawn(move || {
        let mut a = a;
        (a.read(&mut [0u8; 1]).unwrap_err(), a)
    })
    .join()
    .unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    let a2 = a.try_clone().unwrap();
    // OS thread: the same timeout, emulated with poll.
    let start = Instant::now();
    let e = std::thread::spawn(move || (&a2).read(&mut [0u8; 1]).unwrap_err())
        .join()
        .unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    assert!(start.elapsed() >= Duration::from_millis(140));
}

#[test]
fn a_kill_ends_a_parked_patched_read_without_leaks() {
    patch();
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let h = greenhub::spawn(move || {
        let mut a = a;
        let r = a.read(&mut [0u8; 4]);
        // The kill became an error here (it cannot unwind through read's
        // C frame); the green thread still ends as killed.
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        greenhub::sleep(Duration::from_secs(10)); // the deferred kill lands here
        unreachable!("the kill was delivered at the next park");
    });
    greenhub::sleep(Duration::from_millis(50));
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    // The stream was dropped (closed) as the green thread unwound.
    // SAFETY: F_GETFD on a number: only asks whether it is open.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    drop(b);
    assert!(!open || fd_reused(fd), "the killed green thread's fd leaked");
    // And one that never parks again still ends as killed.
    let (a, _b) = UnixStream::pair().unwrap();
    let h = greenhub::spawn(move || {
        let mut a = a;
        let _ = a.read(&mut [0u8; 4]);
    });
    greenhub::sleep(Duration::from_millis(50));
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn with_timeout_ends_a_parked_patched_read() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let start = Instant::now();
    let r = greenhub::spawn(move || {
        let mut a = a;
        greenhub::with_timeout(Duration::from_millis(100), || {
            a.read(&mut [0u8; 4]).map_err(|e| e.raw_os_error())
        })
    })
    .join()
    .unwrap();
    assert_eq!(r, Err(greenhub::Elapsed));
    assert!(start.elapsed() < Duration::from_millis(500));
    // A sleep cut by a timeout returns early, and the section times out.
    let start = Instant::now();
    let r = greenhub::spawn(|| {
        greenhub::with_timeout(Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(5))
        })
    })
    .join()
    .unwrap();
    assert_eq!(r, Err(greenhub::Elapsed));
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn errno_of_each_path_is_the_kernels() {
    patch();
    greenhub::spawn(|| {
        let mut buf = [0u8; 4];
        // SAFETY: each call gets a live buffer; the fds are invalid or ours.
        unsafe {
            assert_eq!(libc::read(-5, buf.as_mut_ptr().cast(), 4), -1);
            assert_eq!(errno(), libc::EBADF);
            assert_eq!(libc::recv(1_000_000, buf.as_mut_ptr().cast(), 4, 0), -1);
            assert_eq!(errno(), libc::EBADF);
            let (r, _w) = std::io::pipe().unwrap();
            assert_eq!(libc::recv(r.as_raw_fd(), buf.as_mut_ptr().cast(), 4, 0), -1);
            assert_eq!(errno(), libc::ENOTSOCK);
            assert_eq!(libc::fcntl(-1, libc::F_GETFL), -1);
            assert_eq!(errno(), libc::EBADF);
            let bad = libc::timespec {
                tv_sec: 0,
                tv_nsec: 2_000_000_000,
            };
            assert_eq!(libc::nanosleep(&bad, std::ptr::null_mut()), -1);
            assert_eq!(errno(), libc::EINVAL);
            assert_eq!(
                libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &bad, std::ptr::null_mut()),
                libc::EINVAL
            );
            assert_eq!(libc::waitpid(-1, std::ptr::null_mut(), 0), -1);
            assert_eq!(errno(), libc::ECHILD);
        }
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = std::net::TcpStream::connect(refused).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
    })
    .join()
    .unwrap();
}

/// Whether `fd` now names something else than a socket (other tests run in
/// parallel and may have reused the number already).
fn fd_reused(fd: i32) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|p| !p.to_string_lossy().starts_with("socket:"))
}

#[test]
fn short_datagram_reads_do_not_wait_for_the_next_one() {
    patch();
    greenhub::spawn(|| {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        // Make `a` cooperate: a first receive that waits.
        let sender = greenhub::spawn(move || {
            greenhub::sleep(Duration::from_millis(20));
            for msg in [&b"one"[..], b"two", b"three"] {
                b.send(msg).unwrap();
            }
            b
        });
        let mut buf = [0u8; 64];
        assert_eq!(a.recv(&mut buf).unwrap(), 3); // short: a datagram, not an empty queue
        let _b = sender.join().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let start = Instant::now();
        assert_eq!(a.recv(&mut buf).unwrap(), 3);
        assert_eq!(a.recv(&mut buf).unwrap(), 5);
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "queued datagrams waited"
        );
    })
    .join()
    .unwrap();
}

#[test]
fn a_short_stream_read_then_more_data_is_read() {
    patch();
    greenhub::spawn(|| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let writer = greenhub::spawn(move || {
            for chunk in [&b"ab"[..], b"cd", b"ef"] {
                greenhub::sleep(Duration::from_millis(20));
                b.write_all(chunk).unwrap();
            }
            b
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < 6 {
            let n = a.read(&mut buf).unwrap(); // short each time: parks first next time
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcdef");
        drop(writer.join().unwrap());
    })
    .join()
    .unwrap();
}

#[test]
fn the_standard_streams_are_never_made_non_blocking() {
    patch();
    // SAFETY: F_GETFL with the raw system call, which greenhub does not filter.
    let raw_fl = |fd: i32| unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) } as i32;
    let before: Vec<i32> = (0..3).map(|fd| raw_fl(fd) & libc::O_NONBLOCK).collect();
    greenhub::spawn(|| {
        println!("a line on stdout from a green thread");
        eprintln!("a line on stderr from a green thread");
        // SAFETY: writes a live buffer of its length to stdout.
        unsafe { libc::write(1, b"x\n".as_ptr().cast(), 2) };
    })
    .join()
    .unwrap();
    let after: Vec<i32> = (0..3).map(|fd| raw_fl(fd) & libc::O_NONBLOCK).collect();
    assert_eq!(before, after);
}
