//! A load test for the echo server: 100 concurrent connections, each in its
//! own green thread, each sending a few messages and checking every echo.
//! Prints a summary; exits non-zero if any echo was wrong or a connection
//! failed.
//!
//! Run: `cargo run --example echo_server` in one terminal, then
//! `cargo run --example echo_client [ADDR]` (default 127.0.0.1:8001).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use greenhub::net::TcpStream;

const CONNECTIONS: usize = 100;
const MESSAGES: usize = 5;

/// One client: sends `MESSAGES` lines and checks that each comes back.
fn client(addr: SocketAddr, id: usize) -> Result<usize, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("client {id}: connect: {e}"))?;
    for m in 0..MESSAGES {
        let msg = format!("client {id} message {m}\n");
        stream
            .write_all(msg.as_bytes())
            .map_err(|e| format!("client {id}: write: {e}"))?;
        let mut back = vec![0; msg.len()];
        stream
            .read_exact(&mut back)
            .map_err(|e| format!("client {id}: read: {e}"))?;
        if back != msg.as_bytes() {
            return Err(format!(
                "client {id}: sent {msg:?}, got back {:?}",
                String::from_utf8_lossy(&back)
            ));
        }
    }
    Ok(MESSAGES)
}

fn main() -> ExitCode {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    let addr: SocketAddr = match arg.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("not an address: {arg:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let handles: Vec<_> = (0..CONNECTIONS)
        .map(|id| greenhub::spawn(move || client(addr, id)))
        .collect();
    let (mut echoed, mut failed) = (0, 0);
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => echoed += n,
            Ok(Err(e)) => {
                eprintln!("{e}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("a client green thread failed: {e}");
                failed += 1;
            }
        }
    }
    println!(
        "{CONNECTIONS} connections, {echoed} messages echoed correctly, {failed} connections failed, in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
