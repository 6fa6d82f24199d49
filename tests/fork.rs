//! `reinit_after_fork` (gevent's `reinit`): a forked child gets its own
//! epoll instance, inbox eventfd and blocking pool (reproducer r15: after
//! `fork`, `blocking::run` in the child never ran its job, and parent and
//! child shared the epoll instance and eventfd).

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use greenhub::net::{TcpListener, TcpStream};

fn child_checks(mut client: TcpStream, server: TcpStream) -> Result<(), String> {
    if cfg!(feature = "kqueue-on-linux") {
        // Documented: not supported on the kqueue poller, and said so.
        return match greenhub::reinit_after_fork() {
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(()),
            other => Err(format!("reinit on kqueue: {other:?}")),
        };
    }
    greenhub::reinit_after_fork().map_err(|e| format!("reinit: {e}"))?;
    let mut job = greenhub::spawn(|| greenhub::blocking::run(|| 2));
    let got = job
        .join_timeout(Duration::from_secs(5))
        .map_err(|e| format!("blocking::run: {e}"))?;
    if got != 2 {
        return Err(format!("blocking::run gave {got}"));
    }
    greenhub::sleep(Duration::from_millis(2));
    // A socket registered before the fork still wakes its reader.
    server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let reader = greenhub::spawn(move || {
        let mut buf = [0u8; 5];
        (&server).read_exact(&mut buf).map(|()| buf)
    });
    greenhub::sleep(Duration::from_millis(5));
    client.write_all(b"child").map_err(|e| e.to_string())?;
    match reader.join() {
        Ok(Ok(buf)) if &buf == b"child" => Ok(()),
        other => Err(format!("read after fork: {other:?}")),
    }
}

#[test]
fn a_forked_child_gets_a_working_hub_after_reinit() {
    if !util::is_child("fork") {
        return util::assert_child_passes(
            "a_forked_child_gets_a_working_hub_after_reinit",
            "fork",
            Duration::from_secs(30),
            "fork checks passed",
        );
    }
    // The parent has used the pool (one idle thread now) and the hub.
    assert_eq!(greenhub::blocking::run(|| 1), 1);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    greenhub::sleep(Duration::from_millis(20));
    // SAFETY: the child runs only the checks below on the forking thread,
    // then leaves with _exit (no destructors, no atexit of the parent's).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match child_checks(client, server) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("fork child: {e}");
                1
            }
        };
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    assert!(pid > 0, "fork failed");
    let mut status = 0;
    // The parent waits in a green thread's blocking job, so its own hub
    // and pool are exercised meanwhile too.
    let waited = greenhub::blocking::run(move || {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        status
    });
    status |= waited;
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    assert_eq!(greenhub::blocking::run(|| 3), 3);
    println!("fork checks passed");
}
