//! `greenhub::sync::Queue`, `LifoQueue` and `PriorityQueue`.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::sync::{GetError, LifoQueue, PriorityQueue, PutError, Queue};
use greenhub::{spawn, with_timeout, yield_now, JoinHandle};
use util::bounded;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Spawns a green thread that does one `get` and lets it park.
fn parked_getter(q: &Rc<Queue<u32>>) -> JoinHandle<Result<u32, GetError>> {
    let q = q.clone();
    let h = spawn(move || q.get());
    yield_now();
    h
}

/// Spawns a green thread that does one `put` and lets it park.
fn parked_putter(q: &Rc<Queue<u32>>, item: u32) -> JoinHandle<Result<(), PutError<u32>>> {
    let q = q.clone();
    let h = spawn(move || q.put(item));
    yield_now();
    h
}

#[test]
fn a_queue_is_first_in_first_out() {
    bounded(|| {
        let q = Queue::new();
        for i in 0..5 {
            q.put(i).unwrap();
        }
        let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    });
}

#[test]
fn a_lifo_queue_is_last_in_first_out() {
    bounded(|| {
        let q = LifoQueue::new();
        for i in 0..3 {
            q.put(i).unwrap();
        }
        let got: Vec<i32> = (0..3).map(|_| q.get().unwrap()).collect();
        assert_eq!(got, [2, 1, 0]);
    });
}

#[test]
fn a_priority_queue_gives_the_smallest_first() {
    bounded(|| {
        let q = PriorityQueue::new();
        for x in [5, 1, 4, 2, 3] {
            q.put(x).unwrap();
        }
        let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);
    });
}

#[test]
fn parked_getters_are_served_in_arrival_order() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let getters: Vec<_> = (0..4).map(|_| parked_getter(&q)).collect();
        for i in 0..4 {
            q.put(i).unwrap();
        }
        let got: Vec<u32> = getters.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

#[test]
fn parked_putters_are_served_in_arrival_order() {
    bounded(|| {
        let q = Rc::new(Queue::bounded(1));
        q.put(0).unwrap();
        let putters: Vec<_> = (1..4).map(|i| parked_putter(&q, i)).collect();
        let got: Vec<u32> = (0..4).map(|_| q.get().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
        for p in putters {
            p.join().unwrap().unwrap();
        }
    });
}

#[test]
fn an_item_for_a_parked_getter_is_not_taken_by_a_newcomer() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let g = parked_getter(&q);
        q.put(9).unwrap();
        assert_eq!(
            q.try_get(),
            Err(GetError::Empty),
            "the item went to the parked getter"
        );
        assert_eq!(g.join().unwrap(), Ok(9));
    });
}

#[test]
fn a_place_freed_for_a_parked_putter_is_not_taken_by_a_newcomer() {
    bounded(|| {
        let q = Rc::new(Queue::bounded(1));
        q.put(0).unwrap();
        let p = parked_putter(&q, 1);
        assert_eq!(q.get(), Ok(0));
        assert_eq!(q.try_put(2), Err(PutError::Full(2)));
        p.join().unwrap().unwrap();
        assert_eq!(q.get(), Ok(1));
    });
}

#[test]
fn put_parks_while_full_and_resumes_when_room_is_made() {
    bounded(|| {
        let q = Rc::new(Queue::bounded(2));
        let q2 = q.clone();
        let producer = spawn(move || {
            for i in 0..5 {
                q2.put(i).unwrap();
                assert!(q2.len() <= 2);
            }
        });
        yield_now();
        assert_eq!(q.len(), 2);
        assert!(q.is_full());
        assert!(!producer.is_finished());
        let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        producer.join().unwrap();
    });
}

#[test]
fn get_timeout_times_out_on_an_empty_queue() {
    bounded(|| {
        let q = Queue::<u8>::new();
        let start = Instant::now();
        assert_eq!(q.get_timeout(ms(15)), Err(GetError::TimedOut));
        assert!(start.elapsed() >= ms(15));
    });
}

#[test]
fn put_timeout_times_out_on_a_full_queue_and_returns_the_item() {
    bounded(|| {
        let q = Queue::bounded(1);
        q.put(1).unwrap();
        let start = Instant::now();
        assert_eq!(q.put_timeout(2, ms(15)), Err(PutError::TimedOut(2)));
        assert!(start.elapsed() >= ms(15));
        assert_eq!(q.len(), 1);
    });
}

#[test]
fn join_timeout_times_out_with_unfinished_items() {
    bounded(|| {
        let q = Queue::new();
        q.put(1).unwrap();
        assert!(!q.join_timeout(ms(5)));
        q.get().unwrap();
        q.task_done().unwrap();
        assert!(q.join_timeout(ms(5)));
    });
}

#[test]
fn a_getter_killed_while_parked_leaves_the_queue_consistent() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let doomed = parked_getter(&q);
        let next = parked_getter(&q);
        doomed.kill();
        q.put(1).unwrap();
        assert_eq!(next.join().unwrap(), Ok(1), "the next getter is served");
        assert!(q.is_empty());
    });
}

#[test]
fn a_getter_killed_right_after_being_handed_an_item_passes_it_on() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let doomed = parked_getter(&q);
        let next = parked_getter(&q);
        q.put(1).unwrap(); // handed to `doomed`, which has not run yet
        doomed.kill();
        assert!(doomed.join().unwrap_err().is_killed());
        q.put(2).unwrap();
        assert_eq!(next.join().unwrap(), Ok(1), "the item went to the next getter");
        assert_eq!(q.try_get(), Ok(2));
    });
}

#[test]
fn a_getter_killed_after_the_hand_off_with_nobody_waiting_puts_the_item_back_in_front() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let doomed = parked_getter(&q);
        q.put(1).unwrap();
        q.put(2).unwrap();
        doomed.kill();
        assert_eq!(q.try_get(), Ok(1));
        assert_eq!(q.try_get(), Ok(2));
    });
}

#[test]
fn a_getter_cut_by_with_timeout_after_the_hand_off_loses_nothing() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let q2 = q.clone();
        let cut = spawn(move || with_timeout(ms(5), || q2.get()));
        yield_now();
        // Let the deadline pass without the hub running: the hand-off and the
        // timeout land in the same turn, the timeout winning when it resumes.
        let start = Instant::now();
        while start.elapsed() < ms(10) {}
        q.put(1).unwrap();
        match cut.join().unwrap() {
            Ok(got) => assert_eq!(got, Ok(1)),
            Err(greenhub::Elapsed) => assert_eq!(q.try_get(), Ok(1), "the item is back"),
        }
    });
}

#[test]
fn a_putter_killed_while_parked_does_not_put_its_item() {
    bounded(|| {
        let q = Rc::new(Queue::bounded(1));
        q.put(0).unwrap();
        let doomed = parked_putter(&q, 1);
        let next = parked_putter(&q, 2);
        doomed.kill();
        assert_eq!(q.get(), Ok(0));
        assert_eq!(q.get(), Ok(2));
        next.join().unwrap().unwrap();
        assert!(q.is_empty());
    });
}

#[test]
fn close_wakes_parked_getters_with_closed() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let getters: Vec<_> = (0..2).map(|_| parked_getter(&q)).collect();
        q.close();
        for g in getters {
            assert_eq!(g.join().unwrap(), Err(GetError::Closed));
        }
    });
}

#[test]
fn close_lets_getters_drain_the_remaining_items_first() {
    bounded(|| {
        let q = Queue::new();
        q.put(1).unwrap();
        q.put(2).unwrap();
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.try_get(), Ok(2));
        assert_eq!(q.try_get(), Err(GetError::Closed));
        assert_eq!(q.get(), Err(GetError::Closed));
        assert_eq!(q.get_timeout(ms(1)), Err(GetError::Closed));
    });
}

#[test]
fn puts_after_close_fail_and_parked_putters_get_their_items_back() {
    bounded(|| {
        let q = Rc::new(Queue::bounded(1));
        q.put(0).unwrap();
        let p = parked_putter(&q, 1);
        q.close();
        assert_eq!(p.join().unwrap(), Err(PutError::Closed(1)));
        assert_eq!(q.put(2), Err(PutError::Closed(2)));
        assert_eq!(q.try_put(3), Err(PutError::Closed(3)));
        assert_eq!(q.get(), Ok(0));
        assert_eq!(q.get(), Err(GetError::Closed));
    });
}

#[test]
fn iteration_ends_when_closed_and_drained() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let q2 = q.clone();
        let consumer = spawn(move || q2.iter().collect::<Vec<_>>());
        for i in 0..4 {
            q.put(i).unwrap();
            yield_now();
        }
        q.close();
        assert_eq!(consumer.join().unwrap(), [0, 1, 2, 3]);
    });
}

#[test]
fn join_waits_until_every_item_is_done() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let done = Rc::new(Cell::new(0));
        let (q2, d) = (q.clone(), done.clone());
        let worker = spawn(move || {
            for _job in &*q2 {
                greenhub::sleep(ms(1));
                d.set(d.get() + 1);
                q2.task_done().unwrap();
            }
        });
        for i in 0..3 {
            q.put(i).unwrap();
        }
        q.join();
        assert_eq!(done.get(), 3);
        assert!(q.task_done().is_err(), "more task_done calls than items");
        q.close();
        worker.join().unwrap();
    });
}

#[test]
fn len_never_exceeds_the_bound_with_many_putters() {
    bounded(|| {
        let q = Rc::new(Queue::bounded(3));
        let max = Rc::new(Cell::new(0));
        let putters: Vec<_> = (0..5)
            .map(|p| {
                let (q, max) = (q.clone(), max.clone());
                spawn(move || {
                    for i in 0..20 {
                        q.put(p * 100 + i).unwrap();
                        max.set(max.get().max(q.len()));
                    }
                })
            })
            .collect();
        let got = RefCell::new(Vec::new());
        for _ in 0..100 {
            got.borrow_mut().push(q.get().unwrap());
            max.set(max.get().max(q.len()));
            if got.borrow().len() % 7 == 0 {
                yield_now();
            }
        }
        greenhub::join_all(&putters);
        assert!(max.get() <= 3, "max len {}", max.get());
        let mut got = got.into_inner();
        got.sort();
        let mut want: Vec<u32> = (0..5).flat_map(|p| (0..20).map(move |i| p * 100 + i)).collect();
        want.sort();
        assert_eq!(got, want);
    });
}

#[test]
fn peek_shows_what_get_would_take_in_each_order_and_takes_nothing() {
    bounded(|| {
        let fifo = Queue::new();
        let lifo = LifoQueue::new();
        let prio = PriorityQueue::new();
        assert_eq!(fifo.peek(), None);
        for i in [2, 1, 3] {
            fifo.put(i).unwrap();
            lifo.put(i).unwrap();
            prio.put(i).unwrap();
        }
        for _ in 0..2 {
            assert_eq!(
                (fifo.peek(), lifo.peek(), prio.peek()),
                (Some(2), Some(3), Some(1))
            );
        }
        assert_eq!((fifo.len(), lifo.len(), prio.len()), (3, 3, 3));
        assert_eq!((fifo.get(), lifo.get(), prio.get()), (Ok(2), Ok(3), Ok(1)));
        assert_eq!(fifo.peek_with(|v| v * 10), Some(10));
    });
}

#[test]
fn peek_does_not_wake_or_feed_a_parked_getter() {
    bounded(|| {
        let q = Rc::new(Queue::new());
        let getter = parked_getter(&q);
        q.put(7).unwrap(); // handed straight to the parked getter: not stored
        assert_eq!(q.peek(), None);
        assert_eq!(getter.join().unwrap(), Ok(7));
        q.put(8).unwrap();
        assert_eq!(q.peek(), Some(8));
        assert_eq!(q.try_get(), Ok(8));
    });
}
