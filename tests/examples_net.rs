//! The network examples, run as a user runs them: `cargo run --example`,
//! against servers on 127.0.0.1 (the example's own or one the test starts).

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long one example may run (it may have to be built first).
const LIMIT: Duration = Duration::from_secs(180);

/// `cargo run --quiet --example NAME -- ARGS`, with piped output.
fn cargo_example(name: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `cargo run --example {name}`: {e}"))
}

/// Runs an example to its end; kills it and fails after [`LIMIT`].
fn run_example(name: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "--quiet", "--example", name, "--"]).args(args);
    let out = util::run_bounded(cmd, &format!("example {name}"), LIMIT);
    (out.status, out.stdout, out.stderr)
}

/// A long-running example (a server), killed when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn echo_client_checks_every_echo_and_ctrl_c_stops_echo_server() {
    let mut server = Background(cargo_example("echo_server", &["127.0.0.1:0"]));
    let stdout = server.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let (rest_tx, rest_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut rest = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match line.strip_prefix("listening on ") {
                Some(addr) => drop(tx.send(addr.to_owned())),
                None => rest.push_str(&format!("{line}\n")),
            }
        }
        let _ = rest_tx.send(rest);
    });
    let addr = rx
        .recv_timeout(LIMIT)
        .expect("echo_server never printed `listening on ADDR`");

    let (status, out, err) = run_example("echo_client", &[&addr]);
    assert!(
        status.success(),
        "echo_client failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.contains("100 connections, 500 messages echoed correctly, 0 connections failed"),
        "unexpected summary:\n{out}"
    );

    // Two idle connections, one of which has been served once: both wait
    // with no green thread running, and stopping must close both.
    let mut idle: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    idle[1].write_all(b"hi").unwrap();
    let mut back = [0; 2];
    idle[1].read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hi");

    // Ctrl+C: `cargo run` replaced itself with the example, so this is its pid.
    let pid = libc::pid_t::try_from(server.0.id()).unwrap();
    // SAFETY: sends SIGINT to our own child process; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "echo_server did not stop on SIGINT");
        thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "echo_server stopped with {status}");
    let rest = rest_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(rest.contains("interrupted: stopping"), "{rest}");
    assert!(rest.contains("stopped (2 idle connections closed)"), "{rest}");
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c.read(&mut [0; 4]).unwrap(), 0, "closed at the stop");
    }
}

/// A tiny HTTP/1.0 server on a std thread: answers `count` requests with a
/// header naming `name`, and sends each request's head back on `requests`.
fn http_server(name: &'static str, count: usize, requests: mpsc::Sender<String>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            while reader.read_line(&mut head).unwrap() > 2 {}
            let _ = requests.send(head);
            let body = format!("hello from {name}\n");
            write!(
                stream,
                "HTTP/1.0 200 OK\r\nX-Server: {name}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    addr
}

#[test]
fn wget_prints_the_header_lines_of_each_host() {
    let (tx, requests) = mpsc::channel();
    let one = http_server("one", 1, tx.clone());
    let two = http_server("two", 1, tx);
    let (status, out, err) = run_example("wget", &[&one, &two]);
    assert!(status.success(), "wget failed\nstdout:\n{out}\nstderr:\n{err}");
    for (host, name) in [(&one, "one"), (&two, "two")] {
        assert!(out.contains(&format!("{host}: HTTP/1.0 200 OK")), "{out}");
        assert!(out.contains(&format!("{host}: X-Server: {name}")), "{out}");
    }
    assert!(!out.contains("hello from"), "only the header is printed:\n{out}");
    for _ in 0..2 {
        let head = requests.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(head.starts_with("GET / HTTP/1.0\r\n"), "{head:?}");
        assert!(head.contains("Host: 127.0.0.1:"), "{head:?}");
    }
}

#[test]
fn udp_echo_prints_every_round_trip() {
    let (status, out, err) = run_example("udp_echo", &[]);
    assert!(
        status.success(),
        "udp_echo failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(out.matches("came back in").count(), 9, "{out}");
    assert!(out.contains("9 round trips, 0 clients failed"), "{out}");
}

/// A busy port is reported with a sentence naming the address, not with
/// `Error: Os { .. }` debug output.
#[test]
fn servers_on_a_busy_port_say_so_in_a_sentence() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    for (name, args) in [
        ("echo_server", vec![addr.as_str()]),
        ("multicore_echo", vec![addr.as_str(), "1"]),
    ] {
        let (status, _out, err) = run_example(name, &args);
        assert!(!status.success(), "{name} ran on a busy port");
        assert!(
            err.contains(&format!("{name}: cannot listen on {addr}: ")) && !err.contains("Os {"),
            "{name}: {err}"
        );
    }
}

#[test]
fn crawler_fetches_every_page_and_beats_the_sequential_crawl() {
    let (status, out, err) = run_example("crawler", &["8", "40", "20"]);
    assert!(status.success(), "crawler failed\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        out.matches("fetched /page/").count(),
        40,
        "one progress line a page:\n{out}"
    );
    for i in 0..40 {
        assert!(
            out.contains(&format!("fetched /page/{i} ")),
            "page {i} missing:\n{out}"
        );
    }
    assert!(out.contains("crawled 40 pages with 8 green threads in"), "{out}");
    assert!(out.contains("crawled 40 pages one at a time in"), "{out}");
    // "concurrent: C ms, sequential: S ms, ...": 40 pages of 20 ms take
    // 800 ms in a row; eight at a time must at least beat that.
    let line = out
        .lines()
        .find(|l| l.starts_with("concurrent: "))
        .expect("summary line");
    let ms: Vec<f64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(ms[0] < ms[1], "the pool was not faster: {line}");
}
