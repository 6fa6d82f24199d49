//! Other people's blocking code, cooperating: after
//! `greenhub::monkey::patch_all()`, a std TCP client, a ureq HTTP GET, a
//! `std::thread::sleep` and a subprocess each wait 300 ms in green threads
//! of one hub, and all four finish together, in about 300 ms rather than
//! 1.2 s. The slow HTTP server is plain std code in a green thread too.
//!
//! Run with `cargo run --example monkey_clients --features monkey`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_millis(300);

/// A std HTTP server that answers each request after `WAIT`, one green
/// thread per connection.
fn slow_server(listener: TcpListener) {
    loop {
        let (conn, _) = listener.accept().expect("accept");
        greenhub::spawn(move || {
            let mut reader = BufReader::new(&conn);
            let mut line = String::new();
            // The request line and headers, up to the blank line.
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            std::thread::sleep(WAIT);
            let _ =
                (&conn).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        });
    }
}

fn main() {
    greenhub::monkey::patch_all().expect("libc's calls are greenhub's");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    greenhub::spawn(move || slow_server(listener));

    let start = Instant::now();
    let report = move |what: &str| println!("{what:<28} done at {:>4} ms", start.elapsed().as_millis());
    let jobs = vec![
        greenhub::spawn(move || {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
            let mut reply = String::new();
            c.read_to_string(&mut reply).expect("read");
            assert!(reply.ends_with("hello"));
            report("std TcpStream request");
        }),
        greenhub::spawn(move || {
            let mut resp = ureq::get(&format!("http://{addr}/")).call().expect("ureq GET");
            let body = resp.body_mut().read_to_string().expect("body");
            assert_eq!(body, "hello");
            report("ureq GET");
        }),
        greenhub::spawn(move || {
            std::thread::sleep(WAIT);
            report("std::thread::sleep");
        }),
        greenhub::spawn(move || {
            let out = std::process::Command::new("sleep")
                .arg("0.3")
                .output()
                .expect("spawn sleep");
            assert!(out.status.success());
            report("Command::new(\"sleep\")");
        }),
    ];
    greenhub::join_all(&jobs);
    let total = start.elapsed();
    println!(
        "all four together: {} ms (one after another: about 1200 ms)",
        total.as_millis()
    );
    assert!(total < Duration::from_millis(900), "the calls did not overlap");
}
