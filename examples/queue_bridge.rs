//! An OS-thread producer feeding green consumers on a hub, as the seed's
//! Redis-queue master/worker sketch does: a lock-free
//! `crossbeam_queue::SegQueue` carries the items across threads, and the
//! hub's waker (`HubHandle::call_soon`) tells the hub there is something to
//! pick up.
//!
//! A burst costs one wake, not one per item: the producer calls
//! `call_soon` only when no pump is already scheduled, and the pump (a
//! callback on the hub) moves everything queued so far into a
//! `greenhub::sync::Queue`, from which three green consumers take items.
//! The green side's queue lives in a `thread_local!`: sound, since green
//! threads never leave their hub's OS thread.
//!
//! Run: `cargo run --example queue_bridge`.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::SegQueue;
use greenhub::sync::Queue;
use greenhub::thread::{spawn_hub, HubHandle};

thread_local! {
    /// The hub's side of the bridge: where the pump puts items for the
    /// green consumers.
    static GREEN_QUEUE: Rc<Queue<u64>> = Rc::new(Queue::new());
}

/// The cross-thread half: items, and whether a pump is already on its way.
struct Bridge {
    items: SegQueue<u64>,
    /// A pump is scheduled on the hub and has not started draining yet, so
    /// a push needs no wake of its own.
    scheduled: AtomicBool,
    closed: AtomicBool,
    hub: HubHandle,
    /// How many times the producer woke the hub (for the printout).
    wakes: AtomicUsize,
}

impl Bridge {
    /// From any OS thread.
    fn send(self: &Arc<Self>, item: u64) {
        self.items.push(item);
        self.schedule();
    }

    /// From any OS thread: no more items; the consumers finish what is
    /// queued, then stop.
    fn close(self: &Arc<Self>) {
        self.closed.store(true, Ordering::SeqCst);
        self.scheduled.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn schedule(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            self.wake();
        }
    }

    fn wake(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        let me = self.clone();
        self.hub.call_soon(move || me.pump()).expect("the hub is running");
    }

    /// On the hub: moves every queued item to the green side. The flag is
    /// cleared first, so an item pushed after this drain starts schedules
    /// the next pump.
    fn pump(&self) {
        self.scheduled.store(false, Ordering::SeqCst);
        GREEN_QUEUE.with(|q| {
            let drain = || {
                while let Some(item) = self.items.pop() {
                    q.put(item).expect("open until closed here");
                }
            };
            drain();
            if self.closed.load(Ordering::SeqCst) {
                drain(); // pushes that raced with the first drain came before the close
                q.close();
            }
        });
    }
}

/// A green consumer: takes items until the queue is closed and drained.
fn consumer(id: usize) -> (usize, u64) {
    let q = GREEN_QUEUE.with(Rc::clone);
    let (mut count, mut sum) = (0, 0);
    while let Ok(item) = q.get() {
        greenhub::sleep(Duration::from_micros(200)); // the "work"
        count += 1;
        sum += item;
    }
    println!("consumer {id}: {count} items");
    (count, sum)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const BURSTS: u64 = 10;
    const PER_BURST: u64 = 100;
    let hub = spawn_hub("consumers")?;
    let consumers = hub.spawn(|| {
        let hs: Vec<_> = (0..3).map(|id| greenhub::spawn(move || consumer(id))).collect();
        hs.into_iter()
            .map(|h| h.join().expect("consumer"))
            .fold((0, 0), |(c, s), (c1, s1)| (c + c1, s + s1))
    })?;
    let bridge = Arc::new(Bridge {
        items: SegQueue::new(),
        scheduled: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        hub: hub.clone(),
        wakes: AtomicUsize::new(0),
    });
    let producer = {
        let bridge = bridge.clone();
        std::thread::spawn(move || {
            for burst in 0..BURSTS {
                for i in 0..PER_BURST {
                    bridge.send(burst * PER_BURST + i);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            bridge.close();
        })
    };
    producer.join().expect("producer");
    let mut consumers = consumers;
    let (count, sum) = consumers.join_timeout(Duration::from_secs(30))?;
    let n = BURSTS * PER_BURST;
    assert_eq!(
        (count as u64, sum),
        (n, n * (n - 1) / 2),
        "every item consumed once"
    );
    println!(
        "{count} items consumed; the producer woke the hub {} times",
        bridge.wakes.load(Ordering::Relaxed)
    );
    hub.stop();
    Ok(())
}
