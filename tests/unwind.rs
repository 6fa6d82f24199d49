//! The rules for destructors (crate docs): a green thread that is unwinding
//! never switches away. Its parks return at once as if their deadline had
//! passed, so no second throw can reach it (which would abort the process)
//! and no other green thread runs while std's per-OS-thread panic count is
//! raised.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenhub::sync::{Event, Queue};
use greenhub::{sleep, spawn, with_timeout, yield_now, Greenlet, SwitchError};
use util::{assert_child_passes, bounded, is_child};

/// Sleeps in its destructor and records what it saw there.
struct SlowDrop {
    log: Rc<RefCell<Vec<String>>>,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let t = Instant::now();
        sleep(Duration::from_millis(50));
        self.log.borrow_mut().push(format!(
            "slept {:?} panicking={}",
            t.elapsed(),
            std::thread::panicking()
        ));
    }
}

fn log() -> Rc<RefCell<Vec<String>>> {
    Rc::new(RefCell::new(Vec::new()))
}

/// Reproducer r2: a second kill while the first kill's destructor sleeps
/// used to throw into the unwinding green thread: "panic in a destructor
/// during cleanup", exit 134. Run in a child process, since before the fix
/// this aborted the whole test binary.
#[test]
fn a_second_kill_during_cleanup_does_not_abort() {
    if !is_child("double_kill") {
        return assert_child_passes(
            "a_second_kill_during_cleanup_does_not_abort",
            "double_kill",
            Duration::from_secs(20),
            "survived (no abort)",
        );
    }
    let l = log();
    let l2 = l.clone();
    let h = Rc::new(spawn(move || {
        let _g = SlowDrop { log: l2 };
        sleep(Duration::from_secs(10));
    }));
    yield_now();
    let h2 = h.clone();
    let killer = spawn(move || h2.kill());
    sleep(Duration::from_millis(10));
    h.kill();
    killer.join().unwrap();
    assert!(h.is_finished());
    // The destructor's sleep returned at once: it ran while unwinding.
    let seen = l.borrow();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].ends_with("panicking=true"), "{seen:?}");
    println!("survived (no abort)");
}

/// An outer `with_timeout` expiring while a section's destructor sleeps
/// (the second throw of r2's kind).
#[test]
fn an_outer_timeout_during_cleanup_does_not_abort() {
    if !is_child("outer_timeout") {
        return assert_child_passes(
            "an_outer_timeout_during_cleanup_does_not_abort",
            "outer_timeout",
            Duration::from_secs(20),
            "survived outer timeout",
        );
    }
    let l = log();
    let l2 = l.clone();
    let r = with_timeout(Duration::from_millis(30), move || {
        with_timeout(Duration::from_millis(10), move || {
            let _g = SlowDrop { log: l2 };
            sleep(Duration::from_secs(10));
        })
    });
    // The inner section's time ran out first; its cleanup did not wait, so
    // the outer one never fired into it.
    assert_eq!(r, Ok(Err(greenhub::Elapsed)));
    assert_eq!(l.borrow().len(), 1);
    println!("survived outer timeout");
}

/// Reproducer r3: while a killed green thread ran a destructor that
/// sleeps, every other green thread saw `thread::panicking() == true`, and
/// a std `Mutex` guard dropped there was poisoned.
#[test]
fn panicking_does_not_leak_to_other_green_threads() {
    bounded(|| {
        let a = Rc::new(spawn(|| {
            let _g = SlowDrop { log: log() };
            sleep(Duration::from_secs(10));
        }));
        yield_now();
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        let b = spawn(move || {
            let mut g = m2.lock().unwrap();
            *g += 1;
            sleep(Duration::from_millis(10));
            let p = std::thread::panicking();
            drop(g);
            p
        });
        yield_now();
        let a2 = a.clone();
        let killer = spawn(move || a2.kill());
        sleep(Duration::from_millis(5));
        assert!(
            !std::thread::panicking(),
            "main sees another green thread's unwind"
        );
        assert!(!b.join().unwrap(), "B sees another green thread's unwind");
        assert!(!m.is_poisoned());
        killer.join().unwrap();
        assert!(a.is_finished());
    });
}

/// Every kind of park returns at once while unwinding, as if timed out:
/// sleep, an Event wait, a Queue get, a join, a yield; nothing else runs
/// meanwhile.
#[test]
fn parks_while_unwinding_return_at_once() {
    bounded(|| {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let others_ran = Rc::new(Cell::new(0u32));
        struct Probe(Rc<RefCell<Vec<String>>>, Rc<Cell<u32>>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let before = self.1.get();
                let t = Instant::now();
                sleep(Duration::from_secs(5));
                let ev = Event::new();
                ev.wait();
                let waited = ev.wait_timeout(Duration::from_secs(5));
                let q: Queue<u8> = Queue::new();
                let got = q.get();
                yield_now();
                let sleeper = spawn(|| sleep(Duration::from_secs(5)));
                let joined = sleeper.join();
                self.0.borrow_mut().push(format!(
                    "{waited} {got:?} {} {}",
                    matches!(joined, Err(greenhub::JoinError::TimedOut)),
                    self.1.get() == before && t.elapsed() < Duration::from_secs(2)
                ));
            }
        }
        let ticker_count = others_ran.clone();
        let ticker = spawn(move || loop {
            ticker_count.set(ticker_count.get() + 1);
            sleep(Duration::from_millis(1));
        });
        let (s, o) = (seen.clone(), others_ran.clone());
        let victim = spawn(move || {
            let _p = Probe(s, o);
            sleep(Duration::from_secs(10));
        });
        sleep(Duration::from_millis(5));
        victim.kill();
        assert!(victim.join().unwrap_err().is_killed());
        assert_eq!(*seen.borrow(), ["false Err(TimedOut) true true"]);
        ticker.kill();
    });
}

/// A kill made from a destructor of the green thread being unwound, of
/// itself, does nothing more (it is dying already) instead of aborting.
#[test]
fn killing_itself_while_unwinding_is_a_no_op() {
    if !is_child("self_kill") {
        return assert_child_passes(
            "killing_itself_while_unwinding_is_a_no_op",
            "self_kill",
            Duration::from_secs(20),
            "self kill survived",
        );
    }
    type Slot = Rc<RefCell<Option<Rc<greenhub::JoinHandle<()>>>>>;
    let me: Slot = Rc::new(RefCell::new(None));
    struct KillMe(Slot);
    impl Drop for KillMe {
        fn drop(&mut self) {
            let h = self.0.borrow().clone();
            if let Some(h) = h {
                h.kill(); // its own handle
            }
        }
    }
    let m = me.clone();
    let h = Rc::new(spawn(move || {
        let _k = KillMe(m);
        sleep(Duration::from_millis(5));
        panic!("boom");
    }));
    *me.borrow_mut() = Some(h.clone());
    while !h.is_finished() {
        sleep(Duration::from_millis(1));
    }
    me.borrow_mut().take();
    let h = Rc::into_inner(h).expect("the last handle");
    assert!(h.join().unwrap_err().is_panic());
    println!("self kill survived");
}

/// An explicit switch away from an unwinding green thread is refused with
/// `SwitchError::Unwinding` (`try_switch`), not made.
#[test]
fn switching_away_while_unwinding_is_refused() {
    bounded(|| {
        let result = Rc::new(RefCell::new(None));
        struct TrySwitch(Rc<RefCell<Option<String>>>);
        impl Drop for TrySwitch {
            fn drop(&mut self) {
                let g = Greenlet::new(|(): ()| ());
                let r = g.try_switch::<(), ()>(());
                *self.0.borrow_mut() = Some(match r {
                    Err(SwitchError::Unwinding) => "refused".to_owned(),
                    other => format!("{other:?}"),
                });
            }
        }
        let r = result.clone();
        let h = spawn(move || {
            let _t = TrySwitch(r);
            panic!("unwind");
        });
        assert!(h.join().is_err());
        assert_eq!(result.borrow().as_deref(), Some("refused"));
    });
}

/// Item 8: the last handle of a paused greenlet dropped, its body panicking
/// on the kill: reported on stderr with its id, not raised in the dropper,
/// also when the drop happens while the dropper unwinds (that aborted).
#[test]
fn greenlet_drop_reports_a_panic_on_kill() {
    if !is_child("greenlet_drop") {
        let out = util::run_child(
            "greenlet_drop_reports_a_panic_on_kill",
            "greenlet_drop",
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "{out:?}");
        assert!(out.stdout.contains("greenlet drops survived"), "{out:?}");
        assert_eq!(
            out.stderr.matches("panicked while being killed").count(),
            2,
            "{}",
            out.stderr
        );
        return;
    }
    fn stubborn() -> Greenlet {
        let g = Greenlet::new(|(): ()| {
            struct Bad;
            impl Drop for Bad {
                fn drop(&mut self) {
                    if std::thread::panicking() {
                        // Nested panic caught inside this destructor: fine.
                        let _ = std::panic::catch_unwind(|| panic!("inner"));
                    }
                }
            }
            let _b = Bad;
            let parent = Greenlet::current().parent().unwrap();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parent.switch::<(), ()>(()))).is_err()
            {
                panic!("refusing to die quietly");
            }
        });
        g.switch::<(), ()>(());
        g
    }
    // Plain drop.
    drop(stubborn());
    // Dropped while the dropper unwinds.
    let g = stubborn();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _g = g;
        panic!("outer");
    }));
    assert!(r.is_err());
    println!("greenlet drops survived");
}

/// Waits that can report nothing (`Mutex::lock` held elsewhere) panic
/// with a message saying why, instead of handing out a guard they do not
/// hold; I/O that would block is tried once and fails with `TimedOut`.
#[test]
fn lock_and_io_while_unwinding() {
    use greenhub::net::{TcpListener, TcpStream};
    use greenhub::sync::Mutex as GreenMutex;
    use std::io::Read;
    bounded(|| {
        let m = Rc::new(GreenMutex::new(0));
        let held = m.lock();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_server, _) = l.accept().unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        struct Probe(Rc<GreenMutex<i32>>, TcpStream, Rc<RefCell<Vec<String>>>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let m = self.0.clone();
                let lock = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    drop(m.lock());
                }));
                let msg = lock.err().map(|p| util::panic_message(&*p)).unwrap_or_default();
                let mut buf = [0u8; 4];
                let read = (&self.1).read(&mut buf).map_err(|e| e.kind());
                self.2.borrow_mut().push(format!(
                    "{} {read:?} {}",
                    msg.contains("the caller is unwinding"),
                    m.try_lock().is_none()
                ));
            }
        }
        let (m2, s2) = (m.clone(), seen.clone());
        let h = spawn(move || {
            let _p = Probe(m2, client, s2);
            panic!("unwind");
        });
        assert!(h.join().unwrap_err().is_panic());
        assert_eq!(*seen.borrow(), ["true Err(TimedOut) true"]);
        drop(held);
    });
}
