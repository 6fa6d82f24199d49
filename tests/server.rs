//! `StreamServer`: serving, stopping with a grace period, the bound on
//! concurrent handlers, 10,000 concurrent connections on one hub, and
//! accept under EMFILE.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;
use greenhub::server::{Stopper, StreamServer};
use greenhub::sync::Event;
use util::{bounded, bounded_for, flag, run_child, SetOnDrop};

/// Echoes until the peer closes.
fn echo(mut stream: TcpStream, _peer: SocketAddr) {
    let mut buf = [0; 1024];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        if stream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Sends `msg` and checks that it comes back.
fn round_trip(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// Parks (sleeping 1 ms at a time) until `cond` holds; fails after 5 s.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        greenhub::sleep(Duration::from_millis(1));
    }
}

#[test]
fn serves_each_connection_in_its_own_green_thread() {
    bounded(|| {
        let server = StreamServer::bind("127.0.0.1:0", echo).unwrap();
        server.start().unwrap();
        let mut a = TcpStream::connect(server.local_addr()).unwrap();
        let mut b = TcpStream::connect(server.local_addr()).unwrap();
        // `a` stays open (its handler parked in read) while `b` is served.
        round_trip(&mut a, b"first");
        round_trip(&mut b, b"second");
        round_trip(&mut a, b"third");
        assert_eq!(server.handler_count(), 2);
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn stopper_ends_serve_forever_from_another_green_thread() {
    bounded(|| {
        let server = StreamServer::bind("127.0.0.1:0", echo).unwrap();
        let (addr, stopper) = (server.local_addr(), server.stopper());
        let client = greenhub::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            round_trip(&mut c, b"ping");
            drop(c);
            stopper.stop(Duration::from_secs(1));
        });
        server.serve_forever().unwrap();
        assert!(server.stopper().is_stopped());
        client.join().unwrap();
        let refused = TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn stop_waits_for_grace_then_kills_the_handlers_still_running() {
    bounded(|| {
        let (finished, unwound) = (flag(), flag());
        let (f, u) = (finished.clone(), unwound.clone());
        let server = StreamServer::bind("127.0.0.1:0", move |mut stream, _| {
            let mut kind = [0];
            stream.read_exact(&mut kind).unwrap();
            if kind[0] == b'f' {
                greenhub::sleep(Duration::from_millis(20));
                f.set(true);
            } else {
                let _guard = SetOnDrop(u.clone());
                greenhub::sleep(Duration::from_secs(60));
            }
        })
        .unwrap();
        server.start().unwrap();
        let mut fast = TcpStream::connect(server.local_addr()).unwrap();
        let mut slow = TcpStream::connect(server.local_addr()).unwrap();
        fast.write_all(b"f").unwrap();
        slow.write_all(b"s").unwrap();
        wait_for("both handlers", || server.handler_count() == 2);

        let start = Instant::now();
        server.stop(Duration::from_millis(200));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200),
            "stop returned after {took:?}, before the grace"
        );
        assert!(took < Duration::from_secs(2), "stop took {took:?}");
        assert!(finished.get(), "the fast handler ran to its end within the grace");
        assert!(unwound.get(), "the slow handler was killed and unwound");
        assert_eq!(server.handler_count(), 0);
        let mut rest = Vec::new();
        assert_eq!(
            slow.read_to_end(&mut rest).unwrap(),
            0,
            "the killed handler's stream is closed"
        );
    });
}

#[test]
fn stop_called_by_a_handler_spares_that_handler() {
    bounded(|| {
        let slot: Rc<RefCell<Option<Stopper>>> = Rc::default();
        let s = slot.clone();
        let server = StreamServer::bind("127.0.0.1:0", move |mut stream, _| {
            let stopper = s.borrow().clone().unwrap();
            stopper.stop(Duration::from_millis(10));
            stream.write_all(b"bye").unwrap();
        })
        .unwrap();
        *slot.borrow_mut() = Some(server.stopper());
        let addr = server.local_addr();
        let client = greenhub::spawn(move || {
            let mut reply = Vec::new();
            TcpStream::connect(addr).unwrap().read_to_end(&mut reply).unwrap();
            reply
        });
        server.serve_forever().unwrap();
        assert_eq!(client.join().unwrap(), b"bye");
    });
}

#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    bounded(|| {
        let first = Rc::new(Cell::new(true));
        let server = StreamServer::bind("127.0.0.1:0", move |stream, peer| {
            if first.replace(false) {
                panic!("handler failure (expected by the test)");
            }
            echo(stream, peer);
        })
        .unwrap();
        server.start().unwrap();
        let mut doomed = TcpStream::connect(server.local_addr()).unwrap();
        let mut rest = Vec::new();
        assert_eq!(doomed.read_to_end(&mut rest).unwrap(), 0);
        let mut ok = TcpStream::connect(server.local_addr()).unwrap();
        round_trip(&mut ok, b"still serving");
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn max_handlers_bounds_the_handlers_running_at_once() {
    bounded(|| {
        let (active, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (a, p) = (active.clone(), peak.clone());
        let server = StreamServer::builder()
            .max_handlers(3)
            .bind("127.0.0.1:0", move |mut stream, _| {
                a.set(a.get() + 1);
                p.set(p.get().max(a.get()));
                greenhub::sleep(Duration::from_millis(20));
                a.set(a.get() - 1);
                stream.write_all(b"x").unwrap();
            })
            .unwrap();
        server.start().unwrap();
        let addr = server.local_addr();
        let clients: Vec<_> = (0..12)
            .map(|_| {
                greenhub::spawn(move || {
                    let mut reply = Vec::new();
                    TcpStream::connect(addr).unwrap().read_to_end(&mut reply).unwrap();
                    reply
                })
            })
            .collect();
        for c in clients {
            assert_eq!(c.join().unwrap(), b"x", "every client is served in the end");
        }
        assert_eq!(
            peak.get(),
            3,
            "never more than max_handlers at once, and the bound is used"
        );
        server.stop(Duration::from_secs(1));
    });
}

/// How many connections the 10,000-connection test opens.
const MANY: usize = 10_000;
/// Child mode prefix of that test's client; the server address follows.
const MANY_CLIENT: &str = "many-client@";

/// Raises the soft fd limit to at least `want` (up to the hard limit);
/// returns the hard limit if that is too low.
fn raise_nofile(want: libc::rlim_t) -> Result<(), libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill in and read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_max < want {
            return Err(lim.rlim_max);
        }
        if lim.rlim_cur < want {
            lim.rlim_cur = want;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    Ok(())
}

#[test]
fn ten_thousand_concurrent_connections_on_one_hub() {
    let mode = std::env::var(util::CHILD_ENV).unwrap_or_default();
    if let Some(addr) = mode.strip_prefix(MANY_CLIENT) {
        let addr: SocketAddr = addr.parse().unwrap();
        return bounded_for(Duration::from_secs(90), move || many_clients(addr));
    }
    // Each side holds 10,000 fds; the clients run in a child process so
    // neither process needs 20,000.
    if let Err(hard) = raise_nofile(MANY as libc::rlim_t + 200) {
        eprintln!(
            "SKIPPED: 10,000 connections need {} fds, the hard limit is {hard}",
            MANY + 200
        );
        return;
    }
    let peak = bounded_for(Duration::from_secs(120), || {
        let (active, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (a, p) = (active.clone(), peak.clone());
        let server = StreamServer::builder()
            .backlog(4096)
            .bind("127.0.0.1:0", move |stream, addr| {
                a.set(a.get() + 1);
                p.set(p.get().max(a.get()));
                echo(stream, addr);
                a.set(a.get() - 1);
            })
            .unwrap();
        server.start().unwrap();
        let mode = format!("{MANY_CLIENT}{}", server.local_addr());
        let out = greenhub::blocking::run(move || {
            run_child(
                "ten_thousand_concurrent_connections_on_one_hub",
                &mode,
                Duration::from_secs(100),
            )
        });
        assert!(out.status.success(), "the client failed: {out:?}");
        assert!(out.stdout.contains("all 10000 echoed"), "{out:?}");
        wait_for("the handlers to end", || active.get() == 0);
        server.stop(Duration::from_secs(1));
        peak.get()
    });
    assert_eq!(peak, MANY, "all connections were served at the same time");
}

/// The child: opens `MANY` connections, echoes one message on each, and
/// closes them only once every one has been echoed, so that all are open
/// at once on the server.
fn many_clients(addr: SocketAddr) {
    let all_echoed = Rc::new(Event::new());
    let echoed = Rc::new(Cell::new(0));
    let clients: Vec<_> = (0..MANY)
        .map(|i| {
            let (all_echoed, echoed) = (all_echoed.clone(), echoed.clone());
            greenhub::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                round_trip(&mut c, format!("hello from {i}").as_bytes());
                echoed.set(echoed.get() + 1);
                if echoed.get() == MANY {
                    all_echoed.set();
                }
                all_echoed.wait();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    println!("all {} echoed", echoed.get());
}

/// Child mode of the EMFILE test.
const EMFILE_CHILD: &str = "emfile";

#[test]
fn accept_under_emfile_backs_off_and_serves_again_once_fds_free() {
    if util::is_child(EMFILE_CHILD) {
        return bounded(emfile_child);
    }
    let out = run_child(
        "accept_under_emfile_backs_off_and_serves_again_once_fds_free",
        EMFILE_CHILD,
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "the child failed: {out:?}");
    assert!(out.stdout.contains("served after EMFILE"), "{out:?}");
    let logged = out.stderr.matches("greenhub::server: accept on").count();
    assert_eq!(logged, 1, "the shortage is logged once: {}", out.stderr);
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: `usage` is a valid rusage for the kernel to fill in.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// In a child with a low fd limit: fills the fd table, lets a client
/// connect (its socket made beforehand), checks that the server does not
/// spin while accept fails with EMFILE, then frees the fds and expects the
/// client to be served.
fn emfile_child() {
    let server = StreamServer::bind("127.0.0.1:0", echo).unwrap();
    server.start().unwrap();
    let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill in and read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = 256;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut fillers = Vec::new();
    let full = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(full.raw_os_error(), Some(libc::EMFILE));

    let addr = server.local_addr();
    let (tx, rx) = std::sync::mpsc::channel();
    // A plain OS thread: it blocks in connect and read while the hub runs.
    std::thread::spawn(move || {
        let reply = (|| -> io::Result<Vec<u8>> {
            client.connect(&addr.into())?;
            client.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut stream = std::net::TcpStream::from(client);
            stream.write_all(b"ping")?;
            let mut back = vec![0; 4];
            stream.read_exact(&mut back)?;
            Ok(back)
        })();
        let _ = tx.send(reply.map_err(|e| e.to_string()));
    });

    greenhub::sleep(Duration::from_millis(100));
    let before = cpu_time();
    greenhub::sleep(Duration::from_millis(500));
    let burnt = cpu_time() - before;
    assert!(
        burnt < Duration::from_millis(50),
        "the server burnt {burnt:?} of CPU in 500 ms of EMFILE"
    );
    assert_eq!(server.handler_count(), 0, "nothing could be accepted yet");

    drop(fillers);
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = loop {
        if let Ok(reply) = rx.try_recv() {
            break reply;
        }
        assert!(
            Instant::now() < deadline,
            "not served within 5 s of the fds freeing up"
        );
        greenhub::sleep(Duration::from_millis(5));
    };
    assert_eq!(reply.unwrap(), b"ping");
    println!("served after EMFILE");
    server.stop(Duration::from_secs(1));
}
