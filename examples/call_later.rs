//! asyncio's `call_soon` / `call_later` / `call_at` demo: callbacks on the
//! hub run in time order; `call_soon` first, then 0.1 s, 0.2 s, 0.3 s.
//!
//! Run: `cargo run --example call_later`

use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    let say = move |what: &'static str| move || println!("{:>6.3}s  {what}", start.elapsed().as_secs_f64());

    // Scheduled out of order on purpose: the hub orders them by time.
    greenhub::call_later(Duration::from_millis(200), say("call_later 0.2 s"));
    greenhub::call_at(
        greenhub::now() + Duration::from_millis(300),
        say("call_at now + 0.3 s"),
    );
    greenhub::call_later(Duration::from_millis(100), say("call_later 0.1 s"));
    greenhub::call_soon(say("call_soon"));
    greenhub::call_later(Duration::from_millis(350), greenhub::stop);

    greenhub::run_forever();
    println!("{:>6.3}s  stopped", start.elapsed().as_secs_f64());
}
