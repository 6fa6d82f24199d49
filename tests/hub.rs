//! The hub: spawn/join, sleep, kill, timeouts, yield, callbacks,
//! run_forever/stop, park/Waker, and per-OS-thread hubs.

mod util;

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use greenhub::hub::{park, Waker};
use greenhub::{
    call_at, call_later, call_soon, join_all, join_all_timeout, run_forever, sleep, spawn, spawn_later, stop,
    with_timeout, yield_now, Builder, Elapsed, Greenlet, JoinError, JoinHandle, Wake,
};
use util::{bounded, expect_panic, flag, is_child, panic_message, SetOnDrop};

const MS: Duration = Duration::from_millis(1);
const LONG: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- spawn / join ----

#[test]
fn spawn_join_returns_the_value() {
    bounded(|| {
        let h = spawn(|| 6 * 7);
        assert_eq!(h.join().unwrap(), 42);
        let h = spawn(|| String::from("text"));
        assert_eq!(h.join().unwrap(), "text");
    });
}

#[test]
fn spawn_does_not_run_until_the_spawner_blocks() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let h = spawn(move || r.set(true));
        assert!(!ran.get());
        yield_now();
        assert!(ran.get());
        h.join().unwrap();
    });
}

#[test]
fn spawn_closures_need_not_be_send() {
    bounded(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let l = log.clone();
                spawn(move || l.borrow_mut().push(i))
            })
            .collect();
        join_all(&hs);
        assert_eq!(*log.borrow(), [0, 1, 2]);
    });
}

#[test]
fn join_error_tells_a_panic_with_its_payload() {
    bounded(|| {
        let h = spawn(|| -> u32 { panic!("boom") });
        let id = h.id();
        let err = h.join().unwrap_err();
        assert!(err.is_panic() && !err.is_killed());
        assert_eq!(err.panic_message(), Some("boom"));
        assert_eq!(err.to_string(), format!("green thread #{id} panicked: boom"));
        assert_eq!(panic_message(&*err.into_panic()), "boom");
    });
}

#[test]
fn join_error_names_the_green_thread_that_panicked() {
    bounded(|| {
        let h = greenhub::Builder::new()
            .name("panicker")
            .spawn(|| -> () { std::panic::panic_any(7u8) })
            .unwrap();
        let id = h.id();
        let err = h.join().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("green thread 'panicker' (#{id}) panicked")
        );
        assert!(format!("{err:?}").contains("panicker"), "{err:?}");
        let greenhub::JoinError::Panicked(p) = err else {
            panic!("not a panic")
        };
        assert_eq!((p.id(), p.name(), p.message()), (id, Some("panicker"), None));
        assert_eq!(p.payload().downcast_ref::<u8>(), Some(&7));
        // A panic joined from another OS thread names it as well.
        let hub = greenhub::thread::spawn_hub("far").unwrap();
        let remote = hub.spawn(|| -> () { panic!("far") }).unwrap();
        let err = remote.join().unwrap_err();
        hub.stop();
        let text = err.to_string();
        assert!(
            text.starts_with("green thread #") && text.ends_with(" panicked: far"),
            "{text}"
        );
    });
}

#[test]
fn join_error_with_a_formatted_and_a_non_string_payload() {
    bounded(|| {
        let h = spawn(|| -> u32 { panic!("code {}", 7) });
        assert_eq!(h.join().unwrap_err().panic_message(), Some("code 7"));
        let h = spawn(|| -> u32 { panic::panic_any(99_i64) });
        let err = h.join().unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), None);
        assert_eq!(err.into_panic().downcast_ref::<i64>(), Some(&99));
    });
}

#[test]
fn join_error_tells_a_kill() {
    bounded(|| {
        let h = spawn(|| sleep(LONG));
        yield_now();
        h.kill();
        let err = h.join().unwrap_err();
        assert!(err.is_killed() && !err.is_panic());
        assert!(matches!(err, JoinError::Killed));
        assert_eq!(err.panic_message(), None);
        assert_eq!(err.to_string(), "green thread was killed");
    });
}

#[test]
fn join_timeout_elapses_then_a_later_join_succeeds() {
    bounded(|| {
        let mut h = spawn(|| {
            sleep(ms(40));
            7
        });
        let start = Instant::now();
        assert!(matches!(h.join_timeout(ms(5)), Err(JoinError::TimedOut)));
        assert!(start.elapsed() >= ms(5));
        assert!(!h.is_finished());
        assert_eq!(h.join().unwrap(), 7);
    });
}

#[test]
fn join_timeout_returns_the_value_in_time() {
    bounded(|| {
        let mut h = spawn(|| {
            sleep(ms(5));
            "done"
        });
        assert_eq!(h.join_timeout(Duration::from_secs(5)).unwrap(), "done");
    });
}

#[test]
fn already_joined_after_the_result_was_taken() {
    bounded(|| {
        let mut h = spawn(|| 1);
        assert_eq!(h.join_timeout(Duration::from_secs(5)).unwrap(), 1);
        assert!(matches!(h.join_timeout(ms(1)), Err(JoinError::AlreadyJoined)));
        assert!(matches!(h.join(), Err(JoinError::AlreadyJoined)));
    });
}

#[test]
fn is_finished_name_and_id() {
    bounded(|| {
        let h = Builder::new()
            .name("worker")
            .spawn(|| (greenhub::current_name(), Greenlet::current().id()))
            .unwrap();
        let plain = spawn(greenhub::current_name);
        assert_eq!(h.name().as_deref(), Some("worker"));
        assert_eq!(plain.name(), None);
        assert_ne!(h.id(), plain.id());
        assert_ne!(h.id(), 0);
        assert!(!h.is_finished());
        join_all([&h]);
        assert!(h.is_finished());
        let id = h.id();
        let (name, inner_id) = h.join().unwrap();
        assert_eq!(name.as_deref(), Some("worker"));
        assert_eq!(inner_id, id, "the handle's id is the green thread's id");
        assert_eq!(plain.join().unwrap(), None);
        assert_eq!(greenhub::current_name(), None, "the root has no name");
    });
}

#[test]
fn builder_rejects_an_invalid_stack_size() {
    bounded(|| {
        let err = Builder::new().stack_size(0).spawn(|| ()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = Builder::new().stack_size((1 << 30) + 1).spawn(|| ()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = Builder::new().stack_size(0).spawn_later(MS, || ()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn builder_stack_size_is_honoured() {
    bounded(|| {
        let h = Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                let mut big = [0u8; 512 * 1024];
                black_box(&mut big);
                big[1000] = 3;
                black_box(&big)[1000] as usize + big.len()
            })
            .unwrap();
        assert_eq!(h.join().unwrap(), 3 + 512 * 1024);
    });
}

// ---- spawn_later ----

#[test]
fn spawn_later_starts_after_its_delay() {
    bounded(|| {
        let start = Instant::now();
        let h = spawn_later(ms(30), move || start.elapsed());
        let waited = h.join().unwrap();
        assert!(waited >= ms(30), "started after {waited:?}");
    });
}

#[test]
fn spawn_later_killed_before_start_never_runs() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let h = spawn_later(ms(10), move || r.set(true));
        h.kill();
        assert!(h.is_finished());
        sleep(ms(30));
        assert!(!ran.get());
        assert!(h.join().unwrap_err().is_killed());
    });
}

// ---- sleep ----

#[test]
fn sleep_sort_wakes_in_deadline_order() {
    bounded(|| {
        let order = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<_> = [30u64, 40, 10, 20]
            .into_iter()
            .map(|n| {
                let o = order.clone();
                spawn(move || {
                    sleep(ms(n));
                    o.borrow_mut().push(n);
                })
            })
            .collect();
        join_all(&hs);
        assert_eq!(*order.borrow(), [10, 20, 30, 40]);
    });
}

#[test]
fn sleepers_run_concurrently() {
    bounded(|| {
        let start = Instant::now();
        let hs: Vec<_> = (0..20).map(|_| spawn(|| sleep(ms(30)))).collect();
        join_all(&hs);
        let took = start.elapsed();
        assert!(took >= ms(30));
        assert!(took < ms(500), "20 sleeps of 30 ms took {took:?}: not concurrent");
    });
}

// ---- join_all ----

#[test]
fn join_all_waits_for_every_handle() {
    bounded(|| {
        let hs: Vec<_> = (1..=4u64)
            .map(|i| {
                spawn(move || {
                    sleep(ms(i * 3));
                    i
                })
            })
            .collect();
        join_all(&hs);
        assert!(hs.iter().all(JoinHandle::is_finished));
        let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 10);
    });
}

#[test]
fn join_all_timeout_returns_only_the_finished_indices() {
    bounded(|| {
        let fast = spawn(|| ());
        let slow = spawn(|| sleep(LONG));
        let fast2 = spawn(|| sleep(ms(2)));
        let start = Instant::now();
        let done = join_all_timeout([&fast, &slow, &fast2], ms(30));
        assert!(start.elapsed() >= ms(30));
        assert_eq!(done, [0, 2]);
        slow.kill();
        assert!(slow.join().unwrap_err().is_killed());
    });
}

// ---- kill ----

#[test]
fn kill_before_start_never_runs() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let h = spawn(move || r.set(true));
        h.kill();
        yield_now();
        assert!(!ran.get());
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_while_sleeping_unwinds_the_task() {
    bounded(|| {
        let dropped = flag();
        let after = flag();
        let (d, a) = (dropped.clone(), after.clone());
        let h = spawn(move || {
            let _guard = SetOnDrop(d);
            sleep(LONG);
            a.set(true);
        });
        yield_now();
        let start = Instant::now();
        h.kill();
        assert!(dropped.get(), "kill waits until the target has unwound");
        assert!(!after.get());
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_a_finished_task_does_nothing() {
    bounded(|| {
        let h = spawn(|| 5);
        yield_now();
        assert!(h.is_finished());
        h.kill();
        assert_eq!(h.join().unwrap(), 5);
    });
}

#[test]
fn kill_inside_with_timeout_is_not_swallowed() {
    bounded(|| {
        let dropped = flag();
        let after = flag();
        let (d, a) = (dropped.clone(), after.clone());
        let h = spawn(move || {
            let r = with_timeout(Duration::from_secs(30), || {
                let _guard = SetOnDrop(d);
                sleep(LONG);
            });
            a.set(true);
            r
        });
        yield_now();
        h.kill();
        assert!(dropped.get());
        assert!(!after.get(), "with_timeout must let the kill through");
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_inside_an_expiring_with_timeout_wins() {
    bounded(|| {
        let after = flag();
        let a = after.clone();
        let h = spawn(move || {
            let r = with_timeout(ms(5), || {
                let start = Instant::now();
                // Spin past the deadline, then block: both a kill and the timeout are pending.
                while start.elapsed() < ms(20) {
                    std::hint::spin_loop();
                }
                yield_now();
            });
            a.set(true);
            r
        });
        // The task spins past its deadline and yields; the kill is delivered
        // while it waits in the ready queue, before the timer is looked at.
        yield_now();
        h.kill();
        assert!(!after.get());
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn kill_from_a_hub_callback() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let h = Rc::new(spawn(move || {
            let _guard = SetOnDrop(d);
            sleep(LONG);
        }));
        let hk = h.clone();
        call_later(ms(10), move || hk.kill());
        let start = Instant::now();
        while !h.is_finished() {
            assert!(start.elapsed() < Duration::from_secs(5), "the kill never landed");
            sleep(MS);
        }
        assert!(dropped.get());
        let h = Rc::try_unwrap(h).expect("the callback released its handle");
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn a_task_killing_itself_unwinds_at_once() {
    bounded(|| {
        let dropped = flag();
        let after = flag();
        let (d, a) = (dropped.clone(), after.clone());
        let slot: Rc<RefCell<Option<Rc<JoinHandle<()>>>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let h = Rc::new(spawn(move || {
            let _guard = SetOnDrop(d);
            let me = s.borrow().clone().expect("own handle");
            me.kill();
            a.set(true);
        }));
        *slot.borrow_mut() = Some(h.clone());
        drop(slot);
        while !h.is_finished() {
            sleep(MS);
        }
        assert!(dropped.get());
        assert!(!after.get());
        let h = Rc::try_unwrap(h).expect("the task released its clone");
        assert!(h.join().unwrap_err().is_killed());
    });
}

#[test]
fn a_task_can_kill_another_task() {
    bounded(|| {
        let victim = Rc::new(spawn(|| sleep(LONG)));
        let v = victim.clone();
        let killer = spawn(move || {
            yield_now();
            v.kill();
            v.is_finished()
        });
        assert!(killer.join().unwrap(), "kill waited for the victim to die");
        let victim = Rc::try_unwrap(victim).unwrap();
        assert!(victim.join().unwrap_err().is_killed());
    });
}

// ---- with_timeout ----

#[test]
fn with_timeout_elapses_and_unwinds_the_section() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let start = Instant::now();
        let r = with_timeout(ms(10), move || {
            let _guard = SetOnDrop(d);
            sleep(LONG);
        });
        assert_eq!(r, Err(Elapsed));
        assert!(dropped.get());
        let took = start.elapsed();
        assert!(took >= ms(10) && took < Duration::from_secs(5), "{took:?}");
        assert_eq!(Elapsed.to_string(), "deadline has elapsed");
        assert_eq!(io::Error::from(Elapsed).kind(), io::ErrorKind::TimedOut);
    });
}

#[test]
fn with_timeout_completes_in_time() {
    bounded(|| {
        let r = with_timeout(Duration::from_secs(5), || {
            sleep(MS);
            5
        });
        assert_eq!(r, Ok(5));
        // The cancelled timer does not hit later blocking calls.
        sleep(ms(10));
    });
}

#[test]
fn nested_timeouts_inner_shorter_fires_the_inner_only() {
    bounded(|| {
        let r = with_timeout(Duration::from_secs(5), || {
            let inner = with_timeout(ms(10), || sleep(LONG));
            assert_eq!(inner, Err(Elapsed));
            sleep(MS);
            "outer ok"
        });
        assert_eq!(r, Ok("outer ok"));
    });
}

#[test]
fn nested_timeouts_outer_shorter_fires_through_the_inner() {
    bounded(|| {
        let after_inner = flag();
        let a = after_inner.clone();
        let r = with_timeout(ms(10), move || {
            let inner = with_timeout(Duration::from_secs(5), || sleep(LONG));
            a.set(true);
            inner
        });
        assert_eq!(r, Err(Elapsed));
        assert!(
            !after_inner.get(),
            "the inner timeout must not catch the outer's expiry"
        );
    });
}

#[test]
fn with_timeout_in_a_spawned_task() {
    bounded(|| {
        let h = spawn(|| with_timeout(ms(10), || sleep(LONG)));
        let other = spawn(|| with_timeout(Duration::from_secs(5), || 3));
        assert_eq!(h.join().unwrap(), Err(Elapsed));
        assert_eq!(other.join().unwrap(), Ok(3));
    });
}

#[test]
fn with_timeout_section_that_never_blocks_finishes() {
    bounded(|| {
        let r = with_timeout(ms(5), || {
            let start = Instant::now();
            while start.elapsed() < ms(20) {
                std::hint::spin_loop();
            }
            7
        });
        assert_eq!(r, Ok(7));
        // The expired timeout does not land on what comes after.
        let start = Instant::now();
        sleep(ms(10));
        assert!(start.elapsed() >= ms(10));
    });
}

#[test]
fn with_timeout_past_deadline_lands_at_the_next_blocking_call() {
    bounded(|| {
        let after = flag();
        let a = after.clone();
        let r = with_timeout(ms(5), move || {
            let start = Instant::now();
            while start.elapsed() < ms(20) {
                std::hint::spin_loop();
            }
            sleep(MS);
            a.set(true);
        });
        assert_eq!(r, Err(Elapsed));
        assert!(!after.get());
    });
}

#[test]
fn with_timeout_fired_but_section_ended_does_not_leak() {
    bounded(|| {
        // The timer fires while the section is ready but not yet resumed,
        // and the section ends without blocking again.
        let r = with_timeout(ms(5), || {
            let h = spawn(|| {
                let start = Instant::now();
                while start.elapsed() < ms(20) {
                    std::hint::spin_loop();
                }
            });
            h.join().unwrap();
        });
        // Either outcome is allowed; what follows must not be hit.
        let _ = r;
        let start = Instant::now();
        sleep(ms(10));
        assert!(start.elapsed() >= ms(10));
    });
}

// ---- panics ----

#[test]
fn a_panicking_task_does_not_stop_the_hub() {
    bounded(|| {
        let a = spawn(|| -> u32 {
            sleep(ms(5));
            panic!("task a failed")
        });
        let b = spawn(|| {
            sleep(ms(20));
            2
        });
        let c = spawn(|| 3);
        let watcher = Rc::new(a);
        join_all([&b, &c]);
        assert_eq!(b.join().unwrap(), 2);
        assert_eq!(c.join().unwrap(), 3);
        let a = Rc::try_unwrap(watcher).unwrap();
        assert_eq!(a.join().unwrap_err().panic_message(), Some("task a failed"));
    });
}

#[test]
fn a_panic_reaches_a_joining_task() {
    bounded(|| {
        let a = spawn(|| -> u32 { panic!("inner") });
        let b = spawn(move || a.join().unwrap_err().panic_message().map(str::to_owned));
        assert_eq!(b.join().unwrap().as_deref(), Some("inner"));
    });
}

// ---- yield_now ----

#[test]
fn yield_now_interleaves_two_tasks() {
    bounded(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let l = log.clone();
                spawn(move || {
                    for i in 0..3 {
                        l.borrow_mut().push(format!("{name}{i}"));
                        yield_now();
                    }
                })
            })
            .collect();
        join_all(&hs);
        assert_eq!(*log.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
    });
}

#[test]
fn a_yield_now_loop_does_not_starve_a_timer() {
    bounded(|| {
        let fired = flag();
        let f = fired.clone();
        call_later(ms(5), move || f.set(true));
        let fired2 = fired.clone();
        let spinner = spawn(move || {
            let mut n = 0u64;
            while !fired2.get() && n < 50_000_000 {
                yield_now();
                n += 1;
            }
            n
        });
        let spins = spinner.join().unwrap();
        assert!(fired.get(), "the timer never fired during {spins} yields");
    });
}

#[test]
fn a_yield_now_loop_in_the_root_does_not_starve_a_timer() {
    bounded(|| {
        let fired = flag();
        let f = fired.clone();
        call_later(ms(5), move || f.set(true));
        let start = Instant::now();
        while !fired.get() && start.elapsed() < Duration::from_secs(5) {
            yield_now();
        }
        assert!(fired.get());
    });
}

// ---- callbacks ----

#[test]
fn call_soon_runs_before_a_timer_due_later() {
    bounded(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        call_later(MS, move || l1.borrow_mut().push("later"));
        call_soon(move || l2.borrow_mut().push("soon 1"));
        call_soon(move || l3.borrow_mut().push("soon 2"));
        sleep(ms(20));
        assert_eq!(*log.borrow(), ["soon 1", "soon 2", "later"]);
    });
}

#[test]
fn timers_fire_in_deadline_order_fifo_among_equal_deadlines() {
    bounded(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let at = greenhub::now() + ms(10);
        let push = |name: &'static str| {
            let l = log.clone();
            move || l.borrow_mut().push(name)
        };
        call_at(at + ms(5), push("last"));
        call_at(at, push("equal 1"));
        call_at(at, push("equal 2"));
        call_at(at, push("equal 3"));
        call_at(at - ms(5), push("first"));
        call_at(at, push("equal 4"));
        sleep(ms(30));
        assert_eq!(
            *log.borrow(),
            ["first", "equal 1", "equal 2", "equal 3", "equal 4", "last"]
        );
    });
}

/// Runs `attempt` with a growing margin until its timing precondition held
/// (it returns true): on a loaded machine, the first margin may not leave
/// the green threads time to park before their deadlines.
fn with_growing_margin(mut attempt: impl FnMut(Duration) -> bool) {
    for margin in [300, 1_000, 4_000] {
        if attempt(ms(margin)) {
            return;
        }
    }
    panic!("three attempts failed: the green threads never parked before their deadlines, or the machine paused the hub past them, even 4 s ahead");
}

/// Thousands of timers due at once, green threads and callbacks mixed, are
/// fired in batches with prefetching; the order must still be deadline
/// order, FIFO among equal deadlines, across every batch boundary.
#[test]
fn many_timers_due_together_fire_in_order_across_batches() {
    bounded(|| {
        with_growing_margin(|margin| {
            const N: u64 = 3_000;
            let log: Rc<RefCell<Vec<(u64, u64)>>> = Rc::new(RefCell::new(Vec::new()));
            let base = greenhub::now() + margin;
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            let mut handles = Vec::new();
            for seq in 0..N {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let slot = x % 40; // many equal deadlines: FIFO among them
                let at = base + Duration::from_micros(slot * 50);
                let l = log.clone();
                if seq % 2 == 0 {
                    call_at(at, move || l.borrow_mut().push((slot, seq)));
                } else {
                    handles.push(spawn(move || {
                        greenhub::sleep_until(at);
                        l.borrow_mut().push((slot, seq));
                    }));
                }
            }
            yield_now(); // every green thread parks on its timer
            let in_time = greenhub::now() < base;
            // Hold the hub past every deadline, so that all are due together.
            std::thread::sleep((base + ms(3)).saturating_duration_since(greenhub::now()));
            join_all(&handles);
            sleep(ms(1));
            if !in_time {
                return false;
            }
            let log = log.borrow();
            assert_eq!(log.len() as u64, N);
            // Timers were inserted callbacks first (here, in `seq` order),
            // then the green threads' (as each started, in spawn order): FIFO
            // among equal deadlines means that order.
            let mut expected = log.clone();
            expected.sort_by_key(|&(slot, seq)| (slot, seq % 2, seq));
            if let Some(i) = (0..log.len()).find(|&i| log[i] != expected[i]) {
                panic!(
                    "fired out of (deadline, FIFO) order at {i}: {:?} expected {:?}",
                    &log[i.saturating_sub(2)..(i + 3).min(log.len())],
                    &expected[i.saturating_sub(2)..(i + 3).min(log.len())]
                );
            }
            true
        });
    });
}

/// Busy work of about `us` microseconds, without yielding.
fn spin_us(us: u64) {
    let end = Instant::now() + Duration::from_micros(us);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// A flood of green threads does not hold up a sleeper until the flood is
/// over: the hub cuts a long turn short and runs the timers that came due
/// first (as gevent bounds its callbacks by its switch interval).
#[test]
fn a_spawn_flood_does_not_hold_up_a_sleeper() {
    bounded(|| {
        const FLOOD: u32 = 20_000;
        let started = Rc::new(Cell::new(0u32));
        let seen = Rc::new(Cell::new(None));
        let (st, se) = (started.clone(), seen.clone());
        let sleeper = spawn(move || {
            sleep(ms(2));
            se.set(Some(st.get()));
        });
        yield_now(); // the sleeper is parked
        let flood: Vec<_> = (0..FLOOD)
            .map(|_| {
                let st = started.clone();
                spawn(move || {
                    st.set(st.get() + 1);
                    spin_us(5); // the flood lasts at least 100 ms
                })
            })
            .collect();
        join_all(&flood);
        sleeper.join().unwrap();
        let at = seen.get().expect("the sleeper woke");
        assert!(
            at < FLOOD,
            "the sleeper waited for the whole flood ({at} started)"
        );
    });
}

/// The other way round: a green thread woken by another green thread while
/// the hub runs a flood of timer wakes is not held up by the flood: it takes
/// the runnext slot and runs as soon as the green thread that woke it
/// suspends, ahead of the rest of the wave.
#[test]
fn a_flood_of_timer_wakes_does_not_starve_green_threads() {
    bounded(|| {
        with_growing_margin(|margin| {
            const WAVE: u32 = 10_000;
            let event = Rc::new(greenhub::sync::Event::new());
            let woke = Rc::new(Cell::new(0u32));
            let seen = Rc::new(Cell::new(None));
            let (ev, wk, se) = (event.clone(), woke.clone(), seen.clone());
            let waiter = spawn(move || {
                ev.wait();
                se.set(Some(wk.get()));
            });
            // Two waves of sleepers: the first all due at `a`, run as one
            // batch (at least 50 ms of work); the second due at `b`, while
            // the first batch still runs. The hub is held past `a`, so the
            // first wave is due all at once.
            let a = greenhub::now() + margin;
            let b = a + ms(10);
            let parked = Rc::new(Cell::new(0u32));
            let flood: Vec<_> = (0..2 * WAVE)
                .map(|i| {
                    let (ev, wk, pk) = (event.clone(), woke.clone(), parked.clone());
                    let at = if i < WAVE { a } else { b };
                    spawn(move || {
                        pk.set(pk.get() + 1);
                        greenhub::sleep_until(at);
                        wk.set(wk.get() + 1);
                        ev.set(); // the first one wakes `waiter` (runnext)
                        spin_us(5);
                    })
                })
                .collect();
            while parked.get() < 2 * WAVE {
                yield_now();
            }
            let in_time = greenhub::now() < a;
            std::thread::sleep(a.saturating_duration_since(greenhub::now()) + ms(1));
            // Woken at `b` or later (the OS overslept the thread), both
            // waves are due in the first turn and the run shows nothing.
            let held_past_b = greenhub::now() >= b;
            join_all(&flood);
            waiter.join().unwrap();
            if !in_time || held_past_b {
                return false;
            }
            let at = seen.get().expect("the waiter woke");
            assert_eq!(at, 1, "the waiter ran right after the sleeper that woke it");
            true
        });
    });
}

#[test]
fn an_unstarted_green_thread_killed_drops_what_it_captured() {
    bounded(|| {
        let dropped = flag();
        let guard = SetOnDrop(dropped.clone());
        let h = spawn(move || drop(guard));
        h.kill();
        assert!(dropped.get(), "the captured value is dropped by the kill");
        assert!(h.join().unwrap_err().is_killed());

        // Run normally, a captured value is dropped once, by the function.
        let value = Rc::new(());
        let v = value.clone();
        let h = spawn(move || Rc::strong_count(&v));
        assert_eq!(h.join().unwrap(), 2);
        assert_eq!(Rc::strong_count(&value), 1);
    });
}

#[test]
fn cancel_prevents_a_callback_from_running() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let h = call_later(ms(5), move || r.set(true));
        assert!(h.is_pending());
        assert!(h.cancel());
        assert!(!h.is_pending());
        sleep(ms(20));
        assert!(!ran.get());
        assert!(!h.cancel(), "already cancelled");

        let soon = call_soon(|| panic!("cancelled call_soon ran"));
        assert!(soon.cancel());
        yield_now();
    });
}

#[test]
fn cancel_after_the_callback_ran_returns_false() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let h = call_soon(move || r.set(true));
        yield_now();
        assert!(ran.get());
        assert!(!h.is_pending());
        assert!(!h.cancel());

        let r = ran.clone();
        ran.set(false);
        let h = call_later(MS, move || r.set(true));
        sleep(ms(10));
        assert!(ran.get());
        assert!(!h.cancel());
    });
}

#[test]
fn dropping_a_call_handle_does_not_cancel() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        drop(call_later(MS, move || r.set(true)));
        sleep(ms(10));
        assert!(ran.get());
    });
}

#[test]
fn a_panicking_callback_does_not_stop_the_hub() {
    bounded(|| {
        let ok = flag();
        let o = ok.clone();
        call_soon(|| panic!("callback failed"));
        call_soon(move || o.set(true));
        let h = spawn(|| {
            sleep(ms(5));
            1
        });
        call_later(MS, || panic!("timed callback failed"));
        assert_eq!(h.join().unwrap(), 1);
        assert!(ok.get());
    });
}

#[test]
fn a_callback_that_blocks_panics() {
    bounded(|| {
        let messages = Rc::new(RefCell::new(Vec::new()));
        let m = messages.clone();
        call_soon(move || {
            for attempt in [
                Box::new(|| sleep(MS)) as Box<dyn Fn()>,
                Box::new(yield_now),
                Box::new(|| {
                    park(None, |_| {});
                }),
                Box::new(|| spawn(|| ()).join().map(drop).unwrap()),
            ] {
                let r = panic::catch_unwind(AssertUnwindSafe(attempt));
                m.borrow_mut().push(r.err().map(|p| panic_message(&*p)));
            }
        });
        sleep(ms(10));
        let messages = messages.borrow();
        assert_eq!(messages.len(), 4);
        for m in messages.iter() {
            let m = m.as_deref().expect("blocking in a callback must panic");
            assert!(m.contains("a hub callback tried to block"), "{m}");
        }
    });
}

#[test]
fn a_callback_that_switches_panics() {
    bounded(|| {
        let message = Rc::new(RefCell::new(None));
        let m = message.clone();
        let g = Greenlet::new(|(): ()| ());
        call_soon(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(|| g.switch::<(), ()>(())));
            *m.borrow_mut() = Some(r.err().map(|p| panic_message(&*p)));
        });
        yield_now();
        let got = message.borrow_mut().take().expect("the callback ran");
        let got = got.expect("switching in a callback must panic");
        assert!(got.contains("a hub callback tried to block"), "{got}");
    });
}

// ---- run_forever / stop ----

#[test]
fn stop_from_a_callback() {
    bounded(|| {
        let long = spawn(|| sleep(LONG));
        let start = Instant::now();
        call_later(ms(10), stop);
        run_forever();
        let took = start.elapsed();
        assert!(took >= ms(10) && took < Duration::from_secs(5), "{took:?}");
        long.kill();
    });
}

#[test]
fn stop_from_a_green_thread() {
    bounded(|| {
        let long = spawn(|| sleep(LONG));
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        let worker = spawn(move || {
            for _ in 0..3 {
                sleep(MS);
                r.set(r.get() + 1);
            }
            stop();
        });
        let start = Instant::now();
        run_forever();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(ran.get(), 3, "green threads ran during run_forever");
        worker.join().unwrap();
        long.kill();
    });
}

#[test]
fn stop_before_run_forever_returns_after_one_pass() {
    bounded(|| {
        let long = spawn(|| sleep(LONG));
        let ran = flag();
        let r = ran.clone();
        call_soon(move || r.set(true));
        stop();
        let start = Instant::now();
        run_forever();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(ran.get(), "one pass of the loop ran what was ready");
        long.kill();
    });
}

#[test]
fn run_forever_can_be_stopped_twice() {
    bounded(|| {
        let long = spawn(|| sleep(LONG));
        for _ in 0..2 {
            call_later(MS, stop);
            let start = Instant::now();
            run_forever();
            assert!(start.elapsed() < Duration::from_secs(5));
        }
        long.kill();
    });
}

#[test]
fn run_forever_returns_when_nothing_can_call_stop() {
    bounded(|| {
        let done = flag();
        let d = done.clone();
        let h = spawn(move || {
            sleep(ms(10));
            d.set(true);
        });
        run_forever();
        assert!(done.get());
        h.join().unwrap();
        // With nothing at all, it returns at once.
        run_forever();
    });
}

// ---- would block forever ----

#[test]
fn root_joining_a_task_that_waits_forever_panics() {
    bounded(|| {
        let h = spawn(|| {
            park(None, |_| {});
        });
        let msg = expect_panic(move || h.join());
        assert!(msg.contains("would block forever"), "{msg}");
    });
}

#[test]
fn root_parking_with_nothing_to_wake_it_panics() {
    bounded(|| {
        let msg = expect_panic(|| park(None, |_| {}));
        assert!(msg.contains("would block forever"), "{msg}");
    });
}

#[test]
fn root_switching_away_for_good_panics() {
    bounded(|| {
        // The greenlet parks on the hub with nothing to wake it; root waits in its switch.
        let g = Greenlet::new(|(): ()| {
            park(None, |_| {});
        });
        let msg = expect_panic(|| g.switch::<(), ()>(()));
        assert!(msg.contains("would block forever"), "{msg}");
    });
}

// ---- park / Waker ----

#[test]
fn a_wake_is_delivered_exactly_once() {
    bounded(|| {
        let slot: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let h = spawn(move || park(None, |w| *s.borrow_mut() = Some(w.clone())));
        yield_now();
        let w = slot.borrow_mut().take().expect("the task registered a waker");
        let w2 = w.clone();
        assert!(w.wake());
        assert!(!w.wake(), "a second wake of the same park");
        assert!(!w2.wake(), "a clone of a spent waker");
        assert_eq!(h.join().unwrap(), Wake::Ready);
    });
}

#[test]
fn a_stale_wake_is_ignored_and_does_not_wake_a_later_park() {
    bounded(|| {
        let slot: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let h = spawn(move || {
            let first = park(Some(Instant::now() + ms(5)), |w| {
                *s.borrow_mut() = Some(w.clone())
            });
            let start = Instant::now();
            let second = park(Some(Instant::now() + ms(60)), |_| {});
            (first, second, start.elapsed())
        });
        sleep(ms(25));
        let stale = slot.borrow_mut().take().expect("registered");
        assert!(!stale.wake(), "the park it belonged to timed out");
        let (first, second, waited) = h.join().unwrap();
        assert_eq!(first, Wake::TimedOut);
        assert_eq!(
            second,
            Wake::TimedOut,
            "the stale wake must not end the second park"
        );
        assert!(waited >= ms(60), "{waited:?}");
    });
}

#[test]
fn a_wake_inside_register_returns_without_switching() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let h = spawn(move || r.set(true));
        let why = park(None, |w| assert!(w.wake()));
        assert_eq!(why, Wake::Ready);
        assert!(!ran.get(), "park must not have switched to the hub");
        yield_now();
        assert!(ran.get());
        h.join().unwrap();
    });
}

#[test]
fn park_times_out_at_its_deadline() {
    bounded(|| {
        let start = Instant::now();
        let why = park(Some(Instant::now() + ms(10)), |_| {});
        assert_eq!(why, Wake::TimedOut);
        assert!(start.elapsed() >= ms(10));
    });
}

#[test]
fn a_wake_from_another_green_thread() {
    bounded(|| {
        let slot: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let waker_task = spawn(move || {
            sleep(ms(5));
            s.borrow_mut().take().expect("registered").wake()
        });
        let why = park(Some(Instant::now() + Duration::from_secs(5)), |w| {
            *slot.borrow_mut() = Some(w.clone());
        });
        assert_eq!(why, Wake::Ready);
        assert!(waker_task.join().unwrap());
    });
}

// ---- thread-locals ----

thread_local! {
    static SHARED: Cell<u32> = const { Cell::new(0) };
}

#[test]
fn thread_locals_are_shared_by_the_green_threads_of_an_os_thread() {
    bounded(|| {
        let addr = || SHARED.with(|c| c as *const Cell<u32> as usize);
        let root_addr = addr();
        let a = spawn(move || {
            SHARED.with(|c| c.set(5));
            addr()
        });
        let b = spawn(move || {
            let seen = SHARED.with(Cell::get);
            SHARED.with(|c| c.set(6));
            (seen, addr())
        });
        let a_addr = a.join().unwrap();
        let (seen, b_addr) = b.join().unwrap();
        assert_eq!(seen, 5, "b sees what a set");
        assert_eq!(SHARED.with(Cell::get), 6, "root sees what b set");
        assert_eq!(a_addr, root_addr);
        assert_eq!(b_addr, root_addr);
    });
}

#[test]
fn thread_local_survives_a_switch_away_and_back() {
    bounded(|| {
        let h = spawn(|| {
            SHARED.with(|c| c.set(10));
            sleep(ms(5));
            SHARED.with(Cell::get)
        });
        let other = spawn(|| SHARED.with(|c| c.set(c.get() + 1)));
        other.join().unwrap();
        assert_eq!(
            h.join().unwrap(),
            11,
            "same thread-local, changed meanwhile by another green thread"
        );
    });
}

// ---- stack reuse ----

/// The number of memory mappings of this process.
fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count()
}

#[test]
fn many_spawn_join_cycles_do_not_grow_mappings() {
    if !std::path::Path::new("/proc/self/maps").exists() {
        return;
    }
    // In a child process, so other tests' threads do not add mappings meanwhile.
    util::assert_child_passes(
        "child_spawn_join_cycles",
        "cycles",
        Duration::from_secs(120),
        "cycles ok",
    );
}

/// Run by `many_spawn_join_cycles_do_not_grow_mappings`; returns at once otherwise.
#[test]
fn child_spawn_join_cycles() {
    if !is_child("cycles") {
        return;
    }
    for i in 0..1_000u32 {
        assert_eq!(spawn(move || i).join().unwrap(), i);
    }
    let before = mapping_count();
    for i in 0..100_000u32 {
        assert_eq!(spawn(move || i).join().unwrap(), i);
    }
    let after = mapping_count();
    assert!(
        after <= before + 8,
        "mappings grew from {before} to {after} over 100,000 spawn/join cycles"
    );
    println!("cycles ok: {before} -> {after} mappings");
}

// ---- per-OS-thread hubs ----

#[test]
fn hubs_are_per_os_thread() {
    let (a_spawned_tx, a_spawned_rx) = mpsc::channel();
    let (b_done_tx, b_done_rx) = mpsc::channel();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let a = std::thread::spawn(move || {
        let r2 = r.clone();
        let h = spawn(move || r2.store(true, Ordering::SeqCst));
        a_spawned_tx.send(()).unwrap();
        // B's hub runs meanwhile; it must not run A's green thread.
        b_done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("B finished");
        let before = r.load(Ordering::SeqCst);
        h.join().unwrap();
        (before, r.load(Ordering::SeqCst))
    });
    let b = std::thread::spawn(move || {
        a_spawned_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("A spawned");
        let hs: Vec<_> = (0..3u64)
            .map(|i| {
                spawn(move || {
                    sleep(ms(3 * i));
                    i
                })
            })
            .collect();
        sleep(ms(10));
        let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        b_done_tx.send(()).unwrap();
        sum
    });
    bounded(move || {
        assert_eq!(b.join().unwrap(), 3);
        assert_eq!(a.join().unwrap(), (false, true));
    });
}

#[test]
fn sleep_sort_on_two_os_threads_at_once() {
    let run = || {
        let order = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<_> = [30u64, 40, 10, 20]
            .into_iter()
            .map(|n| {
                let o = order.clone();
                spawn(move || {
                    sleep(ms(n));
                    o.borrow_mut().push(n);
                })
            })
            .collect();
        join_all(&hs);
        let v = order.borrow().clone();
        v
    };
    let a = std::thread::spawn(run);
    let b = std::thread::spawn(run);
    bounded(move || {
        assert_eq!(a.join().unwrap(), [10, 20, 30, 40]);
        assert_eq!(b.join().unwrap(), [10, 20, 30, 40]);
    });
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB")
}

#[test]
fn memory_of_a_burst_of_green_threads_comes_back_when_the_hub_idles() {
    if !std::path::Path::new("/proc/self/status").exists() {
        return;
    }
    // In a child process: RSS is process-wide.
    util::assert_child_passes(
        "child_burst_memory",
        "burst",
        Duration::from_secs(120),
        "burst ok",
    );
}

/// Run by `memory_of_a_burst_of_green_threads_comes_back_when_the_hub_idles`.
#[test]
fn child_burst_memory() {
    if !is_child("burst") {
        return;
    }
    let before = resident_kib();
    // All parked at once: they wait for `go`, set once every one has started
    // (a spawn flood runs in time slices, so timed sleeps could end and
    // hand their stacks on before the last ones start).
    let go = Rc::new(greenhub::sync::Event::new());
    let started = Rc::new(Cell::new(0u32));
    let hs: Vec<_> = (0..50_000)
        .map(|_| {
            let (go, started) = (go.clone(), started.clone());
            spawn(move || {
                started.set(started.get() + 1);
                go.wait();
            })
        })
        .collect();
    while started.get() < 50_000 {
        sleep(Duration::from_millis(1));
    }
    go.set();
    join_all(&hs);
    drop(hs);
    let peak = resident_kib();
    assert!(
        peak > before + 100_000,
        "every parked green thread touched its stack: {before} -> {peak} KiB"
    );
    // Idle time releases the pooled stacks beyond the hot set, a slice at a time.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while resident_kib() > before + 40_000 && std::time::Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    let after = resident_kib();
    assert!(
        after < before + 40_000,
        "{before} KiB before, {peak} at peak, {after} after idling"
    );
    println!("burst ok");
}

// ---- runnext: the first green thread a green thread wakes runs next ----

#[test]
fn a_green_thread_woken_by_a_green_thread_runs_ahead_of_the_queue() {
    bounded(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let ev = Rc::new(greenhub::sync::Event::new());
        let (l, e) = (log.clone(), ev.clone());
        let woken = spawn(move || {
            e.wait();
            l.borrow_mut().push("woken");
        });
        let l = log.clone();
        let driver = spawn(move || {
            let (l1, l2) = (l.clone(), l.clone());
            let q1 = spawn(move || l1.borrow_mut().push("queued 1"));
            let q2 = spawn(move || l2.borrow_mut().push("queued 2"));
            ev.set(); // `woken` was parked: it takes the runnext slot
            (q1, q2)
        });
        let (q1, q2) = driver.join().unwrap();
        join_all([&woken, &q1, &q2]);
        assert_eq!(*log.borrow(), ["woken", "queued 1", "queued 2"]);
    });
}

#[test]
fn one_green_thread_s_wakes_run_in_the_order_it_made_them() {
    bounded(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let ev = Rc::new(greenhub::sync::Event::new());
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let (l, e) = (log.clone(), ev.clone());
                spawn(move || {
                    e.wait();
                    l.borrow_mut().push(format!("waiter {i}"));
                })
            })
            .collect();
        let l = log.clone();
        let driver = spawn(move || {
            let q = spawn(move || l.borrow_mut().push("queued".to_string()));
            ev.set(); // waiter 0 takes the runnext slot, 1 and 2 queue behind `q`
            q
        });
        let q = driver.join().unwrap();
        join_all(&waiters);
        q.join().unwrap();
        assert_eq!(*log.borrow(), ["waiter 0", "queued", "waiter 1", "waiter 2"]);
    });
}

#[test]
fn a_hand_off_pair_does_not_starve_the_queue_or_timers() {
    bounded(|| {
        const ROUNDS: u64 = 50_000;
        let (ping, pong) = (
            Rc::new(greenhub::sync::Channel::new()),
            Rc::new(greenhub::sync::Channel::new()),
        );
        let done = Rc::new(Cell::new(false));
        let (pi, po) = (ping.clone(), pong.clone());
        let echo = spawn(move || {
            for x in pi.iter() {
                po.put(x).unwrap();
            }
        });
        let d = done.clone();
        let pair = spawn(move || {
            for i in 0..ROUNDS {
                ping.put(i).unwrap();
                pong.get().unwrap();
            }
            ping.close();
            d.set(true);
        });
        // A yielder gets a turn at least once per 17 hand-offs of the pair
        // (RUNNEXT_STREAK + 1): 2 * ROUNDS hand-offs give it thousands. A
        // sleeper due 1 ms in wakes while the pair still runs (100,000
        // hand-offs take far longer than 1 ms, ~10 ms in a release build).
        let d = done.clone();
        let yielder = spawn(move || {
            let mut turns = 0u64;
            while !d.get() {
                turns += 1;
                yield_now();
            }
            turns
        });
        let d = done.clone();
        let sleeper = spawn(move || {
            sleep(MS);
            d.get()
        });
        pair.join().unwrap();
        echo.join().unwrap();
        let turns = yielder.join().unwrap();
        assert!(turns >= 2 * ROUNDS / 17 / 2, "the yielder had {turns} turns");
        assert!(
            !sleeper.join().unwrap(),
            "the sleeper waited for the pair to finish"
        );
    });
}
