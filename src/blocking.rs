//! Blocking work off the hub (gevent's threadpool, asyncio's
//! `run_in_executor`): [`run`] hands a closure to a pool of OS threads and
//! parks only the calling green thread until it returns.
//!
//! The pool starts empty, grows on demand up to a limit (64 threads unless
//! [`set_max_threads`] says otherwise), and threads idle for 10 seconds
//! exit. Name resolution in [`net`](crate::net) goes through it, so
//! `getaddrinfo` never blocks a hub.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::hub::remote::RemoteWait;

type Job = Box<dyn FnOnce() + Send>;

/// How long a pool thread waits for work before exiting.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pool's upper bound on threads; see [`set_max_threads`].
static MAX_THREADS: AtomicUsize = AtomicUsize::new(64);

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

#[derive(Default)]
struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

/// The pool, made on first use; replaced by a fresh one in a forked child
/// (see `reinit_after_fork`), the old one leaked (its threads live only in
/// the parent, and its lock may have been held by one of them at the fork).
static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

fn pool() -> &'static Pool {
    let p = POOL.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null POOL comes from `Box::leak`, never freed.
        return unsafe { &*p };
    }
    let fresh = Box::into_raw(Box::default());
    match POOL.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just leaked, and stored for good.
        Ok(_) => unsafe { &*fresh },
        Err(theirs) => {
            // SAFETY: `fresh` was never shared; `theirs` is a leaked pool.
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: as above: leaked, never freed.
            unsafe { &*theirs }
        }
    }
}

/// In a forked child: forgets the parent's pool (see `POOL`).
pub(crate) fn reinit_after_fork() {
    POOL.store(std::ptr::null_mut(), Ordering::Release);
}

impl Pool {
    fn submit(&'static self, job: Job) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.jobs.push_back(job);
        // Each idle worker takes one queued job; any more need a new thread
        // (up to the bound), or a burst would queue behind one idle worker.
        if st.jobs.len() > st.idle && st.threads < MAX_THREADS.load(Ordering::Relaxed).max(1) {
            st.threads += 1;
            let spawned = std::thread::Builder::new()
                .name("greenhub-blocking".into())
                .spawn(move || self.work_loop());
            if spawned.is_err() {
                // The queued job waits for a running thread; with none at
                // all it would wait forever, so say why.
                st.threads -= 1;
                assert!(st.threads > 0, "greenhub: cannot start a blocking-pool thread");
            }
        }
        if st.idle > 0 {
            // Notified after unlocking: a worker woken while the lock is
            // still held would at once block on it again, a second futex
            // wait and wake on the hot path.
            drop(st);
            self.work.notify_one();
        }
    }

    fn work_loop(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job();
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(st, IDLE_TIMEOUT)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if timeout.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return;
            }
        }
    }
}

/// Sets the most OS threads the blocking pool may run at once (at least 1).
/// Work beyond that queues until a thread is free.
///
/// ```
/// greenhub::blocking::set_max_threads(8);
/// ```
pub fn set_max_threads(n: usize) {
    MAX_THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Runs `f` on the blocking pool and returns its result; only the calling
/// green thread waits (parked), the others keep running. Use it for
/// anything that blocks the OS thread: file I/O, CPU-heavy work, a sync
/// library without non-blocking mode.
///
/// # Panics
/// A panic in `f` is resumed in the caller with its payload.
///
/// # Blocking
/// Parks until `f` returns. If the caller is killed meanwhile it unwinds
/// at once; `f` still runs to the end on its thread and its result is
/// dropped.
///
/// ```
/// use std::time::Duration;
/// let ticker = greenhub::spawn(|| { greenhub::sleep(Duration::from_millis(5)); "hub kept running" });
/// let slow = greenhub::blocking::run(|| { std::thread::sleep(Duration::from_millis(50)); 6 * 7 });
/// assert_eq!(slow, 42);
/// assert_eq!(ticker.join().unwrap(), "hub kept running");
/// ```
#[doc(alias = "threadpool")]
#[doc(alias = "run_in_executor")]
#[doc(alias = "to_thread")]
pub fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    type Slot<T> = Arc<Mutex<Option<Result<T, Box<dyn Any + Send>>>>>;
    let slot: Slot<T> = Arc::new(Mutex::new(None));
    let (wait, waker) = RemoteWait::new().expect("greenhub: cannot set up the hub's inbox for blocking::run");
    let theirs = slot.clone();
    pool().submit(Box::new(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        *theirs.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        waker.wake();
    }));
    loop {
        if let Some(result) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return result.unwrap_or_else(|p| panic::resume_unwind(p));
        }
        assert!(
            !wait.is_done(),
            "greenhub: the blocking pool lost a job without running it"
        );
        if wait.park(None) == crate::hub::Wake::TimedOut {
            // The caller unwinds, so the hub cannot run (parks return at
            // once): wait for the pool's thread on this OS thread instead.
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }
}
