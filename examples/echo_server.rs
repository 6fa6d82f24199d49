//! The seed's echo server: every connection gets a green thread of its own
//! that writes back whatever it reads, so one OS thread serves thousands of
//! clients with plain blocking-style code. Built on
//! `greenhub::server::StreamServer`.
//!
//! Run: `cargo run --example echo_server [ADDR]` (default 127.0.0.1:8001),
//! then try it with `cargo run --example echo_client [ADDR]` or
//! `nc 127.0.0.1 8001`. It prints `listening on ADDR` once bound; Ctrl+C
//! stops it gracefully (open connections get a second to finish).

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;
use greenhub::signal;

/// Writes back everything the peer sends, until it closes. `read_with`
/// waits for data holding no buffer, then lends one while the data is
/// written back: an idle connection costs one stack page, where a
/// `[0; 4096]` on the stack would keep two (`cargo bench --bench idle`).
fn echo(stream: TcpStream, peer: SocketAddr) {
    loop {
        match stream.read_with(|data| (&stream).write_all(data).map(|()| data.len())) {
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("{peer}: write failed: {e}");
                break;
            }
            Err(e) => {
                eprintln!("{peer}: read failed: {e}");
                break;
            }
        }
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
    let server =
        StreamServer::bind(addr.as_str(), echo).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // Ctrl+C wakes this green thread, which stops the server from outside
    // the accept loop; `serve_forever` then returns.
    let stopper = server.stopper();
    greenhub::spawn(move || {
        if signal::wait(signal::SIGINT).is_ok() {
            println!("interrupted: stopping (handlers get 1 s to finish)");
            stopper.stop(Duration::from_secs(1));
        }
    });
    server
        .serve_forever()
        .map_err(|e| format!("serving on {addr}: {e}"))?;
    println!("stopped");
    Ok(())
}
