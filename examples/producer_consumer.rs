//! The producer/consumer demo: two producers each put 5 random values into
//! a [`Queue`], pausing a random moment between puts; two consumers take
//! values and print them, forever. Once both producers have finished and
//! every value has been consumed, the consumers are cancelled (killed), and
//! all four green threads are gathered with errors as values (asyncio's
//! `gather(..., return_exceptions=True)`): the producers' results, and the
//! consumers shown as killed.
//!
//! Run: `cargo run --example producer_consumer`

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use greenhub::sync::Queue;
use greenhub::wait::{gather, kill_all};
use greenhub::{join_all, sleep, spawn};

/// A small xorshift generator, seeded from the clock (no `rand` needed).
struct Rng(Cell<u64>);

impl Rng {
    fn from_time(stream: u64) -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Distinct, non-zero states for the two producers.
        Rng(Cell::new(
            (nanos ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
        ))
    }

    fn below(&self, n: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        x % n
    }
}

fn producer(name: &'static str, queue: Rc<Queue<(&'static str, u64)>>, rng: Rng) -> String {
    for _ in 0..5 {
        let value = rng.below(100);
        println!("{name} put {value}");
        queue.put((name, value)).expect("the queue is never closed");
        sleep(Duration::from_millis(rng.below(100)));
    }
    format!("{name} produced 5 values")
}

fn consumer(name: &'static str, queue: Rc<Queue<(&'static str, u64)>>) -> String {
    loop {
        let (from, value) = queue.get().expect("the queue is never closed");
        println!("{name} got {value} from {from}");
        queue.task_done().expect("one task_done per value taken");
    }
}

fn main() {
    let queue = Rc::new(Queue::new());
    let producers = vec![
        spawn({
            let q = queue.clone();
            move || producer("producer-1", q, Rng::from_time(1))
        }),
        spawn({
            let q = queue.clone();
            move || producer("producer-2", q, Rng::from_time(2))
        }),
    ];
    let consumers = vec![
        spawn({
            let q = queue.clone();
            move || consumer("consumer-1", q)
        }),
        spawn({
            let q = queue.clone();
            move || consumer("consumer-2", q)
        }),
    ];

    join_all(&producers);
    queue.join(); // every value put has been consumed
    kill_all(&consumers);

    let names = ["producer-1", "producer-2", "consumer-1", "consumer-2"];
    let results = gather(producers.into_iter().chain(consumers));
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(summary) => println!("{name}: ok: {summary}"),
            Err(e) => println!("{name}: error: {e}"),
        }
    }
}
