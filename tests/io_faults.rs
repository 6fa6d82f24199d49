//! I/O faults reproduced first (issue 10): a refused second reader that
//! stole the first one's wakeup, and TCP urgent data that made a read hang.

mod util;

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use greenhub::net::{TcpListener, TcpStream};
use greenhub::{sleep, spawn, yield_now};
use util::bounded;

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    (client, server)
}

/// Reproducer r4: the second reader of one `&TcpStream` is refused with a
/// panic, as documented; the first reader must still wake when data comes.
#[test]
fn a_refused_second_reader_leaves_the_first_one_wakeable() {
    bounded(|| {
        let (client, mut server) = pair();
        let client = Rc::new(client);
        let c1 = client.clone();
        let mut a = spawn(move || {
            let mut buf = [0u8; 16];
            let n = (&*c1).read(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        yield_now();
        let c2 = client.clone();
        let b = spawn(move || {
            let mut buf = [0u8; 16];
            let _ = (&*c2).read(&mut buf);
        });
        let refused = b.join().unwrap_err();
        assert!(
            refused
                .panic_message()
                .unwrap()
                .contains("two green threads wait to read"),
            "{refused:?}"
        );
        server.write_all(b"hello").unwrap();
        assert_eq!(a.join_timeout(Duration::from_secs(5)).unwrap(), b"hello");
    });
}

/// The same for writers: a refused second writer leaves the first parked
/// writer wakeable.
#[test]
fn a_refused_second_writer_leaves_the_first_one_wakeable() {
    bounded(|| {
        let (client, mut server) = pair();
        let client = Rc::new(client);
        let c1 = client.clone();
        // Fill the socket buffers so the first writer parks.
        let mut a = spawn(move || {
            let chunk = vec![7u8; 1 << 16];
            let mut sent = 0usize;
            while sent < 16 << 20 {
                sent += (&*c1).write(&chunk).unwrap();
            }
            sent
        });
        for _ in 0..100 {
            yield_now();
        }
        let c2 = client.clone();
        let b = spawn(move || {
            let _ = (&*c2).write(b"x");
        });
        let refused = b.join().unwrap_err();
        assert!(
            refused
                .panic_message()
                .unwrap()
                .contains("two green threads wait to write"),
            "{refused:?}"
        );
        let reader = spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            while total < 16 << 20 {
                total += server.read(&mut buf).unwrap();
            }
            total
        });
        assert!(a.join_timeout(Duration::from_secs(10)).unwrap() >= 16 << 20);
        assert!(reader.join().unwrap() >= 16 << 20);
    });
}

/// Reproducer r5: a byte of urgent data makes `recv` stop short at its
/// mark with more data queued; the "short read means drained" shortcut
/// then parked the next read, and no event came for the queued data.
#[test]
fn urgent_data_does_not_make_a_read_hang() {
    bounded(|| {
        let (mut client, server) = pair();
        client.write_all(b"abc").unwrap();
        socket2::SockRef::from(&client).send_out_of_band(b"X").unwrap();
        client.write_all(b"def").unwrap();
        sleep(Duration::from_millis(50));
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut s = &server;
        let mut buf = [0u8; 1024];
        let mut got = Vec::new();
        while got.len() < 6 {
            let n = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcdef");
    });
}
