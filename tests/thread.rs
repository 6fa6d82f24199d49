//! Handing work to hubs from other OS threads.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use greenhub::thread::{current_hub, spawn_hub, Stopped};
use greenhub::JoinError;
use util::bounded;

#[test]
fn remote_spawn_returns_its_value_to_a_plain_os_thread() {
    let hub = spawn_hub("t-value").unwrap();
    let h = hub
        .spawn(|| std::thread::current().name().map(str::to_owned))
        .unwrap();
    assert_eq!(h.join().unwrap().as_deref(), Some("t-value"));
    hub.stop();
}

#[test]
fn submissions_from_eight_threads_each_run_exactly_once() {
    let hub = spawn_hub("t-eight").unwrap();
    const PER: usize = 2_000;
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..8 * PER).map(|_| AtomicUsize::new(0)).collect());
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (hub, runs, start) = (hub.clone(), runs.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..PER {
                    let runs = runs.clone();
                    hub.call_soon(move || {
                        runs[t * PER + i].fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A spawn queued after every call_soon runs after them all.
    hub.spawn(|| ()).unwrap().join().unwrap();
    assert!(
        runs.iter().all(|r| r.load(Ordering::SeqCst) == 1),
        "each ran exactly once"
    );
    hub.stop();
}

#[test]
fn join_timeout_elapses_then_join_succeeds() {
    let hub = spawn_hub("t-timeout").unwrap();
    let mut h = hub
        .spawn(|| {
            greenhub::sleep(Duration::from_millis(100));
            7
        })
        .unwrap();
    let t = Instant::now();
    assert!(matches!(
        h.join_timeout(Duration::from_millis(10)),
        Err(JoinError::TimedOut)
    ));
    assert!(t.elapsed() < Duration::from_millis(90));
    assert_eq!(h.join_timeout(Duration::from_secs(10)).unwrap(), 7);
    assert!(matches!(
        h.join_timeout(Duration::from_secs(1)),
        Err(JoinError::AlreadyJoined)
    ));
    hub.stop();
}

#[test]
fn a_remote_panic_reaches_the_joiner() {
    let hub = spawn_hub("t-panic").unwrap();
    let h = hub.spawn(|| -> u8 { panic!("remote boom") }).unwrap();
    let err = h.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("remote boom"));
    // The hub survives its green thread's panic.
    assert_eq!(hub.spawn(|| 1).unwrap().join().unwrap(), 1);
    hub.stop();
}

#[test]
fn a_green_thread_joins_a_remote_one_without_blocking_its_hub() {
    bounded(|| {
        let hub = spawn_hub("t-green").unwrap();
        let ticker = greenhub::spawn(|| {
            for _ in 0..5 {
                greenhub::sleep(Duration::from_millis(5));
            }
        });
        let remote = hub
            .spawn(|| {
                greenhub::sleep(Duration::from_millis(80));
                "far"
            })
            .unwrap();
        assert_eq!(remote.join().unwrap(), "far");
        assert!(
            ticker.is_finished(),
            "this hub kept running while its root waited"
        );
        hub.stop();
    });
}

#[test]
fn stop_refuses_later_work_and_drops_queued_work_unrun() {
    let hub = spawn_hub("t-stop").unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    // Keep the hub busy so submissions queue up behind the stop.
    let blocker = hub
        .spawn(|| std::thread::sleep(Duration::from_millis(50)))
        .unwrap();
    hub.stop();
    let r = ran.clone();
    let late = hub.call_soon(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(late, Err(Stopped));
    assert!(hub.spawn(|| ()).is_err());
    assert!(hub.is_stopped());
    blocker.join().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "nothing runs after stop returns");
}

#[test]
fn submissions_racing_a_stop_either_run_or_report_hub_stopped() {
    let hub = spawn_hub("t-race").unwrap();
    let submitters: Vec<_> = (0..4)
        .map(|_| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let mut outcomes = (0, 0, 0);
                for _ in 0..500 {
                    match hub.spawn(|| 1) {
                        Err(Stopped) => outcomes.2 += 1,
                        Ok(h) => match h.join() {
                            Ok(1) => outcomes.0 += 1,
                            Err(JoinError::HubStopped) => outcomes.1 += 1,
                            other => panic!("unexpected {other:?}"),
                        },
                    }
                }
                outcomes
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    hub.stop();
    let mut total = 0;
    for s in submitters {
        let (ran, dropped, refused) = s.join().unwrap();
        total += ran + dropped + refused;
    }
    assert_eq!(total, 2_000, "every submission got an answer (none hung)");
}

#[test]
fn current_hub_takes_work_from_another_thread() {
    bounded(|| {
        let me = current_hub();
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let h = me.spawn(move || d.fetch_add(1, Ordering::SeqCst)).unwrap();
        let t = std::thread::spawn(move || h.join().unwrap());
        // The root parks; the hub runs the remote spawn; the std thread joins it.
        while done.load(Ordering::SeqCst) == 0 {
            greenhub::sleep(Duration::from_millis(1));
        }
        assert_eq!(t.join().unwrap(), 0);
    });
}

#[test]
fn stopping_a_hub_ends_the_joins_of_its_unfinished_remote_green_threads() {
    let hub = spawn_hub("t-unfinished").unwrap();
    let sleeper = hub.spawn(|| greenhub::sleep(Duration::from_secs(60))).unwrap();
    // Make sure the sleeper has started before the stop.
    hub.spawn(|| ()).unwrap().join().unwrap();
    let t = Instant::now();
    hub.stop();
    assert!(matches!(sleeper.join(), Err(JoinError::Killed)));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "unwound at stop, not after its sleep"
    );
}
