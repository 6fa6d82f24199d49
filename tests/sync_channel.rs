//! `greenhub::sync::Channel`: a rendezvous queue.

mod util;

use std::rc::Rc;
use std::time::Duration;

use greenhub::sync::{Channel, GetError, PutError};
use greenhub::{spawn, yield_now};
use util::bounded;

#[test]
fn put_waits_until_a_getter_takes_the_item() {
    bounded(|| {
        let ch = Rc::new(Channel::new());
        let c = ch.clone();
        let putter = spawn(move || c.put(1));
        yield_now();
        assert!(!putter.is_finished(), "no getter yet");
        assert!(ch.is_empty(), "a channel stores nothing");
        assert_eq!(ch.get(), Ok(1));
        putter.join().unwrap().unwrap();
    });
}

#[test]
fn put_to_a_parked_getter_returns_at_once() {
    bounded(|| {
        let ch = Rc::new(Channel::new());
        let c = ch.clone();
        let getter = spawn(move || c.get());
        yield_now();
        assert_eq!(ch.try_put(5), Ok(()));
        assert_eq!(getter.join().unwrap(), Ok(5));
    });
}

#[test]
fn try_put_without_a_getter_fails() {
    bounded(|| {
        let ch = Channel::new();
        assert_eq!(ch.try_put(1), Err(PutError::Full(1)));
        assert!(ch.is_full());
        assert_eq!(ch.try_get(), Err(GetError::Empty));
    });
}

#[test]
fn putters_are_served_in_arrival_order() {
    bounded(|| {
        let ch = Rc::new(Channel::new());
        let putters: Vec<_> = (0..3)
            .map(|i| {
                let c = ch.clone();
                let h = spawn(move || c.put(i));
                yield_now();
                h
            })
            .collect();
        let got: Vec<i32> = (0..3).map(|_| ch.try_get().unwrap()).collect();
        assert_eq!(got, [0, 1, 2]);
        for p in putters {
            p.join().unwrap().unwrap();
        }
    });
}

#[test]
fn put_timeout_times_out_without_a_getter() {
    bounded(|| {
        let ch = Channel::new();
        assert_eq!(
            ch.put_timeout("x", Duration::from_millis(10)),
            Err(PutError::TimedOut("x"))
        );
        assert_eq!(ch.get_timeout(Duration::from_millis(1)), Err(GetError::TimedOut));
    });
}

#[test]
fn an_item_handed_to_a_getter_killed_before_it_ran_goes_to_the_next_getter() {
    bounded(|| {
        let ch = Rc::new(Channel::new());
        let (c1, c2) = (ch.clone(), ch.clone());
        let doomed = spawn(move || c1.get());
        let next = spawn(move || c2.get());
        yield_now();
        ch.put(1).unwrap();
        doomed.kill();
        assert_eq!(next.join().unwrap(), Ok(1));
    });
}

#[test]
fn an_item_handed_to_a_killed_getter_with_nobody_waiting_is_kept_for_the_next() {
    bounded(|| {
        let ch = Rc::new(Channel::new());
        let c = ch.clone();
        let doomed = spawn(move || c.get());
        yield_now();
        ch.put(1).unwrap();
        doomed.kill();
        assert_eq!(ch.len(), 1, "kept, not lost");
        assert_eq!(ch.try_get(), Ok(1));
    });
}

#[test]
fn ping_pong_through_two_channels() {
    bounded(|| {
        let (ping, pong) = (Rc::new(Channel::new()), Rc::new(Channel::new()));
        let (pi, po) = (ping.clone(), pong.clone());
        let echo = spawn(move || {
            for x in pi.iter() {
                po.put(x + 1).unwrap();
            }
        });
        let mut x = 0;
        for _ in 0..100 {
            ping.put(x).unwrap();
            x = pong.get().unwrap();
        }
        assert_eq!(x, 100);
        ping.close();
        echo.join().unwrap();
    });
}
