//! Random-operation model tests: several green threads doing random queue or
//! semaphore operations, with random timeouts, `with_timeout` cuts and
//! kills; afterwards the structure must agree with a simple model (every
//! item put is gotten exactly once or still queued; no permit lost or
//! created).

mod util;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use greenhub::sync::{Queue, Semaphore};
use greenhub::{sleep, spawn, with_timeout, yield_now, JoinHandle};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use util::bounded;

/// Few cases, each a few milliseconds: the suite stays fast.
const CASES: u32 = 128;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

fn ms(n: u8) -> Duration {
    Duration::from_millis(u64::from(n))
}

/// How a waiting operation may give up.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// Waits as long as it takes (until killed at the end).
    None,
    /// Its own timeout (`put_timeout`, `acquire_timeout`...), in ms.
    Timeout(u8),
    /// Cut by `with_timeout` after this many ms.
    Cut(u8),
    /// Doesn't wait at all (`try_` variants).
    Try,
}

fn limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        Just(Limit::None),
        (0u8..3).prop_map(Limit::Timeout),
        (0u8..3).prop_map(Limit::Cut),
        Just(Limit::Try),
    ]
}

/// What the main green thread does while the workers run.
#[derive(Debug, Clone, Copy)]
enum Step {
    Yield,
    Sleep(u8),
    Kill(usize),
}

fn steps(workers: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        Just(Step::Yield),
        (0u8..3).prop_map(Step::Sleep),
        (0..workers).prop_map(Step::Kill),
    ];
    prop::collection::vec(step, 0..10)
}

/// Runs the main green thread's steps, then kills every worker still
/// running (they may be parked for good), and checks none panicked.
fn drive(workers: Vec<JoinHandle<()>>, steps: &[Step]) -> Result<(), TestCaseError> {
    for step in steps {
        match *step {
            Step::Yield => yield_now(),
            Step::Sleep(n) => sleep(ms(n)),
            Step::Kill(i) => workers[i].kill(),
        }
    }
    for w in &workers {
        w.kill();
    }
    for w in workers {
        if let Err(e) = w.join() {
            prop_assert!(e.is_killed(), "a worker failed: {e}");
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum QOp {
    Put(Limit),
    Get(Limit),
    Pause(u8),
}

#[derive(Default)]
struct QRecord {
    attempted: HashSet<u32>,
    put_ok: Vec<u32>,
    got: Vec<u32>,
}

fn queue_op(q: &Queue<u32>, rec: &RefCell<QRecord>, op: &QOp, id: u32) {
    match *op {
        QOp::Put(limit) => {
            rec.borrow_mut().attempted.insert(id);
            let ok = match limit {
                Limit::None => q.put(id).is_ok(),
                Limit::Timeout(t) => q.put_timeout(id, ms(t)).is_ok(),
                Limit::Cut(t) => with_timeout(ms(t), || q.put(id)).is_ok_and(|r| r.is_ok()),
                Limit::Try => q.try_put(id).is_ok(),
            };
            if ok {
                rec.borrow_mut().put_ok.push(id);
            }
        }
        QOp::Get(limit) => {
            let got = match limit {
                Limit::None => q.get().ok(),
                Limit::Timeout(t) => q.get_timeout(ms(t)).ok(),
                // Recorded inside the section: nothing can switch between
                // the get returning and the record, so a cut cannot lose it.
                Limit::Cut(t) => with_timeout(ms(t), || {
                    let got = q.get().ok();
                    rec.borrow_mut().got.extend(got);
                    None
                })
                .unwrap_or(None),
                Limit::Try => q.try_get().ok(),
            };
            rec.borrow_mut().got.extend(got);
        }
        QOp::Pause(n) => sleep(ms(n)),
    }
}

fn qop() -> impl Strategy<Value = QOp> {
    prop_oneof![
        3 => limit().prop_map(QOp::Put),
        3 => limit().prop_map(QOp::Get),
        1 => (0u8..2).prop_map(QOp::Pause),
    ]
}

type QueuePlan = (Option<usize>, Vec<Vec<QOp>>, Vec<Step>);

fn queue_plan() -> impl Strategy<Value = QueuePlan> {
    let cap = prop_oneof![Just(None), (0usize..4).prop_map(Some)];
    let workers = prop::collection::vec(prop::collection::vec(qop(), 1..8), 2..5);
    (cap, workers).prop_flat_map(|(cap, workers)| {
        let n = workers.len();
        (Just(cap), Just(workers), steps(n))
    })
}

fn check_queue((cap, plans, steps): QueuePlan) -> Result<(), TestCaseError> {
    let q = Rc::new(match cap {
        None => Queue::new(),
        Some(c) => Queue::bounded(c),
    });
    let rec = Rc::new(RefCell::new(QRecord::default()));
    let workers: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(w, ops)| {
            let (q, rec) = (q.clone(), rec.clone());
            spawn(move || {
                for (i, op) in ops.iter().enumerate() {
                    queue_op(&q, &rec, op, (w * 100 + i) as u32);
                }
            })
        })
        .collect();
    drive(workers, &steps)?;
    let mut left = Vec::new();
    while let Ok(item) = q.try_get() {
        left.push(item);
    }
    let rec = rec.borrow();
    let mut seen = HashSet::new();
    for item in rec.got.iter().chain(&left) {
        prop_assert!(seen.insert(*item), "item {item} came out twice");
        prop_assert!(rec.attempted.contains(item), "item {item} was never put");
    }
    for item in &rec.put_ok {
        prop_assert!(seen.contains(item), "item {item} was put and lost");
    }
    // Every item that got in counts once for task_done, no more.
    for _ in 0..seen.len() {
        prop_assert!(q.task_done().is_ok());
    }
    prop_assert!(q.task_done().is_err());
    prop_assert!(q.join_timeout(Duration::ZERO));
    Ok(())
}

#[test]
fn queue_agrees_with_its_model_under_timeouts_and_kills() {
    bounded(|| {
        runner().run(&queue_plan(), check_queue).unwrap();
    });
}

/// Counts holders; the count drops when the guard does, even while
/// unwinding.
struct Holding(Rc<Cell<usize>>);

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

#[derive(Debug, Clone)]
struct SemOp {
    limit: Limit,
    /// Milliseconds to hold the permit (0: one yield).
    hold: u8,
}

fn sem_op(sem: &Semaphore, holders: &Rc<Cell<usize>>, max: usize, op: &SemOp) {
    let hold = || {
        holders.set(holders.get() + 1);
        assert!(holders.get() <= max, "{} holders of {max} permits", holders.get());
        let _holding = Holding(holders.clone());
        match op.hold {
            0 => yield_now(),
            n => sleep(ms(n)),
        }
    };
    match op.limit {
        Limit::None => {
            let _p = sem.acquire();
            hold();
        }
        Limit::Timeout(t) => {
            if let Ok(_p) = sem.acquire_timeout(ms(t)) {
                hold();
            }
        }
        Limit::Cut(t) => {
            let _ = with_timeout(ms(t), || {
                let _p = sem.acquire();
                hold();
            });
        }
        Limit::Try => {
            if let Some(_p) = sem.try_acquire() {
                hold();
            }
        }
    }
}

type SemPlan = (usize, Vec<Vec<SemOp>>, Vec<Step>);

fn sem_plan() -> impl Strategy<Value = SemPlan> {
    let op = (limit(), 0u8..3).prop_map(|(limit, hold)| SemOp { limit, hold });
    let workers = prop::collection::vec(prop::collection::vec(op, 1..6), 2..6);
    (1usize..4, workers).prop_flat_map(|(permits, workers)| {
        let n = workers.len();
        (Just(permits), Just(workers), steps(n))
    })
}

fn check_semaphore((permits, plans, steps): SemPlan) -> Result<(), TestCaseError> {
    let sem = Rc::new(Semaphore::new(permits));
    let holders = Rc::new(Cell::new(0));
    let workers: Vec<_> = plans
        .into_iter()
        .map(|ops| {
            let (sem, holders) = (sem.clone(), holders.clone());
            spawn(move || {
                for op in &ops {
                    sem_op(&sem, &holders, permits, op);
                }
            })
        })
        .collect();
    drive(workers, &steps)?;
    prop_assert_eq!(holders.get(), 0);
    prop_assert_eq!(sem.available(), permits, "permits lost or created");
    Ok(())
}

#[test]
fn semaphore_agrees_with_its_model_under_timeouts_and_kills() {
    bounded(|| {
        runner().run(&sem_plan(), check_semaphore).unwrap();
    });
}
