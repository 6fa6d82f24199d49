//! Signals on the hub: wait, handlers, several waiters and hubs, the
//! previous disposition, and Ctrl+C as a graceful stop of an example.
//!
//! Each in-process test uses a signal of its own, so tests running in
//! parallel never see each other's signals.

mod util;

use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use greenhub::signal::{self, Signals};
use util::{bounded, wait_exit, wait_for_line};

/// The signal test `k` (1 to 8) uses, each test its own so that tests in
/// parallel do not see each other's arrivals. Signals every supported system
/// has (macOS has no realtime signals) and nothing else here raises.
fn rt(k: usize) -> i32 {
    let spare = [
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGURG,
        libc::SIGPROF,
        libc::SIGVTALRM,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGIO,
    ];
    spare[k - 1]
}

/// The handler address of `signo`'s current disposition.
fn disposition(signo: i32) -> libc::sighandler_t {
    // SAFETY: all-zero is a valid sigaction to write into.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only.
    assert_eq!(unsafe { libc::sigaction(signo, std::ptr::null(), &mut old) }, 0);
    old.sa_sigaction
}

#[test]
fn wait_returns_when_the_signal_arrives() {
    bounded(|| {
        let waiter = greenhub::spawn(|| signal::wait(libc::SIGUSR1));
        greenhub::yield_now();
        assert!(!waiter.is_finished());
        signal::raise(libc::SIGUSR1).unwrap();
        waiter.join().unwrap().unwrap();
    });
}

#[test]
fn every_waiter_on_the_hub_wakes() {
    let s = rt(1);
    bounded(move || {
        let waiters: Vec<_> = (0..3).map(|_| greenhub::spawn(move || signal::wait(s))).collect();
        greenhub::yield_now();
        signal::raise(s).unwrap();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
    });
}

#[test]
fn each_hub_that_asked_receives_the_signal() {
    let s = rt(2);
    let (subscribed, ready) = mpsc::channel();
    let hubs: Vec<_> = (0..2)
        .map(|i| greenhub::thread::spawn_hub(format!("sig-{i}")).unwrap())
        .collect();
    let waits: Vec<_> = hubs
        .iter()
        .map(|hub| {
            let subscribed = subscribed.clone();
            hub.spawn(move || {
                let signals = Signals::new(s).unwrap();
                subscribed.send(()).unwrap();
                signals.recv_timeout(Duration::from_secs(10))
            })
            .unwrap()
        })
        .collect();
    for _ in 0..2 {
        ready.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    signal::raise(s).unwrap();
    for w in waits {
        w.join().unwrap().unwrap();
    }
    for hub in hubs {
        hub.stop();
    }
}

#[test]
fn a_hub_waiting_for_another_signal_is_not_woken() {
    let (s, other) = (rt(3), rt(4));
    bounded(move || {
        let asked = Signals::new(s).unwrap();
        let bystander = greenhub::spawn(move || signal::wait_timeout(other, Duration::from_millis(100)));
        greenhub::yield_now();
        signal::raise(s).unwrap();
        asked.recv();
        let err = bystander.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn signals_keeps_an_arrival_that_came_before_recv() {
    let s = rt(5);
    bounded(move || {
        let signals = Signals::new(s).unwrap();
        signal::raise(s).unwrap();
        greenhub::sleep(Duration::from_millis(50)); // delivered meanwhile
        signals.recv_timeout(Duration::from_millis(1)).unwrap();
        let again = signals.recv_timeout(Duration::from_millis(20));
        assert_eq!(
            again.unwrap_err().kind(),
            ErrorKind::TimedOut,
            "one arrival, received once"
        );
    });
}

#[test]
fn a_handler_runs_on_each_arrival_until_cancelled() {
    let s = rt(6);
    bounded(move || {
        let hits = Rc::new(Cell::new(0));
        let h = hits.clone();
        let on_hub = std::thread::current().id();
        let handler = signal::on(s, move || {
            assert_eq!(std::thread::current().id(), on_hub);
            h.set(h.get() + 1);
        })
        .unwrap();
        let sync = Signals::new(s).unwrap();
        for expected in 1..=2 {
            signal::raise(s).unwrap();
            sync.recv();
            greenhub::yield_now(); // the handler runs as a callback after the wake
            assert_eq!(hits.get(), expected);
        }
        handler.cancel();
        signal::raise(s).unwrap();
        sync.recv();
        greenhub::yield_now();
        assert_eq!(hits.get(), 2, "a cancelled handler does not run");
    });
}

#[test]
fn wait_timeout_elapses() {
    let s = rt(7);
    bounded(move || {
        let err = signal::wait_timeout(s, Duration::from_millis(20)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn signals_that_cannot_be_handled_are_refused() {
    bounded(|| {
        for bad in [
            0,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            1000,
            -1,
        ] {
            let err = Signals::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "signal {bad}");
        }
    });
}

#[test]
fn the_previous_disposition_comes_back_when_nothing_waits() {
    let s = rt(8);
    bounded(move || {
        assert_eq!(disposition(s), libc::SIG_DFL);
        let handler = signal::on(s, || {}).unwrap();
        assert_ne!(disposition(s), libc::SIG_DFL);
        let waiter = greenhub::spawn(move || signal::wait(s));
        greenhub::yield_now();
        drop(handler);
        assert_ne!(disposition(s), libc::SIG_DFL, "the waiter still waits");
        waiter.kill(); // unwinds out of the wait, which unsubscribes
        assert!(waiter.join().unwrap_err().is_killed());
        assert_eq!(disposition(s), libc::SIG_DFL);
    });
}

#[test]
fn sigint_stops_the_graceful_shutdown_example_after_every_cleanup() {
    let (mut child, lines) = util::start_example("graceful_shutdown", &[]);
    wait_for_line(&lines, "ready", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200)); // the tasks are mid-work
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: kill with a child's pid and a signal number has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (_, output) = wait_for_line(&lines, "all tasks cleaned up", Duration::from_secs(20));
    let status = wait_exit(&mut child.0, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}; output {output:?}");
    for n in 0..3 {
        let line = format!("task {n} cleaned up");
        assert!(output.contains(&line), "missing {line:?} in {output:?}");
    }
}
