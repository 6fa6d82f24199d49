//! Randomized model test of kills, timeouts and unwinding (issue 10's
//! "done when"): green threads run random plans mixing spawn, kill,
//! `with_timeout`, sleep, `Event` and `Queue`, holding guards whose
//! destructors park, kill, spawn or panic. Every case must end with no
//! abort, no hang and no leak: every green thread finished, every guard
//! dropped exactly once, every result one the plan can explain.
//!
//! An abort kills the process that runs the case, so the cases run in a
//! child process (this test binary re-run in child mode) and the parent
//! checks that it exited cleanly; each case runs on a fresh OS thread with
//! a time limit, so a hang fails with a message. `GREENHUB_MODEL_CASES`
//! sets the number of cases (`.ci/test` runs 10,000; the default run, 300).

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenhub::sync::{Event, Queue};
use greenhub::{sleep, spawn, with_timeout, yield_now, JoinHandle};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use util::{bounded_for, is_child, run_child};

/// Cases of the default `cargo test`; `.ci/test` sets 10,000.
const DEFAULT_CASES: u32 = 300;

const PANIC_MSG: &str = "model: planned panic";
const DROP_PANIC_MSG: &str = "model: planned panic in a destructor";

fn ms(n: u8) -> Duration {
    Duration::from_millis(u64::from(n))
}

/// How a wait may end.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Forever,
    Timeout(u8),
}

/// What a guard's destructor does.
#[derive(Debug, Clone, Copy)]
enum OnDrop {
    Nothing,
    Sleep(u8),
    Yield,
    /// Panics, unless the green thread is unwinding already (a second
    /// panic out of a destructor aborts any Rust program, greenhub or not).
    Panic,
    Kill(usize),
    /// `with_timeout` around a sleep.
    TimeoutSleep(u8, u8),
    GetQueue(Limit),
    WaitEvent(Limit),
    SetEvent,
    Spawn,
}

#[derive(Debug, Clone)]
enum Op {
    Sleep(u8),
    Yield,
    Guard(OnDrop),
    Panic,
    SetEvent,
    ClearEvent,
    WaitEvent(Limit),
    Put,
    Get(Limit),
    Kill(usize),
    Timeout(u8, Vec<Op>),
    Spawn(Vec<Op>),
}

fn limit() -> impl Strategy<Value = Limit> {
    prop_oneof![Just(Limit::Forever), (0u8..3).prop_map(Limit::Timeout)]
}

fn on_drop() -> impl Strategy<Value = OnDrop> {
    prop_oneof![
        Just(OnDrop::Nothing),
        (0u8..3).prop_map(OnDrop::Sleep),
        Just(OnDrop::Yield),
        Just(OnDrop::Panic),
        (0usize..8).prop_map(OnDrop::Kill),
        (0u8..3, 0u8..3).prop_map(|(t, s)| OnDrop::TimeoutSleep(t, s)),
        limit().prop_map(OnDrop::GetQueue),
        limit().prop_map(OnDrop::WaitEvent),
        Just(OnDrop::SetEvent),
        Just(OnDrop::Spawn),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let leaf = prop_oneof![
        1 => (0u8..3).prop_map(Op::Sleep),
        1 => Just(Op::Yield),
        3 => on_drop().prop_map(Op::Guard),
        1 => Just(Op::Panic),
        1 => Just(Op::SetEvent),
        1 => Just(Op::ClearEvent),
        1 => limit().prop_map(Op::WaitEvent),
        1 => Just(Op::Put),
        1 => limit().prop_map(Op::Get),
        1 => (0usize..8).prop_map(Op::Kill),
    ];
    leaf.prop_recursive(2, 24, 4, |inner| {
        prop_oneof![
            (0u8..4, prop::collection::vec(inner.clone(), 0..4)).prop_map(|(t, ops)| Op::Timeout(t, ops)),
            prop::collection::vec(inner, 0..4).prop_map(Op::Spawn),
        ]
    })
}

/// What the main green thread does while the workers run.
#[derive(Debug, Clone, Copy)]
enum Step {
    Yield,
    Sleep(u8),
    Kill(usize),
    SetEvent,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Yield),
        (0u8..3).prop_map(Step::Sleep),
        (0usize..8).prop_map(Step::Kill),
        Just(Step::SetEvent),
    ]
}

type Plan = (Vec<Vec<Op>>, Vec<Step>);

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec(prop::collection::vec(op(), 0..6), 1..5),
        prop::collection::vec(step(), 0..8),
    )
}

/// What the green threads of one case share.
struct Ctx {
    event: Event,
    queue: Queue<u32>,
    /// Every green thread the case spawned, in order.
    workers: RefCell<Vec<Rc<JoinHandle<()>>>>,
    /// Guards alive: back to 0 when the case is over, or one leaked.
    live: Cell<i64>,
    /// Guards dropped twice would make `live` negative.
    dropped: Cell<u64>,
    made: Cell<u64>,
}

impl Ctx {
    fn worker(&self, i: usize) -> Option<Rc<JoinHandle<()>>> {
        let w = self.workers.borrow();
        (!w.is_empty()).then(|| w[i % w.len()].clone())
    }

    fn spawn(self: &Rc<Self>, ops: Vec<Op>) {
        let ctx = self.clone();
        let h = spawn(move || run(&ctx, &ops));
        self.workers.borrow_mut().push(Rc::new(h));
    }
}

struct Guard {
    ctx: Rc<Ctx>,
    on_drop: OnDrop,
}

impl Guard {
    fn new(ctx: &Rc<Ctx>, on_drop: OnDrop) -> Guard {
        ctx.live.set(ctx.live.get() + 1);
        ctx.made.set(ctx.made.get() + 1);
        Guard {
            ctx: ctx.clone(),
            on_drop,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let ctx = &self.ctx;
        ctx.live.set(ctx.live.get() - 1);
        ctx.dropped.set(ctx.dropped.get() + 1);
        match self.on_drop {
            OnDrop::Nothing => {}
            OnDrop::Sleep(n) => sleep(ms(n)),
            OnDrop::Yield => yield_now(),
            OnDrop::Panic => {
                if !std::thread::panicking() {
                    panic!("{DROP_PANIC_MSG}");
                }
            }
            OnDrop::Kill(i) => {
                if let Some(w) = ctx.worker(i) {
                    w.kill();
                }
            }
            OnDrop::TimeoutSleep(t, s) => {
                let _ = with_timeout(ms(t), || sleep(ms(s)));
            }
            OnDrop::GetQueue(l) => {
                let _ = get(ctx, l);
            }
            OnDrop::WaitEvent(l) => wait_event(ctx, l),
            OnDrop::SetEvent => ctx.event.set(),
            OnDrop::Spawn => ctx.spawn(vec![Op::Sleep(1)]),
        }
    }
}

fn get(ctx: &Ctx, l: Limit) -> Option<u32> {
    match l {
        Limit::Forever => ctx.queue.get().ok(),
        Limit::Timeout(t) => ctx.queue.get_timeout(ms(t)).ok(),
    }
}

fn wait_event(ctx: &Ctx, l: Limit) {
    match l {
        Limit::Forever => ctx.event.wait(),
        Limit::Timeout(t) => {
            let _ = ctx.event.wait_timeout(ms(t));
        }
    }
}

fn run(ctx: &Rc<Ctx>, ops: &[Op]) {
    let mut guards = Vec::new();
    for op in ops {
        match op {
            Op::Sleep(n) => sleep(ms(*n)),
            Op::Yield => yield_now(),
            Op::Guard(d) => guards.push(Guard::new(ctx, *d)),
            Op::Panic => panic!("{PANIC_MSG}"),
            Op::SetEvent => ctx.event.set(),
            Op::ClearEvent => ctx.event.clear(),
            Op::WaitEvent(l) => wait_event(ctx, *l),
            Op::Put => {
                let _ = ctx.queue.put(7);
            }
            Op::Get(l) => {
                let _ = get(ctx, *l);
            }
            Op::Kill(i) => {
                if let Some(w) = ctx.worker(*i) {
                    w.kill();
                }
            }
            Op::Timeout(t, inner) => {
                let _ = with_timeout(ms(*t), || run(ctx, inner));
            }
            Op::Spawn(inner) => ctx.spawn(inner.clone()),
        }
    }
}

/// One case, on the current (fresh) OS thread's hub.
fn case((plans, steps): Plan) -> Result<(), TestCaseError> {
    let ctx = Rc::new(Ctx {
        event: Event::new(),
        queue: Queue::new(),
        workers: RefCell::new(Vec::new()),
        live: Cell::new(0),
        dropped: Cell::new(0),
        made: Cell::new(0),
    });
    for ops in plans {
        ctx.spawn(ops);
    }
    for s in steps {
        match s {
            Step::Yield => yield_now(),
            Step::Sleep(n) => sleep(ms(n)),
            Step::Kill(i) => {
                if let Some(w) = ctx.worker(i) {
                    w.kill();
                }
            }
            Step::SetEvent => ctx.event.set(),
        }
    }
    // Kill everything still running, including what destructors spawned
    // meanwhile, until nothing is left.
    for round in 0.. {
        prop_assert!(round < 1000, "green threads keep appearing");
        let workers: Vec<_> = ctx.workers.borrow().clone();
        if workers.iter().all(|w| w.is_finished()) {
            break;
        }
        for w in &workers {
            w.kill();
        }
    }
    let workers = std::mem::take(&mut *ctx.workers.borrow_mut());
    for w in workers {
        let h = Rc::into_inner(w).expect("the case holds the last handle");
        match h.join() {
            Ok(()) => {}
            Err(e) if e.is_killed() => {}
            Err(e) => {
                let msg = e.panic_message().unwrap_or("");
                prop_assert!(
                    msg == PANIC_MSG || msg == DROP_PANIC_MSG,
                    "unexpected end of a green thread: {e}"
                );
            }
        }
    }
    prop_assert_eq!(ctx.live.get(), 0, "a guard leaked (never dropped)");
    prop_assert_eq!(ctx.dropped.get(), ctx.made.get());
    prop_assert!(!std::thread::panicking());
    Ok(())
}

fn cases() -> u32 {
    std::env::var("GREENHUB_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn kills_timeouts_and_destructors_never_abort_hang_or_leak() {
    let n = cases();
    if !is_child("model") {
        // About 20 ms a case at worst on a loaded machine, plus slack.
        let limit = Duration::from_secs(60 + u64::from(n) / 20);
        let out = run_child(
            "kills_timeouts_and_destructors_never_abort_hang_or_leak",
            "model",
            limit,
        );
        assert!(
            out.status.success(),
            "the model's child process failed ({:?}): an abort shows as a signal\nstdout:\n{}\nstderr (tail):\n{}",
            out.status,
            out.stdout,
            tail(&out.stderr)
        );
        assert!(
            out.stdout.contains(&format!("model: {n} cases passed")),
            "{}",
            out.stdout
        );
        return;
    }
    // Planned panics are expected by the thousand: report only others.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !msg.starts_with("model: ") {
            eprintln!("panic: {info}");
        }
    }));
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&plan(), |p| bounded_for(Duration::from_secs(20), move || case(p)));
    let _ = std::panic::take_hook();
    if let Err(e) = result {
        panic!("{e}");
    }
    println!("model: {n} cases passed");
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(4000);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}
