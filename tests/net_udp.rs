//! `greenhub::net::UdpSocket`: datagrams on the hub.

mod util;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use greenhub::net::UdpSocket;
use util::bounded;

fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

#[test]
fn send_to_and_recv_from_between_green_threads() {
    bounded(|| {
        let server = socket();
        let addr = server.local_addr().unwrap();
        let echo = greenhub::spawn(move || {
            let mut buf = [0; 64];
            for _ in 0..3 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let client = socket();
        for msg in [&b"one"[..], b"two", b"three"] {
            client.send_to(msg, addr).unwrap();
            let mut buf = [0; 64];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (msg, addr));
        }
        echo.join().unwrap();
    });
}

#[test]
fn a_parked_recv_lets_other_green_threads_run() {
    bounded(|| {
        let a = socket();
        let b = socket();
        let to = b.local_addr().unwrap();
        let receiver = greenhub::spawn(move || {
            let mut buf = [0; 8];
            b.recv(&mut buf).unwrap()
        });
        greenhub::sleep(Duration::from_millis(10)); // the receiver is parked, we run
        assert!(!receiver.is_finished());
        a.send_to(b"late", to).unwrap();
        assert_eq!(receiver.join().unwrap(), 4);
    });
}

#[test]
fn connected_send_and_recv_and_peek() {
    bounded(|| {
        let (a, b) = (socket(), socket());
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        a.send(b"hello").unwrap();
        let mut buf = [0; 8];
        assert_eq!(b.peek(&mut buf).unwrap(), 5);
        let (n, from) = b.peek_from(&mut buf).unwrap();
        assert_eq!((n, from), (5, a.local_addr().unwrap()));
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    });
}

#[test]
fn recv_timeout_gives_timed_out() {
    bounded(|| {
        let s = socket();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let start = Instant::now();
        assert_eq!(s.recv_from(&mut [0; 8]).unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn udp_from_a_plain_os_thread_behaves_like_std() {
    let receiver = std::thread::spawn(|| {
        let s = socket();
        let addr = s.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            socket().send_to(b"hi", addr).unwrap();
        });
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let n = s.recv(&mut [0; 8]).unwrap();
        sender.join().unwrap();
        n
    });
    assert_eq!(receiver.join().unwrap(), 2);
}
