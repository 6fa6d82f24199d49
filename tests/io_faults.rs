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

/// Fills the process's fd table (under a lowered `RLIMIT_NOFILE`) with
/// dups of stdin; returns them, to close.
fn exhaust_fds() -> Vec<i32> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer for getrlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_cur.min(256);
    // SAFETY: a valid rlimit for setrlimit; only lowers the soft limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let mut fds = Vec::new();
    loop {
        // SAFETY: dup of an fd we hold; the result is checked.
        let fd = unsafe { libc::dup(2) };
        if fd < 0 {
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EMFILE));
            return fds;
        }
        fds.push(fd);
        assert!(fds.len() < 1024, "the fd limit did not apply");
    }
}

/// A plain accept loop at the fd limit (reproduced with the
/// `multicore_echo` example at `ulimit -n 256`): accept failed with
/// `EMFILE` at once, so the loop spun without parking, starving every other
/// green thread, and wrote millions of error lines. Now each accept after
/// a shortage pauses first; once fds are free, the queued clients are
/// served.
fn accept_loop_at_the_fd_limit_backs_off(listener: TcpListener) {
    let addr = listener.local_addr().unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let fds = exhaust_fds();
    let ticks = Rc::new(std::cell::Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = spawn(move || loop {
        t2.set(t2.get() + 1);
        sleep(Duration::from_millis(10));
    });
    let acceptor = spawn(move || {
        let (mut errors, mut served) = (0u32, 0u32);
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            match listener.accept() {
                Ok(_) => served += 1,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                    errors += 1;
                }
            }
        }
        (errors, served, listener)
    });
    let (errors, served, listener) = acceptor.join().unwrap();
    let ticked = ticks.get();
    for fd in fds {
        // SAFETY: closing the dups made above, each once.
        unsafe { libc::close(fd) };
    }
    assert_eq!(served, 0);
    assert!(errors < 40, "{errors} accept errors in 300 ms: it spun");
    assert!(
        ticked >= 5,
        "another green thread ran {ticked} times in 300 ms: starved"
    );
    // Fds free again: the queued clients are served (after at most the
    // current pause).
    for _ in &clients {
        let (conn, _) = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        drop(conn);
    }
    ticker.kill();
}

#[test]
fn plain_accept_backs_off_at_the_fd_limit() {
    if !util::is_child("emfile") {
        return util::assert_child_passes(
            "plain_accept_backs_off_at_the_fd_limit",
            "emfile",
            Duration::from_secs(30),
            "accept backed off",
        );
    }
    accept_loop_at_the_fd_limit_backs_off(TcpListener::bind("127.0.0.1:0").unwrap());
    println!("accept backed off");
}

/// The same through `Runtime`'s `SharedPort` listeners.
#[test]
fn shared_port_accept_backs_off_at_the_fd_limit() {
    if !util::is_child("emfile_shared") {
        return util::assert_child_passes(
            "shared_port_accept_backs_off_at_the_fd_limit",
            "emfile_shared",
            Duration::from_secs(30),
            "shared port accept backed off",
        );
    }
    let port = greenhub::runtime::SharedPort::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    accept_loop_at_the_fd_limit_backs_off(port.listen().unwrap());
    println!("shared port accept backed off");
}
