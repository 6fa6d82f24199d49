//! `greenhub::sync::Local`, and `thread_local!` inside green threads.

mod util;

use std::cell::Cell;
use std::rc::Rc;

use greenhub::sync::Local;
use greenhub::{spawn, yield_now};
use util::{bounded, flag, SetOnDrop};

#[test]
fn each_green_thread_sees_its_own_value() {
    bounded(|| {
        let local = Rc::new(Local::new(|| Cell::new(0)));
        let hs: Vec<_> = (1..=3)
            .map(|n| {
                let local = local.clone();
                spawn(move || {
                    for _ in 0..n {
                        local.with(|c| c.set(c.get() + 1));
                        yield_now();
                    }
                    local.with(Cell::get)
                })
            })
            .collect();
        local.with(|c| c.set(100));
        let got: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(local.with(Cell::get), 100, "the main green thread has its own");
    });
}

#[test]
fn init_runs_once_per_green_thread() {
    bounded(|| {
        let inits = Rc::new(Cell::new(0));
        let i = inits.clone();
        let local = Rc::new(Local::new(move || i.set(i.get() + 1)));
        let l = local.clone();
        spawn(move || {
            l.with(|_| ());
            l.with(|_| ());
        })
        .join()
        .unwrap();
        local.with(|_| ());
        assert_eq!(inits.get(), 2);
    });
}

#[test]
fn a_value_is_dropped_as_its_green_thread_ends() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let local = Rc::new(Local::new(move || SetOnDrop(d.clone())));
        let l = local.clone();
        spawn(move || l.with(|_| ())).join().unwrap();
        assert!(
            dropped.get(),
            "dropped when the green thread ended, with no later access"
        );
        assert_eq!(local.len(), 0);
    });
}

#[test]
fn a_killed_green_threads_value_is_dropped_too() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let local = Rc::new(Local::new(move || SetOnDrop(d.clone())));
        let l = local.clone();
        let h = spawn(move || {
            l.with(|_| ());
            greenhub::sleep(std::time::Duration::from_secs(60));
        });
        greenhub::yield_now();
        assert_eq!(local.len(), 1);
        h.kill();
        assert!(dropped.get());
        assert_eq!(local.len(), 0);
    });
}

#[test]
fn dropping_the_local_drops_every_value() {
    bounded(|| {
        let dropped = flag();
        let d = dropped.clone();
        let local = Local::new(move || SetOnDrop(d.clone()));
        local.with(|_| ());
        drop(local);
        assert!(dropped.get());
    });
}

#[test]
fn with_may_block_while_others_use_the_local() {
    bounded(|| {
        let local = Rc::new(Local::new(|| Cell::new(0)));
        let l = local.clone();
        let h = spawn(move || {
            l.with(|c| {
                c.set(1);
                yield_now(); // the main green thread uses the Local meanwhile
                c.get()
            })
        });
        yield_now();
        local.with(|c| c.set(2));
        assert_eq!(h.join().unwrap(), 1);
    });
}

thread_local! {
    static PER_OS_THREAD: Cell<u32> = const { Cell::new(0) };
}

// tests/hub.rs checks that thread-locals are shared by the green threads of
// one OS thread; this adds that each OS thread's hub keeps its own.
#[test]
fn thread_locals_are_per_os_thread_inside_green_threads() {
    let on_one_thread = || {
        bounded(|| {
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    spawn(|| {
                        PER_OS_THREAD.with(|c| c.set(c.get() + 1));
                        yield_now();
                        PER_OS_THREAD.with(Cell::get)
                    })
                })
                .collect();
            greenhub::join_all(&hs);
            PER_OS_THREAD.with(Cell::get)
        })
    };
    let a = std::thread::spawn(on_one_thread);
    let b = std::thread::spawn(on_one_thread);
    assert_eq!(a.join().unwrap(), 3);
    assert_eq!(b.join().unwrap(), 3);
}
