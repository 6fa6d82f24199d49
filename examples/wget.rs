//! The seed's concurrent downloads: an HTTP/1.0 `GET /` to several hosts at
//! once, one green thread each, reading the response header line by line
//! with `BufRead::read_line` over a `TcpStream`, as blocking code would.
//! The header lines are printed per host, in the order given.
//!
//! Run: `cargo run --example wget [HOST[:PORT]]...` (default: a few public
//! web sites on port 80; needs network access). Exits non-zero if any host
//! failed.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;

const DEFAULT_HOSTS: [&str; 3] = ["www.google.com", "www.example.com", "www.python.org"];

/// GETs `/` from `host` (with `:80` unless a port is given); returns the
/// status line and the header lines.
fn fetch_headers(host: &str) -> std::io::Result<Vec<String>> {
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    // Name resolution runs off the hub, so the other downloads go on meanwhile.
    let stream = TcpStream::connect(addr.as_str())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        &stream,
        "GET / HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(&stream);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break; // the server closed before the blank line ending the header
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    Ok(lines)
}

fn main() -> ExitCode {
    let mut hosts: Vec<String> = std::env::args().skip(1).collect();
    if hosts.is_empty() {
        hosts = DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect();
    }
    let start = Instant::now();
    let downloads: Vec<_> = hosts
        .iter()
        .map(|host| {
            let host = host.clone();
            greenhub::spawn(move || fetch_headers(&host))
        })
        .collect();
    let mut failed = 0;
    for (host, download) in hosts.iter().zip(downloads) {
        println!("== {host}");
        match download.join() {
            Ok(Ok(lines)) => lines.iter().for_each(|l| println!("{host}: {l}")),
            Ok(Err(e)) => {
                println!("{host}: failed: {e}");
                failed += 1;
            }
            Err(e) => {
                println!("{host}: green thread failed: {e}");
                failed += 1;
            }
        }
    }
    println!(
        "{} hosts, {failed} failed, in {:.1} ms (concurrently)",
        hosts.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
