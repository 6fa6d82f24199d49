//! `greenhub::net::{TcpListener, TcpStream}`: blocking-style TCP on the hub.

mod util;

use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::net::{TcpListener, TcpStream};
use util::{bounded, is_child, run_child};

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// A connected (client, server-side) pair.
fn pair() -> (TcpStream, TcpStream) {
    let (l, addr) = listener();
    let client = TcpStream::connect(addr).unwrap();
    let (conn, _) = l.accept().unwrap();
    (client, conn)
}

/// Echoes everything read from `conn` until end of file.
fn echo(mut conn: TcpStream) {
    let mut buf = [0; 4096];
    loop {
        match conn.read(&mut buf).unwrap() {
            0 => return,
            n => conn.write_all(&buf[..n]).unwrap(),
        }
    }
}

#[test]
fn echo_between_green_threads() {
    bounded(|| {
        let (l, addr) = listener();
        let server = greenhub::spawn(move || echo(l.accept().unwrap().0));
        let client = greenhub::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let msg = vec![7u8; 300_000]; // more than a socket buffer: both sides park
            let writer = s.try_clone().unwrap();
            let w = greenhub::spawn(move || {
                let mut writer = writer;
                writer.write_all(&msg).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            w.join().unwrap();
            back
        });
        let back = client.join().unwrap();
        assert_eq!(back.len(), 300_000);
        assert!(back.iter().all(|&b| b == 7));
        server.join().unwrap();
    });
}

#[test]
fn buf_reader_and_buf_writer_work_unchanged() {
    bounded(|| {
        let (client, conn) = pair();
        let server = greenhub::spawn(move || echo(conn));
        let mut w = BufWriter::new(client.try_clone().unwrap());
        for i in 0..100 {
            writeln!(w, "line {i}").unwrap();
        }
        w.flush().unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let lines: Vec<String> = BufReader::new(client).lines().map(Result::unwrap).collect();
        assert_eq!(lines.len(), 100);
        assert_eq!(lines[42], "line 42");
        server.join().unwrap();
    });
}

#[test]
fn httparse_parses_a_request_read_from_a_stream() {
    bounded(|| {
        let (mut client, mut conn) = pair();
        let server = greenhub::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0; 16]; // small reads: the request arrives in pieces
            loop {
                let n = conn.read(&mut chunk).unwrap();
                assert_ne!(n, 0, "client closed before a full request");
                buf.extend_from_slice(&chunk[..n]);
                let mut headers = [httparse::EMPTY_HEADER; 8];
                let mut req = httparse::Request::new(&mut headers);
                if req.parse(&buf).unwrap().is_complete() {
                    let host = req.headers.iter().find(|h| h.name == "Host").unwrap();
                    let body = format!(
                        "{} {} {}",
                        req.method.unwrap(),
                        req.path.unwrap(),
                        host.value.len()
                    );
                    write!(
                        conn,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .unwrap();
                    return;
                }
            }
        });
        for piece in ["GET /index", ".html HTTP/1.1\r\nHo", "st: example\r\n", "\r\n"] {
            client.write_all(piece.as_bytes()).unwrap();
            greenhub::sleep(Duration::from_millis(2));
        }
        let mut response = String::new();
        client.read_to_string(&mut response).unwrap();
        assert!(response.ends_with("\r\n\r\nGET /index.html 7"), "{response:?}");
        server.join().unwrap();
    });
}

#[test]
fn a_client_that_resets_mid_message_gives_connection_reset() {
    bounded(|| {
        let (mut client, mut conn) = pair();
        client.write_all(b"half a mess").unwrap();
        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client); // RST instead of FIN
        let mut buf = [0; 64];
        let err = loop {
            match conn.read(&mut buf) {
                Ok(0) => panic!("a reset must not read as a clean end of file"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    });
}

#[test]
fn writing_to_a_reset_peer_is_an_error_not_sigpipe() {
    bounded(|| {
        let (mut client, conn) = pair();
        conn.set_linger(Some(Duration::ZERO)).unwrap();
        drop(conn);
        greenhub::sleep(Duration::from_millis(20));
        let err = (0..100).find_map(|_| client.write_all(&[1; 1024]).err()).unwrap();
        assert!(
            matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{err}"
        );
    });
}

#[test]
fn half_close_keeps_the_other_direction_open() {
    bounded(|| {
        let (mut client, mut conn) = pair();
        let server = greenhub::spawn(move || {
            let mut request = Vec::new();
            conn.read_to_end(&mut request).unwrap(); // ends at the client's shutdown
            conn.write_all(&request.repeat(2)).unwrap();
        });
        client.write_all(b"ping").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"pingping");
        server.join().unwrap();
    });
}

#[test]
fn read_timeout_gives_timed_out() {
    bounded(|| {
        let (mut client, _conn) = pair();
        client.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let start = Instant::now();
        let err = client.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(
            client.set_read_timeout(Some(Duration::ZERO)).is_err(),
            "std rejects a zero timeout"
        );
    });
}

#[test]
fn write_timeout_gives_timed_out_when_the_peer_does_not_read() {
    bounded(|| {
        let (mut client, _conn) = pair();
        client.set_write_timeout(Some(Duration::from_millis(30))).unwrap();
        let chunk = vec![0u8; 1 << 16];
        let err = (0..10_000).find_map(|_| client.write(&chunk).err()).unwrap();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn connect_timeout_gives_timed_out_when_the_backlog_is_full() {
    bounded(|| {
        let l = TcpListener::bind_with_backlog("127.0.0.1:0", 1).unwrap();
        let addr = l.local_addr().unwrap();
        let mut kept = Vec::new();
        let err = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(s) => kept.push(s),
                Err(e) => break e,
            }
            assert!(kept.len() < 64, "the listener's queue never filled");
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn connect_to_a_closed_port_is_refused_not_a_hang() {
    bounded(|| {
        let addr = listener().1; // bound, then closed: nothing listens there
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn connect_resolves_host_names_off_the_hub() {
    bounded(|| {
        let (l, addr) = listener();
        let _client = TcpStream::connect(("localhost", addr.port())).unwrap();
        let (_conn, peer) = l.accept().unwrap();
        assert!(peer.ip().is_loopback());
    });
}

#[test]
fn with_timeout_around_a_read_leaves_the_stream_usable() {
    bounded(|| {
        let (mut client, mut conn) = pair();
        let timed = greenhub::with_timeout(Duration::from_millis(20), || conn.read(&mut [0; 8]));
        assert!(timed.is_err(), "nothing was sent: the read must time out");
        client.write_all(b"late").unwrap();
        let mut buf = [0; 4];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
    });
}

#[test]
fn a_green_thread_killed_in_read_releases_its_registration() {
    bounded(|| {
        let (mut client, conn) = pair();
        let conn = Rc::new(conn);
        let c = conn.clone();
        let reader = greenhub::spawn(move || (&*c).read(&mut [0; 8]));
        greenhub::sleep(Duration::from_millis(10)); // parked in read now
        reader.kill();
        assert!(reader.join().unwrap_err().is_killed());
        // The fd's reader slot is free: another green thread may park on it.
        let c = conn.clone();
        let second = greenhub::spawn(move || {
            let mut buf = [0; 2];
            (&*c).read_exact(&mut buf).map(|()| buf)
        });
        greenhub::sleep(Duration::from_millis(10));
        client.write_all(b"ok").unwrap();
        assert_eq!(&second.join().unwrap().unwrap(), b"ok");
    });
}

#[test]
fn sockets_work_from_plain_os_threads_like_std() {
    // No green thread and no explicit hub anywhere: each OS thread's calls
    // block it, as std's would.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let (l, addr) = listener();
        tx.send(addr).unwrap();
        echo(l.accept().unwrap().0);
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"from a thread").unwrap();
        let mut buf = [0; 13];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&client.join().unwrap(), b"from a thread");
    server.join().unwrap();
}

#[test]
fn a_thousand_concurrent_connections_on_one_hub() {
    const N: usize = 1000;
    bounded(|| {
        let (l, addr) = listener();
        let server = greenhub::spawn(move || {
            let handlers: Vec<_> = (0..N)
                .map(|_| {
                    greenhub::spawn({
                        let conn = l.accept().unwrap().0;
                        move || echo(conn)
                    })
                })
                .collect();
            greenhub::join_all(&handlers);
        });
        let clients: Vec<_> = (0..N)
            .map(|i| {
                greenhub::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let msg = format!("client {i}");
                    s.write_all(msg.as_bytes()).unwrap();
                    greenhub::sleep(Duration::from_millis(20)); // all connected at once
                    let mut back = vec![0; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();
    });
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn fd_count_returns_to_baseline() {
    if !is_child("fds") {
        let out = run_child("fd_count_returns_to_baseline", "fds", Duration::from_secs(30));
        assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
        return;
    }
    drop(pair()); // the hub's poller now exists
    let baseline = open_fds();
    let (l, addr) = listener();
    let handles: Vec<_> = (0..50)
        .map(|_| greenhub::spawn(move || TcpStream::connect(addr).unwrap()))
        .collect();
    let accepted: Vec<_> = (0..50).map(|_| l.accept().unwrap()).collect();
    let streams: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let clones: Vec<_> = streams.iter().map(|s| s.try_clone().unwrap()).collect();
    drop((l, accepted, streams, clones));
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    let (_client, mut conn) = pair();
    conn.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    assert_eq!(conn.read(&mut [0; 1]).unwrap_err().kind(), ErrorKind::TimedOut);
    drop((_client, conn));
    assert_eq!(open_fds(), baseline);
}

#[test]
fn lookup_host_resolves_names_and_passes_literals_through() {
    bounded(|| {
        let addrs = greenhub::net::lookup_host(("localhost", 8080)).unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{addrs:?}"
        );
        let literal: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(greenhub::net::lookup_host(literal).unwrap(), [literal]);
        assert_eq!(greenhub::net::lookup_host("127.0.0.1:9").unwrap(), [literal]);
        assert!(greenhub::net::lookup_host("no port here").is_err());
    });
}

#[test]
fn connect_with_takes_a_name_a_timeout_and_a_source_address() {
    bounded(|| {
        let (l, addr) = listener();
        // A source port of our choosing: bind one, note it, free it.
        let source = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = TcpStream::connect_with(
            ("localhost", addr.port()),
            Some(Duration::from_secs(5)),
            Some(source),
        )
        .unwrap();
        let (_conn, peer) = l.accept().unwrap();
        assert_eq!(peer, source, "the connection came from the source address");
        assert_eq!(client.local_addr().unwrap(), source);

        let zero = TcpStream::connect_with(addr, Some(Duration::ZERO), None).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
        let closed = listener().1; // bound, then closed: nothing listens there
        let refused = TcpStream::connect_with(closed, None, None).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn connect_with_times_out_on_a_full_backlog() {
    bounded(|| {
        let l = TcpListener::bind_with_backlog("127.0.0.1:0", 1).unwrap();
        let addr = l.local_addr().unwrap();
        let mut kept = Vec::new();
        let start = Instant::now();
        let err = loop {
            match TcpStream::connect_with(addr, Some(Duration::from_millis(100)), None) {
                Ok(s) => kept.push(s),
                Err(e) => break e,
            }
            assert!(kept.len() < 64, "the listener's queue never filled");
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(100));
    });
}
