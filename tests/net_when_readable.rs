//! `TcpStream::spawn_when_readable` / `UnixStream::spawn_when_readable`:
//! a green thread that waits for its stream to be readable with no stack,
//! and starts when it is.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenhub::debug::run_info;
use greenhub::hub::Wake;
use greenhub::net::{TcpListener, TcpStream, UnixStream};
use greenhub::JoinError;
use util::bounded;

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

/// Reads what is there now (the green thread starts only once there is).
fn read_some(mut conn: TcpStream) -> Vec<u8> {
    let mut buf = [0; 64];
    let n = conn.read(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// Lets the hub run a few turns (and take any pending readable event).
fn settle() {
    greenhub::sleep(Duration::from_millis(20));
}

/// Writes back one message, then waits for the next with no stack.
fn echo_round(conn: TcpStream) {
    match conn.read_with(|data| (&conn).write_all(data).map(|()| data.len())) {
        Ok(Ok(n)) if n > 0 => drop(conn.spawn_when_readable(echo_round)),
        _ => {}
    }
}

#[test]
fn it_waits_with_no_stack_and_starts_when_data_comes() {
    bounded(|| {
        let (mut client, conn) = pair();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&conn);
        let base = run_info().stacks_in_use;
        let h = conn.spawn_when_readable(read_some);
        settle();
        let info = run_info();
        assert!(!h.is_finished());
        assert_eq!(info.stacks_in_use, base, "no stack while it waits: {info}");
        assert_eq!(info.fds_waited, 1, "{info}");
        let me = info.green_threads.iter().find(|g| g.id == h.id()).unwrap();
        let want = format!("parked: fd {fd} to be readable to start, no stack yet");
        assert!(me.state.starts_with(&want), "{}", me.state);
        assert!(me.spawned_at.unwrap().file().ends_with("net_when_readable.rs"));

        client.write_all(b"hello").unwrap();
        assert_eq!(h.join().unwrap(), b"hello");
        assert_eq!(run_info().fds_waited, 0);
    });
}

/// Edge-triggered readiness: data whose event the hub already took (no
/// reader was parked) makes no new event; the `poll` it does first must
/// see the data, or this would wait forever.
#[test]
fn data_that_arrived_before_starts_it_at_once() {
    bounded(|| {
        let (mut client, conn) = pair();
        client.write_all(b"early").unwrap();
        settle(); // the readable event comes and goes with nobody parked
        let mut h = conn.spawn_when_readable(read_some);
        assert_eq!(h.join_timeout(Duration::from_secs(5)).unwrap(), b"early");
    });
}

#[test]
fn end_of_file_and_a_reset_start_it() {
    bounded(|| {
        let (client, conn) = pair();
        let h = conn.spawn_when_readable(|mut c| c.read(&mut [0; 8]).unwrap());
        settle();
        drop(client);
        assert_eq!(h.join().unwrap(), 0, "end of file");

        let (client, conn) = pair();
        let h = conn.spawn_when_readable(|mut c| c.read(&mut [0; 8]).map_err(|e| e.kind()));
        settle();
        // Unread data at close makes the kernel send a reset.
        let std_client = socket2::SockRef::from(&client);
        std_client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        assert_eq!(h.join().unwrap(), Err(ErrorKind::ConnectionReset));
    });
}

#[test]
fn a_kill_before_it_starts_closes_the_stream_without_a_stack() {
    bounded(|| {
        let (mut client, conn) = pair();
        let base = run_info().stacks_in_use;
        let ran = util::flag();
        let r = ran.clone();
        let h = conn.spawn_when_readable(move |_| r.set(true));
        settle();
        h.kill();
        assert!(matches!(h.join(), Err(JoinError::Killed)));
        assert!(!ran.get());
        let info = run_info();
        assert_eq!(info.fds_waited, 0, "its place is free again: {info}");
        assert_eq!(info.stacks_in_use, base);
        // Its function held the stream: the kill dropped it, closing it.
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
    });
}

#[test]
fn a_detached_one_still_starts() {
    bounded(|| {
        let (mut client, conn) = pair();
        let rx = std::rc::Rc::new(greenhub::sync::Channel::new());
        let tx = rx.clone();
        drop(conn.spawn_when_readable(move |c| tx.put(read_some(c)).unwrap()));
        settle();
        client.write_all(b"x").unwrap();
        assert_eq!(rx.get().unwrap(), b"x");
    });
}

/// Many idle connections hold no stack between messages, and they are
/// served side by side: every round trip of a round is in flight before
/// the first reply is read.
#[test]
fn idle_connections_between_messages_hold_no_stack() {
    bounded(|| {
        const N: usize = 200;
        let (l, addr) = listener();
        let base = run_info().stacks_in_use;
        let clients: Vec<TcpStream> = (0..N)
            .map(|_| {
                let c = TcpStream::connect(addr).unwrap();
                let (conn, _) = l.accept().unwrap();
                drop(conn.spawn_when_readable(echo_round));
                c
            })
            .collect();
        for round in 0..3u8 {
            settle();
            let info = run_info();
            assert_eq!(info.stacks_in_use, base, "round {round}: {info}");
            assert_eq!(info.fds_waited, N, "round {round}");
            for (i, mut c) in clients.iter().enumerate() {
                c.write_all(&[round, i as u8]).unwrap();
            }
            for (i, mut c) in clients.iter().enumerate() {
                let mut back = [0; 2];
                c.read_exact(&mut back).unwrap();
                assert_eq!(back, [round, i as u8]);
            }
        }
        drop(clients);
        settle();
        assert_eq!(run_info().fds_waited, 0, "each ended at end of file");
    });
}

/// A hub that ends with green threads still waiting to start closes their
/// streams and never runs them.
#[test]
fn the_hub_ending_closes_the_streams_of_those_that_never_started() {
    let (tx, rx) = std::sync::mpsc::channel();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = ran.clone();
    let t = std::thread::spawn(move || {
        let (l, addr) = listener();
        tx.send(addr).unwrap();
        let (conn, _) = l.accept().unwrap();
        drop(conn.spawn_when_readable(move |_| r.store(true, std::sync::atomic::Ordering::SeqCst)));
        settle();
    });
    let addr = rx.recv().unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    t.join().unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(client.read(&mut [0; 8]).unwrap(), 0, "closed with the hub");
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn a_unix_stream_waits_the_same_way() {
    bounded(|| {
        let (mut a, b) = UnixStream::pair().unwrap();
        let base = run_info().stacks_in_use;
        let h = b.spawn_when_readable(|mut b| {
            let mut buf = [0; 3];
            b.read_exact(&mut buf).map(|()| buf)
        });
        settle();
        assert_eq!(run_info().stacks_in_use, base);
        a.write_all(b"abc").unwrap();
        assert_eq!(&h.join().unwrap().unwrap(), b"abc");
    });
}

#[test]
fn with_a_timeout_it_starts_when_the_time_is_up_and_says_so() {
    bounded(|| {
        let (mut client, conn) = pair();
        let base = run_info();
        let t = std::time::Instant::now();
        let h = conn.spawn_when_readable_timeout(Duration::from_millis(30), |conn, why| {
            drop(conn);
            why
        });
        settle();
        let waiting = run_info();
        assert_eq!(waiting.timers, base.timers + 1, "{waiting}");
        assert_eq!(waiting.stacks_in_use, base.stacks_in_use);
        assert_eq!(h.join().unwrap(), Wake::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(30));
        let after = run_info();
        assert_eq!(after.fds_waited, 0, "{after}");
        assert_eq!(after.timers, base.timers);
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0, "dropped, so closed");
    });
}

#[test]
fn with_a_timeout_data_first_starts_it_ready_and_removes_its_timer() {
    bounded(|| {
        let (mut client, conn) = pair();
        let base = run_info().timers;
        let h = conn.spawn_when_readable_timeout(Duration::from_secs(60), |c, why| (read_some(c), why));
        settle();
        client.write_all(b"data").unwrap();
        assert_eq!(h.join().unwrap(), (b"data".to_vec(), Wake::Ready));
        assert_eq!(run_info().timers, base, "its timer went when it started");

        // Readable already: started at once, no timer made at all.
        let (mut client, conn) = pair();
        client.write_all(b"now").unwrap();
        settle();
        let h = conn.spawn_when_readable_timeout(Duration::from_secs(60), |c, why| (read_some(c), why));
        assert_eq!(h.join().unwrap(), (b"now".to_vec(), Wake::Ready));
        assert_eq!(run_info().timers, base);
    });
}

/// A connection served round after round, each with an idle limit, keeps
/// one timer at a time: each round's is removed as it starts.
#[test]
fn rounds_with_an_idle_limit_keep_one_timer_at_a_time() {
    fn round(conn: TcpStream, why: Wake) {
        if why == Wake::TimedOut {
            return;
        }
        match conn.read_with(|data| (&conn).write_all(data).map(|()| data.len())) {
            Ok(Ok(n)) if n > 0 => drop(conn.spawn_when_readable_timeout(Duration::from_secs(60), round)),
            _ => {}
        }
    }
    bounded(|| {
        let (mut client, conn) = pair();
        let base = run_info().timers;
        drop(conn.spawn_when_readable_timeout(Duration::from_secs(60), round));
        for i in 0..50u8 {
            client.write_all(&[i]).unwrap();
            let mut back = [0];
            client.read_exact(&mut back).unwrap();
            assert_eq!(back, [i]);
            assert!(run_info().timers <= base + 1, "round {i}: {}", run_info());
        }
    });
}

#[test]
fn a_kill_before_a_timed_start_ends_it_and_it_never_runs() {
    bounded(|| {
        let (mut client, conn) = pair();
        let ran = util::flag();
        let r = ran.clone();
        let h = conn.spawn_when_readable_timeout(Duration::from_millis(20), move |_, _| r.set(true));
        h.kill();
        assert!(matches!(h.join(), Err(JoinError::Killed)));
        greenhub::sleep(Duration::from_millis(40)); // past its timer
        assert!(!ran.get());
        assert_eq!(run_info().fds_waited, 0);
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
    });
}
