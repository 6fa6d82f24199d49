//! One hub per core: running the same work on every hub, and a TCP server
//! on two hubs sharing one port.

mod util;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use greenhub::runtime::SharedPort;
use greenhub::thread::Stopped;
use greenhub::Runtime;

#[test]
fn run_on_each_runs_once_on_every_hub_thread() {
    let rt = Runtime::new(3).unwrap();
    let threads = rt
        .run_on_each(|i| (i, format!("{:?}", std::thread::current().id())))
        .unwrap();
    let ids: Vec<usize> = threads.iter().map(|r| r.as_ref().unwrap().0).collect();
    assert_eq!(ids, [0, 1, 2]);
    let distinct: HashSet<_> = threads.into_iter().map(|r| r.unwrap().1).collect();
    assert_eq!(distinct.len(), 3, "one OS thread per hub");
}

#[test]
fn each_hub_keeps_its_own_non_send_state() {
    let rt = Runtime::new(2).unwrap();
    let counts = rt
        .run_on_each(|_| {
            // An Rc shared by green threads of one hub: fine, none migrates.
            let shared = Rc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let shared = shared.clone();
                    let home = std::thread::current().id();
                    greenhub::spawn(move || {
                        greenhub::yield_now();
                        assert_eq!(std::thread::current().id(), home);
                        shared.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            greenhub::join_all(&hs);
            shared.load(Ordering::SeqCst)
        })
        .unwrap();
    assert!(counts.into_iter().all(|c| c.unwrap() == 10));
}

#[test]
fn a_stopped_runtime_takes_no_more_work() {
    let rt = Runtime::new(2).unwrap();
    rt.stop();
    assert_eq!(rt.spawn_on_each(|_| ()).unwrap_err(), Stopped);
}

#[test]
fn multicore_echo_serves_from_both_hubs() {
    const CLIENTS: usize = 200;
    let rt = Runtime::new(2).unwrap();
    let port = Arc::new(SharedPort::bind("127.0.0.1:0".parse().unwrap()).unwrap());
    let addr = port.local_addr();
    let accepted: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let counts = accepted.clone();
    let _servers = rt
        .spawn_on_each(move |hub| {
            let listener = port.listen().unwrap();
            loop {
                let (mut conn, _) = listener.accept().unwrap();
                counts[hub].fetch_add(1, Ordering::SeqCst);
                greenhub::spawn(move || {
                    let mut b = [0u8; 1];
                    conn.read_exact(&mut b).unwrap();
                    conn.write_all(&b).unwrap();
                });
            }
        })
        .unwrap();
    // Spawned after each server, so done once every server listens.
    for hub in rt.handles() {
        hub.spawn(|| ()).unwrap().join().unwrap();
    }
    let clients = std::thread::spawn(move || {
        for i in 0..CLIENTS {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            c.write_all(&[i as u8]).unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i as u8);
        }
    });
    util::bounded(move || clients.join().unwrap());
    let per_hub: Vec<usize> = accepted.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    assert_eq!(per_hub.iter().sum::<usize>(), CLIENTS);
    assert!(per_hub.iter().all(|&n| n > 0), "both hubs accepted: {per_hub:?}");
}
