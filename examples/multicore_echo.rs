//! An echo server on every core: one hub per OS thread
//! ([`greenhub::Runtime`]), each accepting on its own listener bound to the
//! same address with `SO_REUSEPORT` ([`greenhub::runtime::SharedPort`]), so
//! the kernel spreads the connections among the hubs. Each connection is
//! served by a green thread on the hub that accepted it, and never moves.
//! It prints which hub served each connection; Ctrl+C stops it.
//!
//! Run: `cargo run --example multicore_echo -- [ADDR] [HUBS]`
//! (default `127.0.0.1:7000`, one hub per core), then for instance
//! `for i in $(seq 20); do echo hi | nc -q1 127.0.0.1 7000; done`.

use std::io::Write;
use std::sync::Arc;

use greenhub::net::TcpStream;
use greenhub::runtime::SharedPort;
use greenhub::signal::{self, SIGINT};
use greenhub::Runtime;

/// Writes back what has arrived, then hands the stream on to wait for more
/// with no stack (`spawn_when_readable`): an idle connection costs about
/// 250 bytes, not the 4 KiB stack page of a green thread parked in a read.
/// `read_with` lends a buffer only while there is data.
fn echo_round(conn: TcpStream) {
    match conn.read_with(|data| (&conn).write_all(data).map(|()| data.len())) {
        Ok(Ok(n)) if n > 0 => drop(conn.spawn_when_readable(echo_round)),
        _ => {} // end of file or an error: dropping `conn` closes it
    }
}

/// One hub's server: accept, and serve each connection in a green thread.
fn serve(hub: usize, port: &SharedPort) {
    let listener = port.listen().expect("listen on the shared port");
    loop {
        match listener.accept() {
            Ok((conn, peer)) => {
                println!("hub {hub} served {peer}");
                drop(conn.spawn_when_readable(echo_round));
            }
            // Out of fds (`ulimit -n`), the next accept pauses first (5 ms
            // doubling up to 1 s), so this loop neither spins nor floods
            // stderr, and the hub goes on serving (and hearing Ctrl+C).
            Err(e) => eprintln!("hub {hub}: accept failed: {e}"),
        }
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("multicore_echo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".into()).parse()?;
    let runtime = match args.next() {
        Some(n) => Runtime::new(n.parse()?)?,
        None => Runtime::per_core()?,
    };
    let interrupted = signal::Signals::new(SIGINT)?;
    let port = Arc::new(SharedPort::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?);
    let local = port.local_addr();
    let servers = {
        let port = port.clone();
        runtime.spawn_on_each(move |hub| serve(hub, &port))?
    };
    // Each hub's listener is bound once its green thread has started; a
    // round trip through every hub after that proves they all listen.
    for hub in runtime.handles() {
        hub.spawn(|| ())?.join()?;
    }
    println!("listening on {local} with {} hubs", servers.len());
    interrupted.recv();
    println!("got SIGINT: stopping");
    runtime.stop();
    Ok(())
}
