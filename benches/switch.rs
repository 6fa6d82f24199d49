//! Context-switch costs, in nanoseconds per switch:
//!
//! - `greenlet g1<->g2 (unit)` / `(u64)`: two [`Greenlet`]s switching back
//!   and forth with `switch::<(), ()>` / `switch::<u64, u64>` (the `u64`
//!   variant boxes each value). Each `switch` call counts as one switch.
//! - `greenlet main<->g (unit)`: the root green thread and one greenlet.
//! - `yield_now x2`: two spawned green threads alternating `yield_now()`;
//!   each yield counts as one switch.
//! - `park/wake hand-off`: two spawned green threads handing a turn to each
//!   other with `hub::park` + `Waker::wake`; each hand-off counts once.
//!
//! Each case runs a warm-up, then several rounds; the table shows the median
//! with min and max. Numbers are informational, nothing is asserted.
//!
//! Run: `cargo bench --bench switch` (only matching cases:
//! `cargo bench --bench switch -- yield`). Without `--bench` (as under
//! `cargo test --all-targets`) it runs a quick smoke version.

mod common;

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{ns_per, Mode, Table};
use greenhub::hub::{park, Waker};
use greenhub::{spawn, yield_now, Greenlet};

/// g1 and g2 switch to each other `n` times each with `()`; returns the
/// elapsed time for the `2 n` switches.
fn greenlet_pingpong_unit(n: u64) -> Duration {
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::new(RefCell::new(None));
    let done = Rc::new(Cell::new(false));
    let s = slot.clone();
    let g1 = Greenlet::new(move |(): ()| {
        let g2 = s.borrow().clone().expect("g2 is set before g1 starts");
        for _ in 0..n {
            g2.switch::<(), ()>(());
        }
    });
    let g1c = g1.clone();
    let d = done.clone();
    let g2 = Greenlet::new(move |(): ()| {
        while !d.get() {
            g1c.switch::<(), ()>(());
        }
    });
    *slot.borrow_mut() = Some(g2.clone());
    let t = Instant::now();
    g1.switch::<(), ()>(()); // returns when g1 ends
    let elapsed = t.elapsed();
    done.set(true);
    g2.switch::<(), ()>(()); // let g2 finish too
    assert!(g1.is_dead() && g2.is_dead());
    slot.borrow_mut().take();
    elapsed
}

/// As [`greenlet_pingpong_unit`], passing a counter (`u64`) each way.
fn greenlet_pingpong_u64(n: u64) -> Duration {
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let g1 = Greenlet::new(move |(): ()| -> u64 {
        let g2 = s.borrow().clone().expect("g2 is set before g1 starts");
        let mut v = 0u64;
        for _ in 0..n {
            v = g2.switch::<u64, u64>(v);
        }
        v
    });
    let g1c = g1.clone();
    let g2 = Greenlet::new(move |mut v: u64| -> u64 {
        while v != u64::MAX {
            v = g1c.switch::<u64, u64>(v + 1);
        }
        v
    });
    *slot.borrow_mut() = Some(g2.clone());
    let t = Instant::now();
    let v: u64 = g1.switch(());
    let elapsed = t.elapsed();
    assert_eq!(v, n);
    let end: u64 = g2.switch(u64::MAX);
    assert_eq!(end, u64::MAX);
    slot.borrow_mut().take();
    elapsed
}

/// The root and one greenlet switch to each other `n` times each.
fn greenlet_main_pingpong(n: u64) -> Duration {
    let main = Greenlet::current();
    let g = Greenlet::new(move |(): ()| loop {
        main.switch::<(), ()>(());
    });
    let t = Instant::now();
    for _ in 0..n {
        g.switch::<(), ()>(());
    }
    let elapsed = t.elapsed();
    g.kill();
    elapsed
}

/// Two spawned green threads each call `yield_now` `n` times.
fn yield_pingpong(n: u64) -> Duration {
    let t = Instant::now();
    let a = spawn(move || {
        for _ in 0..n {
            yield_now();
        }
    });
    let b = spawn(move || {
        for _ in 0..n {
            yield_now();
        }
    });
    a.join().expect("yielder a");
    b.join().expect("yielder b");
    t.elapsed()
}

/// Whose turn it is, and where each side's waker waits.
struct Court {
    turn: Cell<usize>,
    wakers: [RefCell<Option<Waker>>; 2],
}

/// One side of the park/wake ping-pong: waits for its turn `n` times, each
/// time handing the turn to the other side and waking it.
fn player(court: &Court, me: usize, n: u64) {
    let other = 1 - me;
    for _ in 0..n {
        while court.turn.get() != me {
            park(None, |w| *court.wakers[me].borrow_mut() = Some(w.clone()));
        }
        court.turn.set(other);
        let waker = court.wakers[other].borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Two green threads hand a turn back and forth `n` times each.
fn park_pingpong(n: u64) -> Duration {
    let court = Rc::new(Court {
        turn: Cell::new(0),
        wakers: [RefCell::new(None), RefCell::new(None)],
    });
    let t = Instant::now();
    let c = court.clone();
    let a = spawn(move || player(&c, 0, n));
    let c = court.clone();
    let b = spawn(move || player(&c, 1, n));
    a.join().expect("player a");
    b.join().expect("player b");
    t.elapsed()
}

/// A case: its name, the function running `n` iterations, and how many
/// counted operations one iteration is.
struct Case {
    name: &'static str,
    run: fn(u64) -> Duration,
    ops_per_iter: u64,
    target_ns: Option<f64>,
}

fn main() {
    let mode = Mode::from_args();
    let rounds = mode.rounds(9);
    let iters: u64 = mode.pick(1_000_000, 1_000);
    let cases = [
        Case {
            name: "greenlet g1<->g2 (unit)",
            run: greenlet_pingpong_unit,
            ops_per_iter: 2,
            target_ns: Some(40.0),
        },
        Case {
            name: "greenlet g1<->g2 (u64)",
            run: greenlet_pingpong_u64,
            ops_per_iter: 2,
            target_ns: Some(40.0),
        },
        Case {
            name: "greenlet main<->g (unit)",
            run: greenlet_main_pingpong,
            ops_per_iter: 2,
            target_ns: None,
        },
        Case {
            name: "yield_now x2",
            run: yield_pingpong,
            ops_per_iter: 2,
            target_ns: Some(60.0),
        },
        Case {
            name: "park/wake hand-off",
            run: park_pingpong,
            ops_per_iter: 2,
            target_ns: Some(80.0),
        },
    ];
    let mut table = Table::new();
    for case in cases.iter().filter(|c| mode.wants(c.name)) {
        common::watch(case.name, Duration::from_secs(60));
        black_box((case.run)(iters / 10)); // warm-up: stacks pooled, code paged in
        let samples: Vec<f64> = (0..rounds)
            .map(|_| ns_per((case.run)(iters), iters * case.ops_per_iter))
            .collect();
        common::unwatch();
        table.add(case.name, "ns/switch", &samples, case.target_ns);
    }
    table.print(&mode.title(&format!("switch ({iters} iterations x2 per round)")));
}
