//! The seed demo: two green threads sleeping 2 s and 1 s, joined with
//! `join_all`; the whole takes about 2 s, not 3, because they sleep at once.
//!
//! Run: `cargo run --example joinall`

use std::time::{Duration, Instant};

fn task(name: &'static str, secs: u64, start: Instant) -> &'static str {
    println!(
        "{:>6.3}s  {name}: start, sleeping {secs} s",
        start.elapsed().as_secs_f64()
    );
    greenhub::sleep(Duration::from_secs(secs));
    println!("{:>6.3}s  {name}: done", start.elapsed().as_secs_f64());
    name
}

fn main() {
    let start = Instant::now();
    let handles = vec![
        greenhub::spawn(move || task("first", 2, start)),
        greenhub::spawn(move || task("second", 1, start)),
    ];
    greenhub::join_all(&handles);
    for h in handles {
        println!("joined {}", h.join().expect("task ran to the end"));
    }
    println!(
        "{:>6.3}s  all done (about 2 s: the sleeps overlapped)",
        start.elapsed().as_secs_f64()
    );
}
