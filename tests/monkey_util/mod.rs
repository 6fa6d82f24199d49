//! Shared helpers of the monkey tests: a ticker that measures how long the
//! hub was frozen, and overlap checks.
#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A green thread that ticks every 10 ms and records the longest gap
/// between ticks, until stopped.
pub struct Ticker {
    stop: Rc<Cell<bool>>,
    gap: Rc<Cell<Duration>>,
    handle: greenhub::JoinHandle<()>,
}

impl Ticker {
    pub fn start() -> Ticker {
        let stop = Rc::new(Cell::new(false));
        let gap = Rc::new(Cell::new(Duration::ZERO));
        let (s, g) = (stop.clone(), gap.clone());
        let handle = greenhub::spawn(move || {
            let mut last = Instant::now();
            while !s.get() {
                greenhub::sleep(Duration::from_millis(10));
                let now = Instant::now();
                g.set(g.get().max(now - last));
                last = now;
            }
        });
        greenhub::yield_now();
        Ticker { stop, gap, handle }
    }

    /// Stops the ticker; the longest gap it saw.
    pub fn finish(self) -> Duration {
        self.stop.set(true);
        self.handle.join().unwrap();
        self.gap.get()
    }
}

/// The longest gap a ticker may show while patched calls run: generous
/// (a loaded machine), yet far below the waits the tests make (300 ms+).
pub const MAX_GAP: Duration = Duration::from_millis(150);

pub fn patch() {
    greenhub::monkey::patch_all().expect("patch_all");
}
