//! `Greenlet`: explicit switching, values, parents, throw/kill, drop.
//! (`!Send` is proven by the compile_fail doctest in `src/greenlet/mod.rs`.)

mod util;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::{Greenlet, GreenletExit, SwitchError};
use util::{bounded, expect_panic, flag, panic_message, SetOnDrop};

/// Switches to the current greenlet's parent with `v`; returns what comes back.
fn to_parent<T: 'static, R: 'static>(v: T) -> R {
    // A `let`, so no temporary handle to the current greenlet outlives it.
    let parent = Greenlet::current().parent().expect("a parent");
    parent.switch(v)
}

#[test]
fn new_does_not_run_until_the_first_switch() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let g = Greenlet::new(move |x: i32| {
            r.set(true);
            x * 2
        });
        assert!(!ran.get(), "Greenlet::new must not run f");
        assert!(!g.is_started());
        let out: i32 = g.switch(21);
        assert!(ran.get());
        assert_eq!(out, 42, "the first switch's value is f's argument");
    });
}

#[test]
fn values_of_any_static_type_pass_through_switch() {
    bounded(|| {
        #[derive(Debug, PartialEq)]
        struct Point {
            x: i32,
            y: i32,
        }
        let g = Greenlet::new(|s: String| {
            let v: Vec<u8> = to_parent(s.len());
            let p: Point = to_parent(v.iter().map(|&b| u32::from(b)).sum::<u32>());
            (p.x + p.y, "done")
        });
        let n: usize = g.switch(String::from("hello"));
        assert_eq!(n, 5);
        let sum: u32 = g.switch(vec![1u8, 2, 3]);
        assert_eq!(sum, 6);
        let end: (i32, &str) = g.switch(Point { x: 4, y: 5 });
        assert_eq!(end, (9, "done"));
    });
}

#[test]
fn later_switch_value_is_the_return_value_of_the_paused_switch() {
    bounded(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let g = Greenlet::new(move |first: i32| {
            l.borrow_mut().push(first);
            let second: i32 = to_parent(());
            l.borrow_mut().push(second);
            let third: i32 = to_parent(());
            l.borrow_mut().push(third);
        });
        g.switch::<_, ()>(1);
        g.switch::<_, ()>(2);
        g.switch::<_, ()>(3);
        assert_eq!(*log.borrow(), [1, 2, 3]);
        assert!(g.is_dead());
    });
}

#[test]
fn try_switch_type_mismatch_names_both_types() {
    bounded(|| {
        let g = Greenlet::new(|x: u8| x);
        let err = g.try_switch::<u8, String>(3).unwrap_err();
        match &err {
            SwitchError::TypeMismatch { expected, found } => {
                assert_eq!(*expected, std::any::type_name::<String>());
                assert_eq!(*found, "u8");
            }
            other => panic!("expected TypeMismatch, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("`alloc::string::String`") && text.contains("`u8`"),
            "{text}"
        );
    });
}

#[test]
fn try_switch_type_mismatch_inside_a_greenlet() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| -> String {
            let parent = Greenlet::current().parent().unwrap();
            match parent.try_switch::<(), i32>(()) {
                Err(e @ SwitchError::TypeMismatch { .. }) => e.to_string(),
                other => format!("unexpected: {other:?}"),
            }
        });
        g.switch::<(), ()>(());
        let msg: String = g.switch("not an i32");
        assert!(msg.contains("`i32`") && msg.contains("`&str`"), "{msg}");
    });
}

#[test]
fn switch_type_mismatch_panics_naming_both_types() {
    bounded(|| {
        let g = Greenlet::new(|x: u8| x);
        let msg = expect_panic(|| g.switch::<u8, String>(3));
        assert!(
            msg.contains("`alloc::string::String`") && msg.contains("`u8`"),
            "{msg}"
        );
    });
}

#[test]
fn wrong_start_value_type_panics_naming_both_types() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let g = Greenlet::new(move |x: u32| {
            r.set(true);
            x
        });
        let msg = expect_panic(|| g.switch::<&str, u32>("not a u32"));
        assert!(msg.contains("`u32`") && msg.contains("`&str`"), "{msg}");
        assert!(!ran.get(), "f must not run with a value of the wrong type");
        assert!(g.is_dead());
    });
}

#[test]
fn return_value_goes_to_the_creator() {
    bounded(|| {
        let g = Greenlet::new(|x: i32| {
            let y: i32 = to_parent(x + 1);
            format!("returned {y}")
        });
        assert_eq!(g.switch::<_, i32>(1), 2);
        assert_eq!(g.switch::<_, String>(7), "returned 7");
        assert!(g.is_dead());
    });
}

#[test]
fn set_parent_redirects_the_return_value() {
    bounded(|| {
        let a = Greenlet::new(|(): ()| -> String {
            // Paused here; b's return value resumes this switch.
            let got: i32 = to_parent(());
            format!("a got {got}")
        });
        a.switch::<(), ()>(());
        let b = Greenlet::new(|x: i32| x * 2);
        b.set_parent(&a);
        assert_eq!(b.parent().unwrap().id(), a.id());
        // b returns 10 to a, a returns its string to main.
        let out: String = b.switch(5);
        assert_eq!(out, "a got 10");
        assert!(a.is_dead() && b.is_dead());
    });
}

#[test]
fn set_parent_refuses_a_cycle() {
    bounded(|| {
        let a = Greenlet::new(|(): ()| ());
        let b = Greenlet::new(|(): ()| ());
        b.set_parent(&a);
        let msg = expect_panic(|| a.set_parent(&b));
        assert!(msg.contains("cycle"), "{msg}");
        let msg = expect_panic(|| a.set_parent(&a));
        assert!(msg.contains("cycle"), "{msg}");
    });
}

#[test]
fn set_parent_on_the_root_panics() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| ());
        let root = Greenlet::current();
        expect_panic(|| root.set_parent(&g));
    });
}

#[test]
fn panic_in_f_propagates_to_the_parent() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| -> () { panic!("boom in g") });
        let err = panic::catch_unwind(AssertUnwindSafe(|| g.switch::<(), ()>(()))).unwrap_err();
        assert_eq!(panic_message(&*err), "boom in g");
        assert!(g.is_dead());
    });
}

/// A started greenlet paused in a switch to its parent, which catches what
/// unwinds there and returns "caught: <message>" (or "nothing caught").
fn catcher() -> Greenlet {
    let g = Greenlet::new(|(): ()| -> String {
        match panic::catch_unwind(|| to_parent::<(), ()>(())) {
            Ok(()) => "nothing caught".to_owned(),
            Err(p) => format!("caught: {}", panic_message(&*p)),
        }
    });
    g.switch::<(), ()>(());
    g
}

#[test]
fn panic_propagates_to_a_re_parented_parent() {
    bounded(|| {
        let a = catcher();
        let b = Greenlet::new(|(): ()| -> () { panic!("from b") });
        b.set_parent(&a);
        let out: String = b.switch(());
        assert_eq!(out, "caught: from b");
    });
}

#[test]
fn root_has_no_parent_and_is_never_dead() {
    bounded(|| {
        let root = Greenlet::current();
        assert!(root.parent().is_none());
        assert!(!root.is_dead());
        assert_eq!(root.id(), 0);
    });
}

#[test]
fn current_inside_a_greenlet_is_that_greenlet() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| {
            let me = Greenlet::current();
            (
                me.id(),
                me.parent().map(|p| p.id()),
                me.is_started(),
                me.is_dead(),
            )
        });
        let gid = g.id();
        assert_ne!(gid, 0);
        assert_eq!(g.parent().unwrap().id(), Greenlet::current().id());
        let (id, parent, started, dead): (u64, Option<u64>, bool, bool) = g.switch(());
        assert_eq!(id, gid);
        assert_eq!(parent, Some(0), "the creator (root) is the parent");
        assert!(started && !dead);
    });
}

#[test]
fn is_started_and_is_dead_follow_the_lifecycle() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| to_parent::<(), ()>(()));
        assert!(!g.is_started() && !g.is_dead());
        g.switch::<(), ()>(());
        assert!(g.is_started() && !g.is_dead(), "paused mid-function");
        g.switch::<(), ()>(());
        assert!(g.is_started() && g.is_dead(), "returned");
    });
}

#[test]
fn each_os_thread_has_its_own_root() {
    let check = || {
        let root = Greenlet::current();
        assert!(root.parent().is_none() && !root.is_dead());
        let g = Greenlet::new(|(): ()| {
            let p = Greenlet::current().parent().unwrap();
            (p.id(), p.parent().is_none(), std::thread::current().id())
        });
        let (pid, parent_is_root, tid): (u64, bool, std::thread::ThreadId) = g.switch(());
        assert_eq!(pid, 0);
        assert!(parent_is_root);
        assert_eq!(tid, std::thread::current().id(), "ran on its creator's OS thread");
        // The greenlet's result came back to this thread's root.
        assert!(g.is_dead());
    };
    let a = std::thread::spawn(check);
    let b = std::thread::spawn(check);
    bounded(move || {
        a.join().unwrap();
        b.join().unwrap();
    });
}

#[test]
fn root_of_a_fresh_os_thread_is_not_the_creators_greenlet() {
    bounded(|| {
        // A greenlet paused on the main test thread does not affect another thread's root.
        let g = Greenlet::new(|(): ()| to_parent::<(), ()>(()));
        g.switch::<(), ()>(());
        let other = std::thread::spawn(|| {
            let root = Greenlet::current();
            (root.id(), root.parent().is_none(), root.is_dead())
        })
        .join()
        .unwrap();
        assert_eq!(other, (0, true, false));
        g.switch::<(), ()>(());
    });
}

#[test]
fn spawned_green_thread_has_no_parent() {
    bounded(|| {
        let h = greenhub::spawn(|| Greenlet::current().parent().is_none());
        assert!(h.join().unwrap());
    });
}

#[test]
fn kill_unwinds_the_paused_stack() {
    bounded(|| {
        let dropped = flag();
        let after = flag();
        let (d, a) = (dropped.clone(), after.clone());
        let g = Greenlet::new(move |(): ()| {
            let _guard = SetOnDrop(d);
            to_parent::<(), ()>(());
            a.set(true);
        });
        g.switch::<(), ()>(());
        assert!(!dropped.get());
        g.kill();
        assert!(dropped.get(), "the Drop guard on its stack ran");
        assert!(!after.get(), "no code after the paused point ran");
        assert!(g.is_dead());
    });
}

#[test]
fn kill_sends_greenlet_exit_to_the_parent() {
    bounded(|| {
        let got = Rc::new(RefCell::new(None));
        let g2 = got.clone();
        let root = Greenlet::current();
        // p waits for a value of any type: whatever its child's death sends.
        let p = Greenlet::new(move |(): ()| {
            let v: Result<GreenletExit, SwitchError> = root.try_switch(());
            *g2.borrow_mut() = Some(v.map_err(|e| e.to_string()));
        });
        p.switch::<(), ()>(());
        let root = Greenlet::current();
        let c = Greenlet::new(move |(): ()| root.switch::<(), ()>(()));
        c.set_parent(&p);
        c.switch::<(), ()>(());
        // c dies; p receives GreenletExit and returns to its parent (root),
        // where kill() is waiting.
        c.kill();
        assert!(c.is_dead());
        assert_eq!(*got.borrow(), Some(Ok(GreenletExit)));
        assert!(p.is_dead());
    });
}

#[test]
fn kill_unstarted_never_runs_f() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let g = Greenlet::new(move |(): ()| r.set(true));
        g.kill();
        assert!(g.is_dead());
        assert!(!ran.get());
        assert!(matches!(g.try_switch::<(), ()>(()), Err(SwitchError::Dead)));
    });
}

#[test]
fn kill_dead_is_a_no_op() {
    bounded(|| {
        let g = Greenlet::new(|x: i32| x);
        assert_eq!(g.switch::<_, i32>(1), 1);
        g.kill();
        g.kill();
        assert!(g.is_dead());
    });
}

#[test]
fn throw_unwinds_at_the_paused_point_and_reaches_the_parent() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let g = Greenlet::new(move |(): ()| {
            let _guard = SetOnDrop(d);
            to_parent::<(), ()>(());
        });
        g.switch::<(), ()>(());
        let err = panic::catch_unwind(AssertUnwindSafe(|| g.throw::<()>(Box::new("thrown")))).unwrap_err();
        assert_eq!(panic_message(&*err), "thrown");
        assert!(dropped.get());
        assert!(g.is_dead());
    });
}

#[test]
fn throw_caught_inside_the_greenlet() {
    bounded(|| {
        let g = catcher();
        let out: String = g.throw(Box::new("x"));
        assert_eq!(out, "caught: x");
    });
}

#[test]
fn throw_into_unstarted_goes_to_the_parent_without_running_f() {
    bounded(|| {
        let ran = flag();
        let r = ran.clone();
        let g = Greenlet::new(move |(): ()| r.set(true));
        let msg = expect_panic(|| g.throw::<()>(Box::new("early")));
        assert_eq!(msg, "early");
        assert!(!ran.get());
        assert!(g.is_dead());
    });
}

#[test]
fn throw_into_dead_is_an_error() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| ());
        g.switch::<(), ()>(());
        let msg = expect_panic(|| g.throw::<()>(Box::new("late")));
        assert!(msg.contains("dead"), "{msg}");
    });
}

#[test]
fn try_switch_into_dead_is_an_error() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| ());
        g.switch::<(), ()>(());
        let err = g.try_switch::<(), ()>(()).unwrap_err();
        assert!(matches!(err, SwitchError::Dead), "{err:?}");
        assert_eq!(err.to_string(), "cannot switch into a dead greenlet");
    });
}

#[test]
fn switch_into_dead_panics_clearly() {
    bounded(|| {
        let g = Greenlet::new(|(): ()| ());
        g.switch::<(), ()>(());
        let msg = expect_panic(|| g.switch::<(), ()>(()));
        assert!(msg.contains("cannot switch into a dead greenlet"), "{msg}");
    });
}

#[test]
fn dropping_the_last_handle_from_the_root_unwinds() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let g = Greenlet::new(move |(): ()| {
            let _guard = SetOnDrop(d);
            to_parent::<(), ()>(());
            unreachable!("unwound while paused");
        });
        g.switch::<(), ()>(());
        let other = g.clone();
        drop(g);
        assert!(!dropped.get(), "another handle is alive");
        drop(other);
        assert!(dropped.get(), "the Drop guard ran");
    });
}

#[test]
fn dropping_the_last_handle_inside_another_greenlet_unwinds() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let outer = Greenlet::new(move |(): ()| -> (bool, u64) {
            let d2 = d.clone();
            let inner = Greenlet::new(move |(): ()| {
                let _guard = SetOnDrop(d2);
                to_parent::<(), ()>(());
                unreachable!("unwound while paused");
            });
            inner.switch::<(), ()>(());
            drop(inner);
            (d.get(), Greenlet::current().id())
        });
        let outer_id = outer.id();
        let (was_dropped, running): (bool, u64) = outer.switch(());
        assert!(was_dropped, "the guard ran during the drop");
        assert_eq!(running, outer_id, "the drop returned into the outer greenlet");
        assert!(dropped.get());
    });
}

#[test]
fn nested_greenlets() {
    bounded(|| {
        fn level(n: u32) -> u32 {
            if n == 0 {
                return 0;
            }
            let child = Greenlet::new(level);
            n + child.switch::<u32, u32>(n - 1)
        }
        let top = Greenlet::new(level);
        assert_eq!(top.switch::<u32, u32>(10), 55);
    });
}

#[test]
fn nested_greenlet_switches_back_and_forth_with_its_creator() {
    bounded(|| {
        let outer = Greenlet::new(|(): ()| -> Vec<&'static str> {
            let mut log = vec!["outer start"];
            let inner = Greenlet::new(|s: &'static str| {
                let t: &'static str = to_parent(s);
                t
            });
            log.push(inner.switch::<_, &str>("inner 1"));
            // Pause outer too: main sees the inner greenlet's work later.
            let resumed: &'static str = to_parent("outer paused");
            log.push(resumed);
            log.push(inner.switch::<_, &str>("inner 2"));
            log
        });
        assert_eq!(outer.switch::<(), &str>(()), "outer paused");
        let log: Vec<&str> = outer.switch("outer resumed");
        assert_eq!(log, ["outer start", "inner 1", "outer resumed", "inner 2"]);
    });
}

#[test]
fn greenlet_that_sleeps_in_the_middle_of_explicit_switching() {
    bounded(|| {
        let task_ran = flag();
        let t = task_ran.clone();
        let h = greenhub::spawn(move || t.set(true));
        let start = Instant::now();
        let g = Greenlet::new(|(): ()| -> i32 {
            greenhub::sleep(Duration::from_millis(20));
            let x: i32 = to_parent(1);
            greenhub::sleep(Duration::from_millis(5));
            x + 1
        });
        assert_eq!(g.switch::<(), i32>(()), 1);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(task_ran.get(), "the hub ran other green threads while g slept");
        assert_eq!(g.switch::<i32, i32>(41), 42);
        h.join().unwrap();
    });
}

#[test]
fn switch_into_a_parked_green_thread_is_an_error() {
    bounded(|| {
        let slot: Rc<RefCell<Option<Greenlet>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let h = greenhub::spawn(move || {
            *s.borrow_mut() = Some(Greenlet::current());
            greenhub::sleep(Duration::from_millis(30));
        });
        greenhub::yield_now();
        let g = slot.borrow_mut().take().unwrap();
        let err = g.try_switch::<(), ()>(()).unwrap_err();
        assert!(matches!(err, SwitchError::Parked), "{err:?}");
        drop(g);
        h.join().unwrap();
    });
}

#[test]
fn ids_are_unique_and_nonzero() {
    bounded(|| {
        let a = Greenlet::new(|(): ()| ());
        let b = Greenlet::new(|(): ()| ());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id(), 0);
        assert_ne!(b.id(), 0);
    });
}

/// Issue 10 item 14 (reproducer r9b): a paused greenlet holding a handle
/// to itself (a temporary `Greenlet::current()` kept across a switch)
/// cannot be told from one that others still hold, so dropping the last
/// outside handle leaves it paused, as documented under "Reference
/// cycles"; binding the parent first avoids the cycle, and the drop then
/// unwinds it.
#[test]
fn a_self_handle_kept_across_a_switch_is_the_documented_cycle() {
    use std::cell::Cell;
    use std::rc::Rc;
    util::bounded(|| {
        let (cyclic, bound) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let u = cyclic.clone();
        let g = Greenlet::new(move |(): ()| {
            let _m = util::SetOnDrop(u);
            Greenlet::current().parent().unwrap().switch::<(), ()>(());
        });
        g.switch::<(), ()>(());
        drop(g);
        assert!(
            !cyclic.get(),
            "the documented limitation changed: update the docs"
        );
        let u = bound.clone();
        let g = Greenlet::new(move |(): ()| {
            let _m = util::SetOnDrop(u);
            let parent = Greenlet::current().parent().unwrap();
            parent.switch::<(), ()>(());
        });
        g.switch::<(), ()>(());
        drop(g);
        assert!(bound.get());
    });
}

/// Recursion using about 1 KiB of stack a level.
fn deep(n: u32) -> u32 {
    let pad = std::hint::black_box([1u8; 1024]);
    if n == 0 {
        u32::from(pad[0])
    } else {
        1 + deep(n - 1)
    }
}

#[test]
fn with_stack_size_gives_a_greenlet_room_for_deep_recursion() {
    bounded(|| {
        // About 2 MiB of frames, 32 times the default stack.
        let g = Greenlet::with_stack_size(8 << 20, |n: u32| deep(n)).unwrap();
        assert_eq!(g.switch::<u32, u32>(2000), 2001);
        for bad in [0, usize::MAX] {
            let err = Greenlet::with_stack_size(bad, |(): ()| ()).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        }
    });
}
