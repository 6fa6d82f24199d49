//! The seed's echo server: one OS thread serves thousands of clients with
//! plain blocking-style code. Built on `greenhub::server::StreamServer`.
//!
//! Each connection is served a round at a time: a green thread writes back
//! what has arrived, then hands the stream on with
//! `TcpStream::spawn_when_readable` and ends. While a connection waits for
//! its next message it is a green thread not started yet, with no stack:
//! about 250 bytes of server memory per idle connection, where a green
//! thread parked in a read keeps at least a 4 KiB stack page
//! (`cargo bench --bench idle`).
//!
//! Run: `cargo run --example echo_server [ADDR]` (default 127.0.0.1:8001),
//! then try it with `cargo run --example echo_client [ADDR]` or
//! `nc 127.0.0.1 8001`. It prints `listening on ADDR` once bound; Ctrl+C
//! stops it gracefully (rounds under way get a second to finish, and idle
//! connections are closed).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;
use greenhub::{signal, Greenlet, JoinHandle};

/// The connections waiting for their next message, by the id of the green
/// thread that will serve it, so that stopping can close them.
type Waiting = Rc<RefCell<HashMap<u64, JoinHandle<()>>>>;

/// Leaves the connection waiting, with no stack, until data (or end of
/// file) comes; then `echo_round` serves it.
fn wait_for_data(stream: TcpStream, peer: SocketAddr, waiting: &Waiting) {
    let w = waiting.clone();
    let next = stream.spawn_when_readable(move |stream| echo_round(stream, peer, w));
    waiting.borrow_mut().insert(next.id(), next);
}

/// Writes back what has arrived, then waits for more. `read_with` lends a
/// buffer only while there is data, so the round holds none of its own.
fn echo_round(stream: TcpStream, peer: SocketAddr, waiting: Waiting) {
    waiting.borrow_mut().remove(&Greenlet::current().id());
    match stream.read_with(|data| (&stream).write_all(data).map(|()| data.len())) {
        Ok(Ok(0)) => {} // end of file: dropping the stream closes it
        Ok(Ok(_)) => wait_for_data(stream, peer, &waiting),
        Ok(Err(e)) => eprintln!("{peer}: write failed: {e}"),
        Err(e) => eprintln!("{peer}: read failed: {e}"),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    let waiting = Waiting::default();
    let w = waiting.clone();
    let server = StreamServer::bind(addr.as_str(), move |stream, peer| wait_for_data(stream, peer, &w))
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // Ctrl+C wakes this green thread, which stops the server from outside
    // the accept loop; `serve_forever` then returns.
    let stopper = server.stopper();
    greenhub::spawn(move || {
        if signal::wait(signal::SIGINT).is_ok() {
            println!("interrupted: stopping (rounds under way get 1 s to finish)");
            stopper.stop(Duration::from_secs(1));
        }
    });
    server
        .serve_forever()
        .map_err(|e| format!("serving on {addr}: {e}"))?;
    // Killing a green thread that has not started drops its function, and
    // with it the stream: the idle connections close.
    let idle: Vec<_> = waiting.borrow_mut().drain().map(|(_, h)| h).collect();
    let closed = idle.len();
    idle.into_iter().for_each(|h| h.kill());
    println!("stopped ({closed} idle connections closed)");
    Ok(())
}
