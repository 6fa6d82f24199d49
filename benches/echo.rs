//! Echo throughput and latency: greenhub's `StreamServer` against a minimal
//! hand-written single-threaded epoll echo server, in the same run.
//!
//! Each case: N connections on 127.0.0.1 (N = 100 and 1,000), each doing
//! 64-byte ping-pong (one message in flight per connection). The server
//! under test runs in a child process pinned to CPU 0, the load generator (a
//! hand-written epoll client) in another child pinned to CPU 1, so the
//! server has exactly one core. The client measures messages/s and the
//! p50/p99 round-trip latency over a fixed window after a warm-up, and the
//! server's CPU time in that window (from `/proc/PID/stat`), giving
//! messages per server CPU-second: the fair figure if the client, not the
//! server, is the bottleneck. Rounds alternate the two servers; the table
//! shows medians, then the ratios greenhub / epoll (target: >= 1.0).
//!
//! - (a) `greenhub`: `StreamServer`, one green thread per connection doing
//!   `read` then `write_all`.
//! - (b) `epoll`: level-triggered epoll, non-blocking sockets, one `read`
//!   and one `write` per event (pending output buffered on a short write).
//!
//!
//! Built with `--features monkey`, two more servers run in the same rounds,
//! compared with each other (target: monkey / net >= 0.95):
//! - (c) `net`: `greenhub::net::TcpListener`, a green thread per accepted
//!   `greenhub::net::TcpStream` doing `read` then `write_all`;
//! - (d) `monkey`: the same code on `std::net` after
//!   `greenhub::monkey::patch_all()`.
//!
//! Run: `cargo bench --bench echo` (about a minute; rounds with
//! `GREENHUB_BENCH_ROUNDS`). Without `--bench` (as under
//! `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{get, quantile_sorted, report, summarize, Mode, Table};

/// Size of every ping and pong.
const MSG: usize = 64;
/// Listen backlog of both servers.
const BACKLOG: i32 = 1024;
/// Environment variables carrying a case's parameters to the children.
const ADDR_ENV: &str = "ECHO_ADDR";
const CONNS_ENV: &str = "ECHO_CONNS";
const PID_ENV: &str = "ECHO_SERVER_PID";
const WINDOW_ENV: &str = "ECHO_WINDOW_MS";
/// CPU of the server under test, and of the load generator.
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

fn main() {
    if let Ok(case) = std::env::var(common::CHILD_ENV) {
        match case.as_str() {
            "server-greenhub" => serve_greenhub(),
            "server-epoll" => serve_epoll(),
            #[cfg(feature = "monkey")]
            "server-net" => serve_net(),
            #[cfg(feature = "monkey")]
            "server-monkey" => serve_monkey(),
            "client" => run_client(),
            other => panic!("unknown echo bench child `{other}`"),
        }
        return;
    }
    let mode = Mode::from_args();
    let rounds = mode.rounds(5);
    let window_ms: u64 = mode.pick(1500, 200);
    let sizes: &[usize] = &mode.pick([100, 1000], [10, 50]);
    let kinds: &[&str] = if cfg!(feature = "monkey") {
        &["greenhub", "epoll", "net", "monkey"]
    } else {
        &["greenhub", "epoll"]
    };
    let mut samples: HashMap<(&str, usize), Vec<HashMap<String, f64>>> = HashMap::new();
    for round in 0..rounds {
        for &n in sizes {
            for &kind in kinds {
                let name = format!("{kind} N={n}");
                if !mode.wants(&name) {
                    continue;
                }
                match run_case(kind, n, window_ms) {
                    Ok(v) => samples.entry((kind, n)).or_default().push(v),
                    Err(e) => eprintln!("round {round}, {name}: {e}"),
                }
            }
        }
    }
    print_results(&mode, sizes, kinds, &samples);
}

/// One server child and one client run against it; the client's figures.
fn run_case(kind: &str, n: usize, window_ms: u64) -> Result<HashMap<String, f64>, String> {
    let server = ServerChild::start(kind)?;
    let env = [
        (ADDR_ENV, server.addr.to_string()),
        (CONNS_ENV, n.to_string()),
        (PID_ENV, server.child.id().to_string()),
        (WINDOW_ENV, window_ms.to_string()),
    ];
    common::run_child("client", &env, Duration::from_secs(60))
}

/// A server child, killed when dropped.
struct ServerChild {
    child: Child,
    addr: SocketAddr,
}

impl ServerChild {
    /// Starts the server of `kind` and waits for its "listening on ADDR" line.
    fn start(kind: &str) -> Result<ServerChild, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .env(common::CHILD_ENV, format!("server-{kind}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning the {kind} server: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = ServerChild {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| format!("the {kind} server did not say where it listens"))?;
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the {kind} server said {line:?}"))?;
        Ok(server)
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn print_results(
    mode: &Mode,
    sizes: &[usize],
    kinds: &[&str],
    samples: &HashMap<(&str, usize), Vec<HashMap<String, f64>>>,
) {
    let column = |kind: &str, n: usize, key: &str| -> Vec<f64> {
        let runs = samples.get(&(kind, n)).map(Vec::as_slice).unwrap_or_default();
        runs.iter().filter_map(|r| get(r, key).ok()).collect()
    };
    let mut table = Table::new();
    let metrics = [
        ("msgs_per_s", "msg/s"),
        ("msgs_per_server_cpu_s", "msg/cpu-s"),
        ("server_cpu", "cores"),
        ("p50_us", "us"),
        ("p99_us", "us"),
    ];
    for &n in sizes {
        for &(key, unit) in &metrics {
            for &kind in kinds {
                let v = column(kind, n, key);
                if !v.is_empty() {
                    table.add(&format!("{kind} N={n} {key}"), unit, &v, None);
                }
            }
        }
    }
    table.print(&mode.title("echo, 64-byte ping-pong, server pinned to one core"));
    println!();
    for (ours, theirs, target) in [("greenhub", "epoll", 1.0), ("monkey", "net", 0.95)] {
        for &n in sizes {
            for key in ["msgs_per_s", "msgs_per_server_cpu_s"] {
                let (a, b) = (column(ours, n, key), column(theirs, n, key));
                if a.is_empty() || b.is_empty() {
                    continue;
                }
                let ratio = summarize(&a).median / summarize(&b).median;
                let verdict = if ratio >= target { "ok" } else { "UNDER" };
                println!(
                    "ratio {ours}/{theirs} N={n:<5} {key:<22} {ratio:.3}  (target >= {target}) {verdict}"
                );
            }
        }
    }
}

/// Pins this process to `cpu` when the machine has more than one CPU
/// available, so the server and the client each own a core.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls only read or
    // write the set we own, and pid 0 means this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0
            || libc::CPU_COUNT(&set) < 2
        {
            return;
        }
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Raises the soft fd limit (up to the hard limit) for N = 1,000.
fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill and read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// Server (a): greenhub's `StreamServer`.
fn serve_greenhub() {
    use greenhub::net::TcpStream;
    pin_to(SERVER_CPU);
    raise_nofile(4096);
    let server = greenhub::server::StreamServer::builder()
        .backlog(BACKLOG as u32)
        .bind("127.0.0.1:0", |mut stream: TcpStream, _peer| {
            let _ = stream.set_nodelay(true);
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })
        .expect("bind the greenhub server");
    announce(server.local_addr());
    server.serve_forever().expect("serve");
}

/// Server (c): `greenhub::net`, a green thread per connection.
#[cfg(feature = "monkey")]
fn serve_net() {
    pin_to(SERVER_CPU);
    raise_nofile(4096);
    let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    announce(listener.local_addr().expect("local addr"));
    loop {
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        greenhub::spawn(move || {
            let _ = stream.set_nodelay(true);
            echo_stream(stream);
        });
    }
}

/// Server (d): the same code on `std::net`, after `patch_all`.
#[cfg(feature = "monkey")]
fn serve_monkey() {
    greenhub::monkey::patch_all().expect("patch_all");
    pin_to(SERVER_CPU);
    raise_nofile(4096);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    announce(listener.local_addr().expect("local addr"));
    loop {
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        greenhub::spawn(move || {
            let _ = stream.set_nodelay(true);
            echo_stream(stream);
        });
    }
}

/// Echoes until the peer closes: one `read`, then `write_all`.
#[cfg(feature = "monkey")]
fn echo_stream(mut stream: impl Read + Write) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        if stream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Server (b): a minimal single-threaded level-triggered epoll echo server.
fn serve_epoll() {
    pin_to(SERVER_CPU);
    raise_nofile(4096);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking listener");
    let addr = listener.local_addr().expect("local addr");
    let lfd = listener.into_raw_fd();
    // SAFETY: `lfd` is our listening socket; re-listening only sets the backlog.
    unsafe { libc::listen(lfd, BACKLOG) };
    let ep = epoll_create();
    epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32);
    announce(addr);
    // Output a short write left over, by fd (empty in ping-pong, where the
    // socket buffer always has room; kept so the server is a correct one).
    let mut pending: HashMap<RawFd, Vec<u8>> = HashMap::new();
    let mut buf = [0u8; 4096];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    loop {
        let ready = epoll_wait(ep, &mut events, -1);
        for e in &events[..ready] {
            let (fd, ev) = (e.u64 as RawFd, e.events);
            if fd == lfd {
                accept_all(ep, lfd);
            } else if ev & libc::EPOLLOUT as u32 != 0 {
                flush_pending(ep, fd, &mut pending);
            } else {
                echo_once(ep, fd, &mut buf, &mut pending);
            }
        }
    }
}

fn accept_all(ep: RawFd, lfd: RawFd) {
    loop {
        // SAFETY: accepting on our listening socket; null peer address is allowed.
        let fd = unsafe {
            libc::accept4(
                lfd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK,
            )
        };
        if fd < 0 {
            return;
        }
        set_nodelay(fd);
        epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32);
    }
}

fn echo_once(ep: RawFd, fd: RawFd, buf: &mut [u8], pending: &mut HashMap<RawFd, Vec<u8>>) {
    // SAFETY: reading into our buffer from a socket we own.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
        return;
    }
    if n <= 0 {
        // SAFETY: closing a socket we own (this also removes it from epoll).
        unsafe { libc::close(fd) };
        pending.remove(&fd);
        return;
    }
    let n = n as usize;
    // SAFETY: writing the bytes just read, from our buffer.
    let w = unsafe { libc::send(fd, buf.as_ptr().cast(), n, libc::MSG_NOSIGNAL) }.max(0) as usize;
    if w < n {
        pending.entry(fd).or_default().extend_from_slice(&buf[w..n]);
        epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLOUT as u32);
    }
}

fn flush_pending(ep: RawFd, fd: RawFd, pending: &mut HashMap<RawFd, Vec<u8>>) {
    let Some(out) = pending.get_mut(&fd) else { return };
    // SAFETY: writing from a buffer we own to a socket we own.
    let w = unsafe { libc::send(fd, out.as_ptr().cast(), out.len(), libc::MSG_NOSIGNAL) }.max(0) as usize;
    out.drain(..w);
    if out.is_empty() {
        pending.remove(&fd);
        epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32);
    }
}

fn epoll_create() -> RawFd {
    // SAFETY: plain syscall with a valid flag.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1: {}", std::io::Error::last_os_error());
    ep
}

fn epoll_ctl(ep: RawFd, op: i32, fd: RawFd, events: u32) {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a valid event for the duration of the call.
    let r = unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) };
    assert!(r == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
}

/// Waits for events (`timeout_ms` -1: forever); how many were filled in.
fn epoll_wait(ep: RawFd, events: &mut [libc::epoll_event], timeout_ms: i32) -> usize {
    // SAFETY: the kernel writes at most `events.len()` entries into `events`.
    let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, timeout_ms) };
    n.max(0) as usize
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: `one` outlives the call and its size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// CPU time (user + system) of process `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// One client connection's ping-pong state.
struct Conn {
    stream: std::net::TcpStream,
    sent_at: Instant,
    /// Bytes of the current pong received so far.
    got: usize,
    seq: u8,
}

impl Conn {
    fn ping(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.got = 0;
        self.sent_at = Instant::now();
        let n = self.stream.write(&[self.seq; MSG]).expect("send a ping");
        assert_eq!(n, MSG, "a 64-byte ping fits an empty socket buffer");
    }
}

/// The load generator: N connections, each one ping in flight.
fn run_client() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let addr: SocketAddr = var(ADDR_ENV).parse().expect("address");
    let n: usize = var(CONNS_ENV).parse().expect("connection count");
    let server_pid: u32 = var(PID_ENV).parse().expect("server pid");
    let window = Duration::from_millis(var(WINDOW_ENV).parse().expect("window"));
    pin_to(CLIENT_CPU);
    raise_nofile(4096);
    let ep = epoll_create();
    let mut conns: Vec<Conn> = (0..n)
        .map(|i| {
            let stream = std::net::TcpStream::connect(addr).expect("connect to the server");
            stream.set_nodelay(true).expect("nodelay");
            stream.set_nonblocking(true).expect("non-blocking");
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: `ev` is valid for the call; the fd is the stream's.
            let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut ev) };
            assert_eq!(r, 0, "epoll_ctl add");
            Conn {
                stream,
                sent_at: Instant::now(),
                got: 0,
                seq: 0,
            }
        })
        .collect();
    conns.iter_mut().for_each(Conn::ping);
    let warmup_end = Instant::now() + window / 4;
    pump(ep, &mut conns, warmup_end, &mut Vec::new());
    let cpu0 = cpu_seconds(server_pid);
    let t0 = Instant::now();
    let mut lat_ns: Vec<u64> = Vec::with_capacity(1 << 20);
    pump(ep, &mut conns, t0 + window, &mut lat_ns);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server_pid) - cpu0;
    lat_ns.sort_unstable();
    let count = lat_ns.len() as f64;
    report("msgs_per_s", count / elapsed);
    report("server_cpu", cpu / elapsed);
    report("msgs_per_server_cpu_s", if cpu > 0.0 { count / cpu } else { 0.0 });
    report("p50_us", quantile_sorted(&lat_ns, 0.50) as f64 / 1e3);
    report("p99_us", quantile_sorted(&lat_ns, 0.99) as f64 / 1e3);
}

/// Runs the ping-pong until `until`, pushing each round trip's latency.
fn pump(ep: RawFd, conns: &mut [Conn], until: Instant, lat_ns: &mut Vec<u64>) {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = [0u8; MSG];
    while Instant::now() < until {
        let ready = epoll_wait(ep, &mut events, 10);
        for e in &events[..ready] {
            let c = &mut conns[e.u64 as usize];
            let n = match c.stream.read(&mut buf[..MSG - c.got]) {
                Ok(0) => panic!("the server closed a connection"),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("read: {e}"),
            };
            assert!(buf[..n].iter().all(|&b| b == c.seq), "echo mismatch");
            c.got += n;
            if c.got == MSG {
                lat_ns.push(c.sent_at.elapsed().as_nanos() as u64);
                c.ping();
            }
        }
    }
}
