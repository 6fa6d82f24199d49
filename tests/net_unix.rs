//! `greenhub::net::{UnixListener, UnixStream, UnixDatagram}`.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::Duration;

use greenhub::net::{UnixDatagram, UnixListener, UnixStream};
use util::bounded;

/// A fresh socket path for this test, removed if left over.
fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("greenhub-test-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn stream_pair_echo_between_green_threads() {
    bounded(|| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let echo = greenhub::spawn(move || {
            let mut buf = [0; 1024];
            loop {
                match b.read(&mut buf).unwrap() {
                    0 => return,
                    n => b.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        let msg = vec![3u8; 200_000];
        let reader = a.try_clone().unwrap();
        let r = greenhub::spawn(move || {
            let mut back = Vec::new();
            let mut reader = reader;
            reader.read_to_end(&mut back).unwrap();
            back
        });
        a.write_all(&msg).unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(r.join().unwrap(), msg);
        echo.join().unwrap();
    });
}

#[test]
fn listener_accepts_a_connection_by_path() {
    bounded(|| {
        let path = socket_path("listener");
        let listener = UnixListener::bind(&path).unwrap();
        let p = path.clone();
        let client = greenhub::spawn(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(b"hello").unwrap();
        });
        let mut conn = listener.incoming().next().unwrap().unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello");
        client.join().unwrap();
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn stream_read_timeout_gives_timed_out() {
    bounded(|| {
        let (mut a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(a.read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn writing_to_a_closed_unix_peer_is_broken_pipe_not_sigpipe() {
    bounded(|| {
        let (mut a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert_eq!(a.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    });
}

#[test]
fn datagram_pair_and_bound_sockets() {
    bounded(|| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let receiver = greenhub::spawn(move || {
            let mut buf = [0; 16];
            let n = b.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        greenhub::sleep(Duration::from_millis(5));
        a.send(b"dgram").unwrap();
        assert_eq!(receiver.join().unwrap(), b"dgram");

        let path = socket_path("dgram");
        let server = UnixDatagram::bind(&path).unwrap();
        let client_path = socket_path("dgram-client");
        let client = UnixDatagram::bind(&client_path).unwrap();
        client.send_to(b"to path", &path).unwrap();
        let mut buf = [0; 16];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to path");
        assert_eq!(from.as_pathname(), Some(client_path.as_path()));
        server.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        assert_eq!(server.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&client_path).unwrap();
    });
}
