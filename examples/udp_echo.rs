//! A UDP echo server and its clients, all green threads in one process: the
//! server answers each datagram with the same bytes, and three clients each
//! send a few datagrams at once and print every round trip.
//!
//! Run: `cargo run --example udp_echo`. Exits non-zero if an echo is wrong
//! or missing.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use greenhub::net::UdpSocket;

const CLIENTS: usize = 3;
const PINGS: usize = 3;

/// Echoes every datagram back to its sender, forever (killed at the end).
fn serve(socket: UdpSocket) {
    let mut buf = [0; 1500];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Err(e) = socket.send_to(&buf[..n], from) {
                    eprintln!("server: send to {from} failed: {e}");
                }
            }
            Err(e) => eprintln!("server: receive failed: {e}"),
        }
    }
}

/// Sends `PINGS` datagrams one after the other, checking each echo.
fn client(server: SocketAddr, id: usize) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    // UDP may drop a datagram: a bounded wait turns that into an error, not a hang.
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0; 1500];
    for i in 0..PINGS {
        let msg = format!("client {id} ping {i}");
        let sent = Instant::now();
        socket
            .send_to(msg.as_bytes(), server)
            .map_err(|e| format!("client {id}: send: {e}"))?;
        let (n, from) = socket
            .recv_from(&mut buf)
            .map_err(|e| format!("client {id}: receive: {e}"))?;
        if from != server || &buf[..n] != msg.as_bytes() {
            return Err(format!(
                "client {id}: sent {msg:?}, got {:?} from {from}",
                &buf[..n]
            ));
        }
        println!(
            "{msg:?} came back in {:.0} us",
            sent.elapsed().as_secs_f64() * 1e6
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let socket = match UdpSocket::bind("127.0.0.1:0") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot bind the server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = socket.local_addr().expect("a bound socket has an address");
    println!("UDP echo server on {addr}");
    let server = greenhub::spawn(move || serve(socket));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| greenhub::spawn(move || client(addr, id)))
        .collect();
    let mut failed = 0;
    for c in clients {
        if let Err(e) = c.join().unwrap_or_else(|e| Err(e.to_string())) {
            eprintln!("{e}");
            failed += 1;
        }
    }
    server.kill();
    println!("{} round trips, {failed} clients failed", CLIENTS * PINGS);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
