//! Groups and pools: join, kill, add, the pool's bound (checked by counters
//! inside the tasks), FIFO service of parked spawners, no place lost to
//! kills or timeouts, map and imap_unordered.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::pool::{Group, Pool};
use greenhub::{call_soon, sleep, spawn, with_timeout, yield_now, JoinHandle};
use util::{bounded, expect_panic, flag, SetOnDrop};

const LONG: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts green threads running at once: `enter` returns a guard.
#[derive(Default)]
struct Gauge {
    now: Cell<usize>,
    max: Cell<usize>,
}

struct InGauge(Rc<Gauge>);

impl Gauge {
    fn enter(self: &Rc<Self>) -> InGauge {
        self.now.set(self.now.get() + 1);
        self.max.set(self.max.get().max(self.now.get()));
        InGauge(self.clone())
    }
}

impl Drop for InGauge {
    fn drop(&mut self) {
        self.0.now.set(self.0.now.get() - 1);
    }
}

// ---- Group ----

#[test]
fn group_join_waits_for_every_member() {
    bounded(|| {
        let group = Group::new();
        let hs: Vec<_> = [20, 5, 10]
            .into_iter()
            .map(|n| group.spawn(move || sleep(ms(n))))
            .collect();
        assert_eq!(group.len(), 3);
        group.join();
        assert!(group.is_empty());
        assert!(hs.iter().all(JoinHandle::is_finished));
    });
}

#[test]
fn group_join_timeout_reports_whether_it_emptied() {
    bounded(|| {
        let group = Group::new();
        group.spawn(|| sleep(LONG));
        let t = Instant::now();
        assert!(!group.join_timeout(ms(20)));
        assert!(t.elapsed() >= ms(20));
        group.kill();
        assert!(group.join_timeout(ms(0)));
    });
}

#[test]
fn group_members_leave_as_they_end() {
    bounded(|| {
        let group = Group::new();
        for _ in 0..1000 {
            group.spawn(|| ());
            yield_now();
        }
        assert!(group.is_empty(), "finished members are not kept");
        let panicked = group.spawn(|| panic!("member failed"));
        assert!(panicked.join().unwrap_err().is_panic());
        assert!(group.is_empty());
    });
}

#[test]
fn group_kill_kills_started_and_unstarted_members() {
    bounded(|| {
        let group = Group::new();
        let unwound = flag();
        let u = unwound.clone();
        let started = group.spawn(move || {
            let _g = SetOnDrop(u);
            sleep(LONG)
        });
        yield_now();
        let ran = flag();
        let r = ran.clone();
        let unstarted = group.spawn(move || r.set(true));
        group.kill();
        assert!(group.is_empty());
        assert!(unwound.get());
        assert!(!ran.get(), "an unstarted member never runs");
        assert!(started.join().unwrap_err().is_killed());
        assert!(unstarted.join().unwrap_err().is_killed());
    });
}

#[test]
fn group_kill_from_a_member_kills_the_others() {
    bounded(|| {
        let group = Group::new();
        let other = group.spawn(|| sleep(LONG));
        let g = group.clone();
        let killer = group.spawn(move || {
            g.kill();
            g.len()
        });
        assert_eq!(killer.join().unwrap(), 1, "only the killer itself is left");
        assert!(other.join().unwrap_err().is_killed());
    });
}

#[test]
fn group_join_from_a_member_waits_for_the_others() {
    bounded(|| {
        let group = Group::new();
        let other = group.spawn(|| sleep(ms(10)));
        let g = group.clone();
        let joiner = group.spawn(move || g.join());
        joiner.join().unwrap();
        assert!(other.is_finished());
    });
}

#[test]
fn group_add_joins_and_kills_added_green_threads() {
    bounded(|| {
        let group = Group::new();
        group.add(spawn(|| sleep(ms(10))));
        assert_eq!(group.len(), 1);
        group.join();
        assert!(group.is_empty());

        let unwound = flag();
        let u = unwound.clone();
        group.add(spawn(move || {
            let _g = SetOnDrop(u);
            sleep(LONG)
        }));
        yield_now();
        group.kill();
        assert!(unwound.get(), "the added green thread is dead when kill returns");
    });
}

// ---- Pool: bound, FIFO, no lost places ----

#[test]
fn pool_never_runs_more_than_its_size() {
    bounded(|| {
        let pool = Pool::new(3);
        let gauge = Rc::new(Gauge::default());
        for i in 0..30u64 {
            let g = gauge.clone();
            pool.spawn(move || {
                let _in = g.enter();
                sleep(ms(i % 4));
                for _ in 0..i % 3 {
                    yield_now();
                }
            });
            assert!(pool.len() <= 3);
        }
        pool.join();
        assert_eq!(gauge.max.get(), 3);
        assert_eq!(pool.free_count(), 3);
    });
}

#[test]
fn pool_spawn_parks_while_full() {
    bounded(|| {
        let pool = Pool::new(1);
        pool.spawn(|| sleep(ms(20)));
        assert!(pool.is_full());
        let t = Instant::now();
        pool.spawn(|| ());
        assert!(t.elapsed() >= ms(20), "spawn waited for the place");
        pool.join();
    });
}

#[test]
fn pool_serves_parked_spawners_first_come_first_served() {
    bounded(|| {
        let pool = Pool::new(1);
        let order = Rc::new(RefCell::new(Vec::new()));
        let blocker = pool.spawn(|| sleep(ms(10)));
        let spawners: Vec<_> = (0..4)
            .map(|i| {
                let (p, o) = (pool.clone(), order.clone());
                spawn(move || p.spawn(move || o.borrow_mut().push(i)).join().unwrap())
            })
            .collect();
        blocker.join().unwrap();
        greenhub::join_all(&spawners);
        assert_eq!(*order.borrow(), [0, 1, 2, 3]);
    });
}

#[test]
fn pool_place_of_a_killed_waiter_is_not_lost() {
    bounded(|| {
        let pool = Pool::new(1);
        let blocker = pool.spawn(|| sleep(ms(10)));
        let p = pool.clone();
        let waiter = spawn(move || p.spawn(|| ()));
        yield_now();
        waiter.kill();
        blocker.join().unwrap();
        assert_eq!(pool.free_count(), 1);
        assert!(!pool.is_full());
    });
}

#[test]
fn pool_place_handed_to_a_waiter_killed_before_it_ran_goes_to_the_next() {
    bounded(|| {
        let pool = Pool::new(1);
        let first_waiter: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let fw = first_waiter.clone();
        // The blocker's last act queues a callback ahead of the waiter's
        // wake-up: the callback kills the waiter after it was handed the place.
        // It first wakes a decoy, which takes the hub's runnext slot, so that
        // the waiter's wake goes to the queue, behind the callback.
        let decoy_event = Rc::new(greenhub::sync::Event::new());
        let de = decoy_event.clone();
        let decoy = spawn(move || de.wait());
        let blocker = pool.spawn(move || {
            sleep(ms(5));
            decoy_event.set();
            call_soon(move || fw.borrow().as_ref().unwrap().kill());
        });
        let p = pool.clone();
        *first_waiter.borrow_mut() = Some(spawn(move || {
            p.spawn(|| ());
        }));
        let p = pool.clone();
        let second = spawn(move || p.spawn(|| 7).join().unwrap());
        blocker.join().unwrap();
        assert_eq!(second.join().unwrap(), 7, "the next waiter got the place");
        let fw = first_waiter.borrow_mut().take().unwrap();
        assert!(fw.join().unwrap_err().is_killed());
        assert_eq!(pool.free_count(), 1);
        decoy.join().unwrap();
    });
}

#[test]
fn pool_place_of_a_killed_member_is_freed() {
    bounded(|| {
        let pool = Pool::new(2);
        let running = pool.spawn(|| sleep(LONG));
        let unstarted = pool.spawn(|| sleep(LONG));
        assert!(pool.is_full());
        running.kill();
        unstarted.kill();
        assert_eq!(pool.free_count(), 2);
        pool.spawn(|| sleep(LONG));
        pool.kill();
        assert_eq!(pool.free_count(), 2);
    });
}

#[test]
fn pool_wait_available_times_out_and_returns_when_free() {
    bounded(|| {
        let pool = Pool::new(1);
        let h = pool.spawn(|| sleep(ms(20)));
        let t = Instant::now();
        assert!(!pool.wait_available_timeout(ms(5)));
        assert!(t.elapsed() >= ms(5));
        pool.wait_available();
        assert!(h.is_finished());
        assert_eq!(pool.free_count(), 1, "waiting takes no place");
    });
}

#[test]
fn pool_spawn_cut_short_by_a_timeout_takes_no_place() {
    bounded(|| {
        let pool = Pool::new(1);
        pool.spawn(|| sleep(ms(20)));
        let ran = flag();
        let r = ran.clone();
        assert!(with_timeout(ms(5), || pool.spawn(move || r.set(true))).is_err());
        pool.join();
        assert!(!ran.get());
        assert_eq!(pool.free_count(), 1);
    });
}

#[test]
fn pool_add_holds_a_place_until_the_green_thread_ends() {
    bounded(|| {
        let pool = Pool::new(1);
        pool.add(spawn(|| sleep(ms(10))));
        assert!(pool.is_full());
        pool.join();
        assert_eq!(pool.free_count(), 1);
    });
}

// ---- map / imap_unordered ----

#[test]
fn pool_map_keeps_input_order_within_the_bound() {
    bounded(|| {
        let pool = Pool::new(4);
        let gauge = Rc::new(Gauge::default());
        let g = gauge.clone();
        let out = pool.map(
            move |i: u64| {
                let _in = g.enter();
                sleep(ms((20 - i) % 7));
                i * 10
            },
            0..20,
        );
        assert_eq!(out, (0..20).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(gauge.max.get(), 4);
    });
}

#[test]
fn pool_map_reraises_a_panic_and_kills_the_rest() {
    bounded(|| {
        let pool = Pool::new(3);
        let msg = expect_panic(|| {
            pool.map(
                |i: u64| {
                    if i == 1 {
                        panic!("item one failed");
                    }
                    sleep(LONG)
                },
                0..3,
            )
        });
        assert_eq!(msg, "item one failed");
        assert!(pool.is_empty(), "the other calls were killed");
    });
}

#[test]
fn pool_map_cut_short_by_a_timeout_kills_its_calls() {
    bounded(|| {
        let pool = Pool::new(2);
        let unwound = Rc::new(Cell::new(0));
        let u = unwound.clone();
        let r = with_timeout(ms(10), || {
            pool.map(
                move |_: u32| {
                    let _g = Count(u.clone());
                    sleep(LONG)
                },
                0..5,
            )
        });
        assert!(r.is_err());
        pool.join();
        assert_eq!(
            unwound.get(),
            2,
            "the two running calls were killed, the rest never started"
        );
        assert_eq!(pool.free_count(), 2);
    });
}

/// Counts the drops: how many stacks were unwound past it.
struct Count(Rc<Cell<u32>>);

impl Drop for Count {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn imap_unordered_yields_in_finish_order() {
    bounded(|| {
        let pool = Pool::new(4);
        let got: Vec<u64> = pool
            .imap_unordered(
                |n: u64| {
                    sleep(ms(n));
                    n
                },
                [40, 10, 30, 20],
            )
            .collect();
        assert_eq!(got, [10, 20, 30, 40]);
    });
}

#[test]
fn imap_unordered_runs_at_most_size_at_once() {
    bounded(|| {
        let pool = Pool::new(3);
        let gauge = Rc::new(Gauge::default());
        let g = gauge.clone();
        let mut got: Vec<u64> = pool
            .imap_unordered(
                move |i: u64| {
                    let _in = g.enter();
                    sleep(ms(i % 5));
                    i
                },
                0..25,
            )
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..25).collect::<Vec<_>>());
        assert_eq!(gauge.max.get(), 3);
    });
}

#[test]
fn imap_unordered_dropped_early_kills_what_it_started() {
    bounded(|| {
        let pool = Pool::new(2);
        let mut it = pool.imap_unordered(
            |n: u64| {
                sleep(if n == 0 { ms(1) } else { LONG });
                n
            },
            0..10,
        );
        assert_eq!(it.next(), Some(0));
        drop(it);
        assert!(pool.is_empty());
        assert_eq!(pool.free_count(), 2);
    });
}

// ---- imap (ordered), apply, apply_async ----

#[test]
fn imap_keeps_input_order_with_a_pool_smaller_than_the_input() {
    bounded(|| {
        let pool = Pool::new(2);
        let gauge = Rc::new(Gauge::default());
        let g = gauge.clone();
        // Later items finish first: order must come from the input.
        let input: Vec<u64> = (0..8).rev().collect();
        let got: Vec<u64> = pool
            .imap(
                move |n: u64| {
                    let _in = g.enter();
                    sleep(ms(n * 3));
                    n
                },
                input.clone(),
            )
            .collect();
        assert_eq!(got, input);
        assert_eq!(gauge.max.get(), 2, "never more than the pool's size at once");
    });
}

#[test]
fn imap_reraises_a_panic_in_its_turn_and_kills_the_rest() {
    bounded(|| {
        let pool = Pool::new(3);
        let mut it = pool.imap(
            |n: u64| {
                if n == 1 {
                    panic!("item one");
                }
                sleep(if n == 0 { ms(5) } else { LONG });
                n
            },
            0..5,
        );
        assert_eq!(it.next(), Some(0));
        let msg = expect_panic(move || it.next());
        assert!(msg.contains("item one"), "{msg}");
        assert!(pool.is_empty(), "the long calls were killed");
    });
}

#[test]
fn apply_returns_the_value_and_runs_inline_from_a_member_of_a_full_pool() {
    bounded(|| {
        let pool = Pool::new(1);
        assert_eq!(pool.apply(|| 6 * 7), 42);
        let p = pool.clone();
        // The only place is the caller's own: waiting for it would deadlock.
        let h = pool.spawn(move || p.apply(|| greenhub::Greenlet::current().id()));
        let id = h.id();
        assert_eq!(h.join().unwrap(), id, "ran in the member itself");
        let msg = expect_panic(|| pool.apply(|| -> u8 { panic!("applied") }));
        assert!(msg.contains("applied"), "{msg}");
    });
}

#[test]
fn apply_async_calls_back_with_each_value_and_keeps_it_for_join() {
    bounded(|| {
        let pool = Pool::new(2);
        let seen = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<JoinHandle<u64>> = (1..=4)
            .map(|i| {
                let s = seen.clone();
                pool.apply_async(
                    move || {
                        sleep(ms(i));
                        i
                    },
                    move |v| s.borrow_mut().push(*v),
                )
            })
            .collect();
        let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 10);
        let mut seen = seen.borrow().clone();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3, 4]);
    });
}

// ---- Group: map, imap, imap_unordered, discard, contains ----

#[test]
fn group_map_runs_all_at_once_in_input_order() {
    bounded(|| {
        let group = Group::new();
        let start = Instant::now();
        let got = group.map(
            |n: u64| {
                sleep(ms(100));
                n * 2
            },
            0..6,
        );
        assert_eq!(got, [0, 2, 4, 6, 8, 10]);
        assert!(
            start.elapsed() < ms(500),
            "six 100 ms calls overlapped: {:?}",
            start.elapsed()
        );
        let ordered: Vec<u64> = group
            .imap(
                |n: u64| {
                    sleep(ms(25 * (5 - n)));
                    n
                },
                0..5,
            )
            .collect();
        assert_eq!(ordered, [0, 1, 2, 3, 4]);
        let mut finished: Vec<u64> = group
            .imap_unordered(
                |n: u64| {
                    // Steps far apart: the spawns run microseconds apart,
                    // but a loaded machine can pause the hub for ms.
                    sleep(ms(40 * (5 - n)));
                    n
                },
                0..5,
            )
            .collect();
        // The quickest comes first; calls that finish while the caller is
        // held up (a loaded machine) come in start order, so only the first
        // place is certain.
        assert_eq!(finished[0], 4, "{finished:?}");
        finished.sort_unstable();
        assert_eq!(finished, [0, 1, 2, 3, 4]);
        assert!(group.is_empty());
    });
}

#[test]
fn discard_takes_a_member_out_without_killing_it() {
    bounded(|| {
        let group = Group::new();
        let kept = group.spawn(|| sleep(LONG));
        let out = group.spawn(|| {
            sleep(ms(20));
            "survived"
        });
        assert!(group.contains(&out));
        assert!(group.discard(&out));
        assert!(!group.contains(&out) && !group.discard(&out));
        assert_eq!(group.len(), 1);
        group.kill();
        assert!(kept.join().unwrap_err().is_killed());
        assert_eq!(out.join().unwrap(), "survived");
    });
}

#[test]
fn discarding_the_last_member_ends_a_join() {
    bounded(|| {
        let group = Group::new();
        let h = group.spawn(|| sleep(LONG));
        let g = group.clone();
        let joiner = spawn(move || g.join_timeout(Duration::from_secs(10)));
        yield_now();
        group.discard(&h);
        assert!(joiner.join().unwrap(), "the join saw the group empty");
        h.kill();
    });
}
