//! Faults at the edges of the hub, each reproduced first (issue 10): a
//! nested park, results and payloads dropped on the hub's stack, a
//! callback's payload that panics when dropped, a green thread joining
//! itself, deadlines past `Instant`'s range.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::hub::{park, Wake};
use greenhub::sync::Queue;
use greenhub::{sleep, spawn, spawn_later, with_timeout, Greenlet, JoinError};
use util::{bounded, expect_panic};

/// Reproducer r1: a blocking call inside `park`'s `register` closure left
/// the outer park unwakeable (its own deadline never ended it). Refused
/// with a clear panic; the green thread can park normally afterwards.
#[test]
fn nested_park_is_refused() {
    bounded(|| {
        let mut h = spawn(|| {
            let msg = expect_panic(|| {
                park(Some(Instant::now() + Duration::from_millis(20)), |_w| {
                    sleep(Duration::from_millis(1));
                })
            });
            let after = park(Some(Instant::now() + Duration::from_millis(5)), |_| {});
            (msg, after)
        });
        let (msg, after) = h.join_timeout(Duration::from_secs(5)).unwrap();
        assert!(msg.contains("inside another park's `register`"), "{msg}");
        assert_eq!(after, Wake::TimedOut);
    });
}

/// Reproducer r6: a detached green thread's result whose `Drop` sleeps was
/// dropped on the hub's stack, re-entering the hub as the root: main's
/// sleep never returned. Now it is dropped on the green thread's stack.
#[test]
fn a_detached_result_that_sleeps_in_drop_does_not_reenter_the_hub() {
    bounded(|| {
        let where_dropped = Rc::new(Cell::new(None));
        struct BlockingDrop(Rc<Cell<Option<u64>>>);
        impl Drop for BlockingDrop {
            fn drop(&mut self) {
                sleep(Duration::from_millis(30));
                self.0.set(Some(Greenlet::current().id()));
            }
        }
        let w = where_dropped.clone();
        let detached = spawn(move || BlockingDrop(w));
        let id = detached.id();
        drop(detached);
        let other = spawn(|| {
            sleep(Duration::from_millis(10));
            7
        });
        let t = Instant::now();
        sleep(Duration::from_millis(5));
        assert!(t.elapsed() < Duration::from_secs(2), "main's sleep was held up");
        assert_eq!(other.join().unwrap(), 7);
        sleep(Duration::from_millis(50));
        assert_eq!(where_dropped.get(), Some(id), "dropped on its own green thread");
    });
}

/// Reproducer r7: a detached result whose `Drop` panics unwound into
/// main's sleep and lost an unrelated green thread. Now the panic stays on
/// the detached green thread.
#[test]
fn a_detached_result_that_panics_in_drop_stays_contained() {
    bounded(|| {
        struct PanicDrop;
        impl Drop for PanicDrop {
            fn drop(&mut self) {
                panic!("PanicDrop from a detached green thread's result");
            }
        }
        drop(spawn(|| PanicDrop));
        let mut other = spawn(|| {
            sleep(Duration::from_millis(10));
            7
        });
        sleep(Duration::from_millis(20));
        assert_eq!(other.join_timeout(Duration::from_secs(5)).unwrap(), 7);
        assert_eq!(spawn(|| 1).join().unwrap(), 1);
    });
}

/// A handle dropped after its green thread finished drops the result
/// there, a panic of its `Drop` going no further than the handle's drop.
#[test]
fn a_finished_result_dropped_with_its_handle_is_contained() {
    bounded(|| {
        struct PanicDrop;
        impl Drop for PanicDrop {
            fn drop(&mut self) {
                panic!("dropped with the handle");
            }
        }
        let h = spawn(|| PanicDrop);
        sleep(Duration::from_millis(1));
        assert!(h.is_finished());
        drop(h);
        assert_eq!(spawn(|| 2).join().unwrap(), 2);
    });
}

/// Reproducer r9c: a paused greenlet returned by a detached task; its last
/// handle was dropped on the hub's stack, which switched into it from
/// inside the hub loop. Now it is unwound on the task's own stack. (This
/// one passed before the fix too: it guards the outcome, not the stack.)
#[test]
fn a_paused_greenlet_left_by_a_detached_task_is_unwound_off_the_hub() {
    bounded(|| {
        let unwound = Rc::new(Cell::new(false));
        let u = unwound.clone();
        let g = Greenlet::new(move |(): ()| {
            let _l = util::SetOnDrop(u);
            let parent = Greenlet::current().parent().unwrap();
            parent.switch::<(), ()>(());
        });
        g.switch::<(), ()>(());
        drop(spawn(move || g));
        let other = spawn(|| {
            sleep(Duration::from_millis(10));
            7
        });
        sleep(Duration::from_millis(20));
        assert_eq!(other.join().unwrap(), 7);
        assert!(unwound.get());
    });
}

/// Reproducer r8: a callback's panic payload whose `Drop` panics escaped
/// the callback with the "in a callback" flag still set: every later
/// blocking call was refused.
#[test]
fn a_callback_payload_that_panics_when_dropped_leaves_the_hub_usable() {
    bounded(|| {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("payload drop");
            }
        }
        greenhub::call_soon(|| std::panic::panic_any(Bomb));
        greenhub::yield_now();
        sleep(Duration::from_millis(1));
        assert_eq!(spawn(|| 3).join().unwrap(), 3);
    });
}

/// Item 16: a green thread joining itself parked forever, silently.
#[test]
fn joining_itself_is_refused() {
    bounded(|| {
        let slot: Rc<Cell<Option<Rc<greenhub::JoinHandle<()>>>>> = Rc::new(Cell::new(None));
        let s = slot.clone();
        let h = Rc::new(spawn(move || {
            let me = s.take().unwrap();
            let msg = expect_panic(|| greenhub::join_all([&*me]));
            assert!(msg.contains("join (or wait for) itself"), "{msg}");
        }));
        slot.set(Some(h.clone()));
        while !h.is_finished() {
            sleep(Duration::from_millis(1));
        }
    });
}

/// Item 10: `Duration::MAX` (and any deadline past `Instant`'s range)
/// means "never" everywhere a timeout is taken, instead of std's
/// "overflow when adding duration to instant".
#[test]
fn duration_max_means_never() {
    bounded(|| {
        let never = Duration::MAX;
        // with_timeout: no timer, the section runs to its end.
        assert_eq!(with_timeout(never, || 5), Ok(5));
        // join_timeout / join_all_timeout: as join.
        let mut h = spawn(|| {
            sleep(Duration::from_millis(2));
            6
        });
        assert_eq!(h.join_timeout(never).unwrap(), 6);
        let hs = [spawn(|| ()), spawn(|| ())];
        assert_eq!(greenhub::join_all_timeout(&hs, never), [0, 1]);
        // Queue::get_timeout: waits for the item.
        let q = Rc::new(Queue::new());
        let q2 = q.clone();
        spawn(move || q2.put(9).unwrap());
        assert_eq!(q.get_timeout(never), Ok(9));
        // call_later: never runs, stays cancellable.
        let c = greenhub::call_later(never, || panic!("never due"));
        assert!(c.is_pending());
        assert!(c.cancel());
        // spawn_later: never starts; a kill ends it.
        let late = spawn_later(never, || panic!("never starts"));
        sleep(Duration::from_millis(2));
        late.kill();
        assert!(matches!(late.join(), Err(JoinError::Killed)));
        // sleep: parks until killed.
        let sleeper = spawn(move || sleep(never));
        sleep(Duration::from_millis(2));
        assert!(!sleeper.is_finished());
        sleeper.kill();
        assert!(sleeper.join().unwrap_err().is_killed());
    });
}

/// `set_read_timeout(Some(Duration::MAX))` was accepted and then every
/// read panicked; now it reads as without a timeout.
#[test]
fn a_read_timeout_of_duration_max_reads() {
    use greenhub::net::{TcpListener, TcpStream};
    use std::io::{Read, Write};
    bounded(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut server, _) = l.accept().unwrap();
        server.set_read_timeout(Some(Duration::MAX)).unwrap();
        let writer = spawn(move || {
            sleep(Duration::from_millis(5));
            client.write_all(b"hi").unwrap();
            client
        });
        let mut buf = [0u8; 2];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        drop(writer.join().unwrap());
    });
}

/// Reproducer r12b: a green thread spawned but never run when its OS
/// thread exits: its closure is dropped as the hub goes, and a `Drop` that
/// calls `greenhub::spawn` there aborted the process ("thread local
/// panicked on drop"). Now the call fails with a clear panic, contained.
#[test]
fn a_greenhub_call_at_thread_exit_fails_cleanly() {
    if !util::is_child("tls_drop") {
        let out = util::run_child(
            "a_greenhub_call_at_thread_exit_fails_cleanly",
            "tls_drop",
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "{out:?}");
        assert!(out.stdout.contains("thread exit survived"), "{out:?}");
        assert!(out.stderr.contains("its hub is gone"), "{}", out.stderr);
        return;
    }
    struct UsesHub(std::sync::mpsc::Sender<&'static str>);
    impl Drop for UsesHub {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
            let _ = spawn(|| ());
            let _ = self.0.send("spawn returned");
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let u = UsesHub(tx);
        let _h = spawn(move || {
            let _u = u;
        });
        greenhub::call_later(Duration::from_secs(60), || ());
    })
    .join();
    assert!(r.is_ok());
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["dropped"]);
    println!("thread exit survived");
}

/// Reproducer r9: a detached task returns a paused greenlet whose parent
/// is the task itself (a cycle: the task's record holds its result, the
/// greenlet's stack holds its parent). The result is dropped as the task
/// ends, on its stack, which unwinds the greenlet.
#[test]
fn a_greenlet_returned_by_its_parent_task_is_unwound() {
    bounded(|| {
        let unwound = Rc::new(Cell::new(false));
        let u = unwound.clone();
        drop(spawn(move || {
            let g = Greenlet::new(move |(): ()| {
                let _l = util::SetOnDrop(u);
                let parent = Greenlet::current().parent().unwrap();
                parent.switch::<(), ()>(());
            });
            g.switch::<(), ()>(());
            g
        }));
        let other = spawn(|| {
            sleep(Duration::from_millis(10));
            7
        });
        sleep(Duration::from_millis(20));
        assert_eq!(other.join().unwrap(), 7);
        assert!(unwound.get());
    });
}

/// A detached green thread with a link keeps its result for the link (it
/// is dropped after the link ran, not as the green thread ends).
#[test]
fn a_detached_result_still_reaches_its_link() {
    bounded(|| {
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        let h = spawn(|| {
            sleep(Duration::from_millis(2));
            41
        });
        h.link_value(move |v| s.set(*v + 1));
        drop(h);
        sleep(Duration::from_millis(20));
        assert_eq!(seen.get(), 42);
    });
}
