//! std's blocking calls cooperate after `monkey::patch_all()`: each test
//! shows overlap (N waits of D take about D, not N x D) and a ticker green
//! thread that keeps ticking meanwhile.
#![cfg(feature = "monkey")]

mod monkey_util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use monkey_util::{patch, Ticker, MAX_GAP};

/// A std server that answers each connection after `delay`, in green
/// threads of this hub.
fn slow_echo_server(delay: Duration, conns: usize) -> (std::net::SocketAddr, greenhub::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = greenhub::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..conns {
            let (mut c, _) = listener.accept().unwrap();
            workers.push(greenhub::spawn(move || {
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).unwrap();
                std::thread::sleep(delay);
                c.write_all(&buf).unwrap();
            }));
        }
        greenhub::join_all(&workers);
    });
    (addr, h)
}

#[test]
fn std_client_and_server_in_one_hub_overlap() {
    patch();
    let ticker = Ticker::start();
    let start = Instant::now();
    let (addr, server) = slow_echo_server(Duration::from_millis(300), 4);
    let clients: Vec<_> = (0..4u8)
        .map(|i| {
            greenhub::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(&[i; 4]).unwrap();
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).unwrap();
                assert_eq!(buf, [i; 4]);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_millis(900), "4 x 300 ms took {took:?}");
    let gap = ticker.finish();
    assert!(gap < MAX_GAP, "the hub froze for {gap:?}");
}

#[test]
fn thread_sleep_overlaps() {
    patch();
    let ticker = Ticker::start();
    let start = Instant::now();
    let hs: Vec<_> = (0..4)
        .map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(300))))
        .collect();
    greenhub::join_all(&hs);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(900),
        "{took:?}"
    );
    assert!(ticker.finish() < MAX_GAP);
}

#[test]
fn command_output_overlaps() {
    patch();
    let ticker = Ticker::start();
    let start = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|_| {
            greenhub::spawn(|| {
                let out = std::process::Command::new("sh")
                    .args(["-c", "sleep 0.3; echo done"])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                assert_eq!(out.stdout, b"done\n");
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let took = start.elapsed();
    assert!(took < Duration::from_millis(850), "3 x 300 ms took {took:?}");
    assert!(ticker.finish() < MAX_GAP);
}

#[test]
fn child_wait_overlaps() {
    patch();
    let ticker = Ticker::start();
    let start = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|_| {
            greenhub::spawn(|| {
                let mut child = std::process::Command::new("sleep").arg("0.3").spawn().unwrap();
                assert!(child.wait().unwrap().success());
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert!(start.elapsed() < Duration::from_millis(850));
    assert!(ticker.finish() < MAX_GAP);
}

#[test]
fn to_socket_addrs_runs_off_the_hub() {
    patch();
    let ticker = Ticker::start();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            greenhub::spawn(|| {
                let addrs: Vec<_> = ("localhost", 80).to_socket_addrs().unwrap().collect();
                assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert!(ticker.finish() < MAX_GAP);
    let err = greenhub::spawn(|| "no-such-host.invalid:80".to_socket_addrs().map(|_| ()))
        .join()
        .unwrap();
    assert!(err.is_err());
}

#[test]
fn connect_timeout_parks_and_succeeds() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ticker = Ticker::start();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            greenhub::spawn(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(|_| ()))
        })
        .collect();
    for h in hs {
        h.join().unwrap().unwrap();
    }
    // A listener whose accept queue is full drops further SYNs, so a
    // connect to it waits: connect_timeout must end it, parked.
    let full = full_listener();
    let start = Instant::now();
    let slow: Vec<_> = (0..3)
        .map(|_| greenhub::spawn(move || TcpStream::connect_timeout(&full, Duration::from_millis(300))))
        .collect();
    let results: Vec<_> = slow.into_iter().map(|h| h.join().unwrap()).collect();
    let timed_out = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        })
        .count();
    assert!(timed_out >= 1, "{results:?}");
    assert!(start.elapsed() >= Duration::from_millis(290));
    assert!(
        start.elapsed() < Duration::from_millis(850),
        "{:?}",
        start.elapsed()
    );
    assert!(ticker.finish() < MAX_GAP);
}

#[test]
fn set_read_timeout_gives_would_block_after_the_timeout() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ticker = Ticker::start();
    let start = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|_| {
            greenhub::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
                assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(300)));
                let mut buf = [0u8; 1];
                let e = c.read(&mut buf).unwrap_err();
                // The kernel's SO_RCVTIMEO says EAGAIN: std's WouldBlock.
                assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
                Instant::now()
            })
        })
        .collect();
    for h in hs {
        let ended = h.join().unwrap();
        assert!(ended - start >= Duration::from_millis(290));
    }
    assert!(start.elapsed() < Duration::from_millis(850));
    assert!(ticker.finish() < MAX_GAP);
    drop(listener);
}

/// A listening socket with a backlog of 0 whose queue is already full
/// (kept open for the rest of the test process).
fn full_listener() -> std::net::SocketAddr {
    // SAFETY: plain socket calls on a fresh fd with valid arguments.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut len2 = len;
        libc::getsockname(fd, (&mut sin as *mut libc::sockaddr_in).cast(), &mut len2);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], u16::from_be(sin.sin_port)));
        // Fill the queue; these may or may not complete.
        for _ in 0..4 {
            std::mem::forget(TcpStream::connect_timeout(&addr, Duration::from_millis(50)));
        }
        addr
    }
}

#[test]
fn a_blocking_connect_past_so_sndtimeo_says_einprogress_like_the_kernel() {
    patch();
    let full = full_listener();
    let ticker = Ticker::start();
    let start = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|_| {
            greenhub::spawn(move || {
                let std::net::SocketAddr::V4(v4) = full else {
                    unreachable!()
                };
                // SAFETY: plain socket calls with valid arguments on a fresh fd.
                unsafe {
                    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                    let tv = libc::timeval {
                        tv_sec: 0,
                        tv_usec: 250_000,
                    };
                    let tl = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
                    assert_eq!(
                        libc::setsockopt(
                            fd,
                            libc::SOL_SOCKET,
                            libc::SO_SNDTIMEO,
                            (&tv as *const libc::timeval).cast(),
                            tl
                        ),
                        0
                    );
                    let mut sin: libc::sockaddr_in = std::mem::zeroed();
                    sin.sin_family = libc::AF_INET as libc::sa_family_t;
                    sin.sin_port = v4.port().to_be();
                    sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
                    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                    let r = libc::connect(fd, (&sin as *const libc::sockaddr_in).cast(), len);
                    let e = std::io::Error::last_os_error().raw_os_error();
                    libc::close(fd);
                    (r, e)
                }
            })
        })
        .collect();
    let results: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.contains(&(-1, Some(libc::EINPROGRESS))), "{results:?}");
    assert!(start.elapsed() >= Duration::from_millis(240));
    assert!(
        start.elapsed() < Duration::from_millis(700),
        "{:?}",
        start.elapsed()
    );
    assert!(ticker.finish() < MAX_GAP);
}
