//! The seeds' crawler: a pool of N green threads crawls M pages of a small
//! web site, following links as it finds them, and compares the time with a
//! crawl of the same site one page at a time.
//!
//! The site is served by the example itself, on 127.0.0.1, with a
//! `StreamServer`: page `/page/i` answers after a delay (a slow web) and
//! links to pages `4i+1` to `4i+4`, up to M pages. Both crawls run on the
//! one hub of the main thread, as gevent's crawler demo does.
//!
//! Run: `cargo run --example crawler [N_GREEN_THREADS] [M_PAGES] [DELAY_MS]`
//! (defaults: 10, 60, 20).

use std::collections::{HashSet, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;
use greenhub::pool::Pool;
use greenhub::server::StreamServer;
use greenhub::sync::Queue;

/// Serves `/page/i` for i < `pages`, each after `delay`.
fn serve_site(pages: usize, delay: Duration) -> io::Result<StreamServer> {
    StreamServer::bind("127.0.0.1:0", move |stream: TcpStream, _peer| {
        let mut reader = BufReader::new(&stream);
        let mut request = String::new();
        if reader.read_line(&mut request).is_err() {
            return;
        }
        // The rest of the request header, up to its blank line.
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        greenhub::sleep(delay); // a slow web server
        let page = request
            .split_whitespace()
            .nth(1)
            .and_then(|path| path.strip_prefix("/page/"))
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|&i| i < pages);
        let (status, body) = match page {
            Some(i) => {
                let links: String = (4 * i + 1..=4 * i + 4)
                    .filter(|&j| j < pages)
                    .map(|j| format!("<a href=\"/page/{j}\">page {j}</a>\n"))
                    .collect();
                ("200 OK", format!("<html><h1>page {i}</h1>\n{links}</html>\n"))
            }
            None => ("404 Not Found", String::from("no such page\n")),
        };
        let _ = write!(
            &stream,
            "HTTP/1.0 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
}

/// GETs `path` from `addr`; the body of a 200 response.
fn fetch(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of header"))?;
    if !head.starts_with("HTTP/1.0 200") {
        let status = head.lines().next().unwrap_or("").to_owned();
        return Err(io::Error::other(format!("{path}: {status}")));
    }
    Ok(body.to_owned())
}

/// The targets of the `href="..."` links in `body`.
fn links(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Crawls from `/page/0` one page at a time; the pages fetched.
fn crawl_sequentially(addr: SocketAddr) -> io::Result<usize> {
    let mut seen = HashSet::from([String::from("/page/0")]);
    let mut todo = VecDeque::from([String::from("/page/0")]);
    let mut fetched = 0;
    while let Some(path) = todo.pop_front() {
        let body = fetch(addr, &path)?;
        fetched += 1;
        for link in links(&body) {
            if seen.insert(link.clone()) {
                todo.push_back(link);
            }
        }
    }
    Ok(fetched)
}

/// Crawls from `/page/0` with a pool of `workers` green threads, printing
/// each page as it comes; the pages fetched.
fn crawl_with_pool(addr: SocketAddr, workers: usize, pages: usize) -> io::Result<usize> {
    let pool = Pool::new(workers);
    // Fetchers hand (path, result) back here; the crawl loop follows links.
    let results = Rc::new(Queue::new());
    let mut seen = HashSet::new();
    let mut pending = 0;
    let mut fetched = 0;
    let mut start_fetch = |path: String, pending: &mut usize| {
        if seen.insert(path.clone()) {
            let results = results.clone();
            // Parks while all `workers` green threads are busy.
            pool.spawn(move || {
                let page = fetch(addr, &path);
                let _ = results.put((path, page));
            });
            *pending += 1;
        }
    };
    start_fetch(String::from("/page/0"), &mut pending);
    while pending > 0 {
        let (path, page) = results.get().expect("the queue is never closed");
        pending -= 1;
        let body = page?;
        fetched += 1;
        println!(
            "fetched {path:<10} ({fetched:>3}/{pages}), fetchers busy: {}",
            pool.len()
        );
        for link in links(&body) {
            start_fetch(link, &mut pending);
        }
    }
    pool.join();
    Ok(fetched)
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("arguments are numbers"))
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let workers = arg(1, 10) as usize;
    let pages = arg(2, 60) as usize;
    let delay = Duration::from_millis(arg(3, 20));
    let server = serve_site(pages, delay).expect("bind the site's server");
    server.start().expect("start the site's server");
    let addr = server.local_addr();
    println!("site of {pages} pages on http://{addr}/page/0, {delay:?} a page");

    let t = Instant::now();
    let crawled = match crawl_with_pool(addr, workers, pages) {
        Ok(n) => n,
        Err(e) => {
            println!("crawl failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let concurrent = t.elapsed();
    println!(
        "crawled {crawled} pages with {workers} green threads in {:.0} ms",
        concurrent.as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let crawled_seq = match crawl_sequentially(addr) {
        Ok(n) => n,
        Err(e) => {
            println!("sequential crawl failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sequential = t.elapsed();
    println!(
        "crawled {crawled_seq} pages one at a time in {:.0} ms",
        sequential.as_secs_f64() * 1e3
    );
    println!(
        "concurrent: {:.0} ms, sequential: {:.0} ms, {:.1}x faster",
        concurrent.as_secs_f64() * 1e3,
        sequential.as_secs_f64() * 1e3,
        sequential.as_secs_f64() / concurrent.as_secs_f64()
    );
    server.stop(Duration::from_secs(1));
    if crawled == pages && crawled_seq == pages {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
