//! `DatagramServer`: a handler per datagram, replies, the bound on
//! concurrent handlers, a flood from another OS thread, graceful stop.

mod util;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhub::net::UdpSocket;
use greenhub::server::{DatagramServer, ServerBuilder};
use util::{bounded, bounded_for, flag, SetOnDrop};

const LONG: Duration = Duration::from_secs(60);

/// Sends `msg` until an answer comes (UDP may drop either way); the answer.
fn ask(client: &UdpSocket, server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    for _ in 0..25 {
        client.send_to(msg, server).unwrap();
        let mut buf = [0; 1500];
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            return buf[..n].to_vec();
        }
    }
    panic!("no answer from {server}");
}

/// Counts handlers running at once.
#[derive(Default)]
struct Gauge {
    now: Cell<usize>,
    max: Cell<usize>,
}

struct InGauge(Rc<Gauge>);

fn enter(g: &Rc<Gauge>) -> InGauge {
    g.now.set(g.now.get() + 1);
    g.max.set(g.max.get().max(g.now.get()));
    InGauge(g.clone())
}

impl Drop for InGauge {
    fn drop(&mut self) {
        self.0.now.set(self.0.now.get() - 1);
    }
}

#[test]
fn each_datagram_gets_a_handler_that_can_reply() {
    bounded(|| {
        let server = DatagramServer::bind("127.0.0.1:0", |d, _| {
            let mut out = d.data().to_vec();
            out.reverse();
            d.reply(&out).unwrap();
        })
        .unwrap();
        server.start().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(ask(&client, server.local_addr(), b"abc"), b"cba");
        assert_eq!(ask(&client, server.local_addr(), b"xy"), b"yx");
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn handlers_overlap_up_to_the_bound() {
    bounded(|| {
        let gauge = Rc::new(Gauge::default());
        let handled = Rc::new(Cell::new(0));
        let (g, h) = (gauge.clone(), handled.clone());
        let server = ServerBuilder::new()
            .max_handlers(4)
            .bind_datagram("127.0.0.1:0", move |_d, _| {
                let _in = enter(&g);
                greenhub::sleep(Duration::from_millis(20));
                h.set(h.get() + 1);
            })
            .unwrap();
        server.start().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let start = Instant::now();
        for i in 0..40u8 {
            client.send_to(&[i], server.local_addr()).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while handled.get() < 40 && Instant::now() < deadline {
            greenhub::sleep(Duration::from_millis(5));
        }
        assert_eq!(handled.get(), 40);
        assert_eq!(
            gauge.max.get(),
            4,
            "never more than the bound, and the bound reached"
        );
        // 40 calls of 20 ms, four at a time: well under the 800 ms in a row.
        assert!(
            start.elapsed() < Duration::from_millis(700),
            "{:?}",
            start.elapsed()
        );
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn survives_a_flood_and_answers_afterwards() {
    bounded_for(Duration::from_secs(60), || {
        let gauge = Rc::new(Gauge::default());
        let handled = Rc::new(Cell::new(0usize));
        let (g, h) = (gauge.clone(), handled.clone());
        let server = ServerBuilder::new()
            .max_handlers(16)
            .bind_datagram("127.0.0.1:0", move |d, _| {
                let _in = enter(&g);
                h.set(h.get() + 1);
                if d.data() == b"ping" {
                    d.reply(b"pong").unwrap();
                } else {
                    greenhub::yield_now();
                    let _ = d.reply(d.data());
                }
            })
            .unwrap();
        server.start().unwrap();
        let addr = server.local_addr();

        // Another OS thread sends as fast as it can; its own socket never
        // reads the replies, so they pile up and are dropped too.
        let sent = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let flood = {
            let (sent, done) = (sent.clone(), done.clone());
            std::thread::spawn(move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                for i in 0..100_000u32 {
                    if s.send_to(&i.to_le_bytes(), addr).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.store(true, Ordering::Release);
            })
        };
        while !done.load(Ordering::Acquire) {
            greenhub::sleep(Duration::from_millis(5));
        }
        flood.join().unwrap();

        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            ask(&client, addr, b"ping"),
            b"pong",
            "still answering after the flood"
        );
        assert!(
            handled.get() > 1000,
            "it served the flood: {} handled",
            handled.get()
        );
        assert!(
            gauge.max.get() <= 16,
            "the bound held: {} at once",
            gauge.max.get()
        );
        let start = Instant::now();
        server.stop(Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(5), "no handler was stuck");
        assert_eq!(server.handler_count(), 0);
    });
}

#[test]
fn stop_waits_out_the_grace_then_kills() {
    bounded(|| {
        let quick_done = flag();
        let slow_unwound = flag();
        let (q, s) = (quick_done.clone(), slow_unwound.clone());
        let server = DatagramServer::bind("127.0.0.1:0", move |d, _| {
            if d.data() == b"quick" {
                greenhub::sleep(Duration::from_millis(20));
                q.set(true);
            } else {
                let _guard = SetOnDrop(s.clone());
                greenhub::sleep(LONG);
            }
        })
        .unwrap();
        server.start().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"quick", server.local_addr()).unwrap();
        client.send_to(b"slow", server.local_addr()).unwrap();
        while server.handler_count() < 2 {
            greenhub::sleep(Duration::from_millis(1));
        }
        server.stop(Duration::from_millis(200));
        assert!(quick_done.get(), "the quick handler finished within the grace");
        assert!(slow_unwound.get(), "the slow one was killed and unwound");
        assert_eq!(server.handler_count(), 0);
        assert!(server.stopper().is_stopped());
    });
}

#[test]
fn a_panicking_handler_ends_only_itself() {
    bounded(|| {
        let server = DatagramServer::bind("127.0.0.1:0", |d, _| {
            if d.data() == b"boom" {
                panic!("handler failed");
            }
            d.reply(b"ok").unwrap();
        })
        .unwrap();
        server.start().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"boom", server.local_addr()).unwrap();
        assert_eq!(ask(&client, server.local_addr(), b"fine"), b"ok");
        server.stop(Duration::from_secs(1));
    });
}
