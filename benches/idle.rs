//! Memory per idle connection: an echo server with one green thread per
//! connection holds 10,000 connections that send nothing more, and the
//! growth of its resident memory (VmRSS) per connection is reported. Three
//! ways to write the per-connection loop are compared, in alternation:
//!
//! - `stack buffer`: `let mut buf = [0; 4096]; stream.read(&mut buf)`, the
//!   buffer on the green thread's stack while it waits;
//! - `read_with`: [`TcpStream::read_with`], which waits holding no buffer
//!   and reads into one the hub lends while data is there;
//! - `spawn_when_readable`: each round handles what has arrived with
//!   `read_with`, then hands the stream on with
//!   [`TcpStream::spawn_when_readable`] and ends, so a connection waits as
//!   a green thread not started yet, with no stack.
//!
//! Each with two clients: one that sends a message (and reads its echo) on
//! one connection in 500, as `../shared/peers`' `idle_client.py` does (so
//! every handler so far has started; the peers' figures are taken this
//! way), and one that does so on every connection (every connection has
//! been served once, then is idle).
//!
//! The server and the client are each a child process (this binary run
//! again): the client opens the connections, waits a second and says so;
//! the parent then reads the server's VmRSS. Bytes per connection = (VmRSS
//! with all connections open - VmRSS once listening) / N. Nothing is
//! asserted.
//!
//! Run: `cargo bench --bench idle` (needs ~2 N file descriptors; the
//! children raise their soft limit to the hard one). Without `--bench` (as
//! under `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream as StdStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::{Mode, Table};
use greenhub::net::{TcpListener, TcpStream};

const PORT_ENV: &str = "GREENHUB_BENCH_PORT";
const N_ENV: &str = "GREENHUB_BENCH_N";
const EVERY_ENV: &str = "GREENHUB_BENCH_EVERY";

/// The server's per-connection loop with the buffer on the stack.
fn serve_stack_buffer(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(k) => {
                if s.write_all(&buf[..k]).is_err() {
                    return;
                }
            }
        }
    }
}

/// The server's per-connection loop with a lent buffer.
fn serve_read_with(s: TcpStream) {
    loop {
        match s.read_with(|data| (&s).write_all(data).map(|()| data.len())) {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}

/// The server's per-connection round: writes back what has arrived, then
/// waits for more as a green thread with no stack.
fn serve_when_readable(s: TcpStream) {
    match s.read_with(|data| (&s).write_all(data).map(|()| data.len())) {
        Ok(Ok(n)) if n > 0 => drop(s.spawn_when_readable(serve_when_readable)),
        _ => {}
    }
}

/// Raises the soft limit on open files to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill in and then to pass back.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Child: the echo server, until killed or its stdin closes (the parent
/// is gone).
fn child_server(case: &str) {
    raise_fd_limit();
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let serve: fn(TcpStream) = match case {
        "stack buffer" => serve_stack_buffer,
        "read_with" => serve_read_with,
        "spawn_when_readable" => serve_when_readable,
        other => panic!("unknown server case {other}"),
    };
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("port={}", l.local_addr().expect("local_addr").port());
    std::io::stdout().flush().expect("stdout");
    loop {
        let (s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        if case == "spawn_when_readable" {
            drop(s.spawn_when_readable(serve));
        } else {
            drop(greenhub::spawn(move || serve(s)));
        }
    }
}

/// Child: opens N connections, says `open N` and holds them until its
/// stdin closes.
fn child_client() {
    raise_fd_limit();
    let port: u16 = std::env::var(PORT_ENV).expect("port").parse().expect("port");
    let n: usize = std::env::var(N_ENV).expect("n").parse().expect("n");
    let every: usize = std::env::var(EVERY_ENV).expect("every").parse().expect("every");
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = StdStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        if i % every == every - 1 || i == n - 1 {
            s.write_all(b"x").expect("write");
            let mut b = [0u8; 1];
            s.read_exact(&mut b).expect("echo");
        }
        conns.push(s);
    }
    std::thread::sleep(Duration::from_secs(1));
    println!("open {}", conns.len());
    std::io::stdout().flush().expect("stdout");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// VmRSS of process `pid`, in KiB.
fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn child(case: &str, env: &[(&str, String)]) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.env(common::CHILD_ENV, case)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut c = cmd.spawn().expect("spawn child");
    let out = BufReader::new(c.stdout.take().expect("stdout"));
    (c, out)
}

fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut l = String::new();
    out.read_line(&mut l).expect("child output");
    l.trim().to_string()
}

/// One measurement: bytes of server RSS per idle connection.
fn measure(case: &str, n: usize, every: usize) -> f64 {
    let (mut server, mut sout) = child(case, &[]);
    let port = line(&mut sout)
        .strip_prefix("port=")
        .expect("server says its port")
        .to_string();
    let before = rss_kib(server.id());
    let (mut client, mut cout) = child(
        "client",
        &[
            (PORT_ENV, port),
            (N_ENV, n.to_string()),
            (EVERY_ENV, every.to_string()),
        ],
    );
    let said = line(&mut cout);
    assert_eq!(said, format!("open {n}"), "client");
    let after = rss_kib(server.id());
    drop(client.stdin.take());
    let _ = client.wait();
    let _ = server.kill();
    let _ = server.wait();
    (after - before) * 1024.0 / n as f64
}

fn main() {
    if let Ok(case) = std::env::var(common::CHILD_ENV) {
        if case == "client" {
            child_client();
        } else {
            child_server(&case);
        }
        return;
    }
    let mode = Mode::from_args();
    let n = mode.pick(10_000, 200);
    let mut cases = Vec::new();
    for every in [500, 1] {
        for server in ["stack buffer", "read_with", "spawn_when_readable"] {
            let clients = if every == 1 {
                "each sent one message"
            } else {
                "one in 500 sent one"
            };
            cases.push((
                server,
                every,
                format!("{n} idle connections, {server}, {clients}"),
            ));
        }
    }
    let mut samples = vec![Vec::new(); cases.len()];
    common::watch("idle", Duration::from_secs(900));
    for _ in 0..mode.rounds(5) {
        for (i, (server, every, name)) in cases.iter().enumerate() {
            if mode.wants(name) {
                samples[i].push(measure(server, n, *every));
            }
        }
    }
    common::unwatch();
    let mut table = Table::new();
    for ((_, _, name), s) in cases.iter().zip(&samples) {
        if !s.is_empty() {
            table.add(name, "B/conn", s, Some(3600.0));
        }
    }
    table.print(&mode.title("server RSS growth per idle connection (target: Go's 3,588 B)"));
}
