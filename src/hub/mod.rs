//! The hub: one scheduler per OS thread, created on first use.
//!
//! It holds the ready queue, the timers and the poller. Every blocking call
//! in greenhub ends in [`park`]: the caller registers a [`Waker`] wherever it
//! waits, then switches to the hub, which runs whatever is ready and sleeps in
//! the poller when nothing is. Each turn of the loop: fire due timers, poll
//! I/O, run the green threads and callbacks that were ready when the turn
//! began and then those the timers and I/O made ready, and, when nothing is
//! ready, sleep until the earliest timer. A turn runs for at most about
//! 250 us (`TURN_SLICE`): cut short, the rest waits while the next turn
//! looks at timers and I/O again, so a flood of spawns delays a sleeper by
//! about a slice, not by the whole flood.
//!
//! One exception to queue order (Go's `runnext`): the first green thread
//! that a running green thread wakes is kept aside and runs as soon as its
//! waker suspends, ahead of both queues; later wakes of the same run go to
//! the back of `ready` as usual, so one waker's wakes still run in the order
//! it made them. A hand-off (put then get, set then wait) thus goes straight
//! to the partner instead of through the queue and a turn. After every
//! `RUNNEXT_STREAK` green threads taken from the slot, the next one found
//! there goes to the back of `ready` instead, behind everything queued, and
//! waits its turn like any other entry: a pair handing off to each other
//! delays the queue by at most `RUNNEXT_STREAK` hand-offs at a time. Wakes
//! made by the hub itself (timers, I/O, callbacks, other OS threads), and
//! the wake of a joiner when a green thread's function returns (on the hub's
//! stack), always go through the queues.

pub(crate) mod callback;
pub(crate) mod io;
pub(crate) mod remote;
pub(crate) mod timers;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::debug::WaitTag;
pub use crate::greenlet::core::Wake;
use crate::greenlet::core::{self, Inner, Kind, Msg, Next, State, WaitState, WouldBlockForever};
use crate::greenlet::gref::GRef;
use crate::sys::Poller;
use callback::CallSlot;
pub use io::{wait_readable, wait_writable};
use timers::{Action, Timers};

/// Something in the ready queue: a green thread to resume or a callback to
/// run. One tagged pointer (8 bytes, not an enum's 16), since a million
/// spawned green threads are a million entries.
pub(crate) struct Ready(std::ptr::NonNull<()>);

/// Low bit of a `Ready` pointer: set for a callback. Both pointees are
/// aligned to at least 8 (a `GRef` record, an `Rc` allocation), so the bit is free.
const CALL_TAG: usize = 1;

/// A `Ready` taken apart.
enum Item {
    Green(GRef),
    Call(Rc<CallSlot>),
}

impl Ready {
    pub(crate) fn green(g: GRef) -> Ready {
        let p = GRef::into_raw(g) as *mut ();
        // SAFETY: `GRef::into_raw` never returns null.
        Ready(unsafe { std::ptr::NonNull::new_unchecked(p) })
    }

    pub(crate) fn call(c: Rc<CallSlot>) -> Ready {
        let p = Rc::into_raw(c) as *mut ();
        debug_assert_eq!(p as usize & CALL_TAG, 0);
        // SAFETY: `p` is non-null and its low bit is clear (alignment), so
        // setting the bit keeps it non-null.
        Ready(unsafe { std::ptr::NonNull::new_unchecked(p.map_addr(|a| a | CALL_TAG)) })
    }

    fn into_item(self) -> Item {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        if p as usize & CALL_TAG == 0 {
            // SAFETY: untagged pointers come from `GRef::into_raw` in
            // `green`, and each `Ready` is taken apart exactly once.
            Item::Green(unsafe { GRef::from_raw(p as *const Inner) })
        } else {
            // SAFETY: tagged pointers come from `Rc::<CallSlot>::into_raw` in
            // `call`; clearing the tag restores it; taken apart once.
            Item::Call(unsafe { Rc::from_raw(p.map_addr(|a| a & !CALL_TAG) as *const CallSlot) })
        }
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        let me = Ready(self.0);
        drop(me.into_item());
    }
}

pub(crate) struct Hub {
    /// The OS thread's own green thread: the one running `main`.
    root: GRef,
    /// Green threads to resume and callbacks to run, in order, as green
    /// threads and callbacks made them ready.
    ready: RefCell<VecDeque<Ready>>,
    /// What the hub itself made ready while it began a turn: timers fired,
    /// I/O and other OS threads' wakes and calls, in order (moved here from
    /// the back of `ready` by `plan_turn`).
    woken: RefCell<VecDeque<Ready>>,
    /// How many entries this turn still runs from the queue it is on.
    /// Entries queued meanwhile wait for the next turn, so timers and I/O
    /// are looked at between turns however busy the green threads keep the
    /// queues.
    batch: Cell<usize>,
    /// The turn is running `woken` (else `ready`).
    on_woken: Cell<bool>,
    /// How many entries the turn runs from its other queue afterwards.
    then: Cell<usize>,
    /// The last turn was cut short while it ran `ready` (see
    /// `check_slice`): the next runs `woken` first. Otherwise `ready` goes
    /// first, which keeps what was queued before a turn ahead of the timers
    /// it fires.
    cut: Cell<bool>,
    /// Sleeps, park deadlines, timeouts and timed callbacks.
    pub(crate) timers: RefCell<Timers>,
    /// Entries taken since the turn began (see `BURST` and `check_slice`),
    /// and when the turn's clock started.
    taken: Cell<u32>,
    slice_start: Cell<Instant>,
    /// Timers taken out of `timers` as due, fired in order (kept to reuse
    /// its buffer; see `fire_timers`).
    due: RefCell<VecDeque<Action>>,
    /// Created the first time the hub has to wait or an fd is registered.
    poller: OnceCell<Option<Poller>>,
    /// Registered fds and the green threads parked on them.
    io: RefCell<io::IoTable>,
    /// Waits for work finished on other OS threads, and their inbox.
    remotes: RefCell<remote::Remotes>,
    /// `stop()` was called; `run_forever` returns.
    stop_requested: Cell<bool>,
    /// The green thread waiting in `run_forever`.
    stop_waker: RefCell<Option<Waker>>,
    /// Source of `with_timeout` tokens (>= 2; see `THROW_*`).
    pub(crate) next_token: Cell<u32>,
    /// The first green thread the running green thread woke: it runs next,
    /// ahead of the queues (see the module docs and `RUNNEXT_STREAK`).
    runnext: Cell<Option<GRef>>,
    /// Green threads taken from `runnext` since one was last sent to `ready`.
    streak: Cell<u32>,
    /// Turns of the loop so far (for `debug::run_info`).
    turns: Cell<u64>,
    /// When the hub was created: the origin of `PARK_CLOCK`.
    epoch: Instant,
}

thread_local! {
    static HUB: Hub = Hub::new();
    /// Milliseconds from the hub's creation to when it last read the clock
    /// (see `Hub::note_time`). A park copies it into the record, so that
    /// run info can say how long a green thread has waited without a clock
    /// read per park (about 25 ns, against about 60 ns for a whole channel
    /// hand-off).
    static PARK_CLOCK: Cell<u32> = const { Cell::new(0) };
}

/// The hub reads the clock at least every this many turns (see
/// `Hub::note_time`).
const CLOCK_TURNS: u64 = 64;

/// The shortest wait that is spent trimming the stack pool first, and how
/// many stacks one trim may release (about a millisecond's work).
const TRIM_IDLE: Duration = Duration::from_millis(1);
const TRIM_BUDGET: usize = 512;

/// Deadlines closer than this are waited for by looking again, not by
/// sleeping in the poller (see `Hub::turn`).
const TIMER_SPIN: Duration = Duration::from_micros(50);

/// How many green threads run from `runnext` before the next one found
/// there goes to the back of `ready` instead: a pair handing off to each
/// other then waits behind everything queued once every
/// `RUNNEXT_STREAK + 1` hand-offs. Go bounds the same shortcut by a time
/// slice; a count needs no clock. A hand-off through the queue took about
/// 120 instructions more than one through the slot (632 against 510,
/// callgrind), so 1 in 17 adds about 1.5% to a pair's ping-pong.
const RUNNEXT_STREAK: u32 = 16;

/// How long the hub watches for a wake from another OS thread before it
/// sleeps, when one is in flight (see `Hub::spin_for_remote`).
const REMOTE_SPIN: Duration = Duration::from_micros(50);

impl Hub {
    fn new() -> Hub {
        Hub {
            root: {
                crate::stack::install_overflow_handler(core::describe_running);
                crate::debug::on_hub_created();
                let root = GRef::new(Inner::new(Kind::Root, None, 0));
                core::ROOT.set(GRef::as_ptr(&root));
                root
            },
            ready: RefCell::new(VecDeque::new()),
            woken: RefCell::new(VecDeque::new()),
            batch: Cell::new(0),
            on_woken: Cell::new(false),
            then: Cell::new(0),
            cut: Cell::new(false),
            timers: RefCell::new(Timers::default()),
            due: RefCell::new(VecDeque::new()),
            taken: Cell::new(0),
            slice_start: Cell::new(Instant::now()),
            poller: OnceCell::new(),
            io: RefCell::new(io::IoTable::default()),
            remotes: RefCell::new(remote::Remotes::default()),
            stop_requested: Cell::new(false),
            stop_waker: RefCell::new(None),
            next_token: Cell::new(2),
            runnext: Cell::new(None),
            streak: Cell::new(0),
            turns: Cell::new(0),
            epoch: Instant::now(),
        }
    }

    /// Publishes `now` as the hub's park clock (`PARK_CLOCK`). Called
    /// wherever the hub reads the clock anyway (each turn that has timers,
    /// every `SLICE_CHECK` entries of a long batch, after sleeping in the
    /// poller) and every `CLOCK_TURNS` turns, so the stamp a park takes is
    /// older than the park by at most about a turn, or by the run of the
    /// green thread that parks if it computed without switching.
    #[inline]
    fn note_time(&self, now: Instant) {
        PARK_CLOCK.set(ms_between(self.epoch, now));
    }

    pub(crate) fn push(&self, r: Ready) {
        self.ready.borrow_mut().push_back(r);
    }

    /// Schedules `g`, which a wake just made ready: into `runnext` if a
    /// green thread (not the hub) woke it and the slot is free, else to the
    /// back of `ready`.
    #[inline]
    fn push_woken(&self, g: GRef) {
        if !core::current_ptr().is_null() {
            match self.runnext.take() {
                None => return self.runnext.set(Some(g)),
                taken => self.runnext.set(taken),
            }
        }
        self.push(Ready::green(g));
    }

    /// The green thread in `runnext`, unless `RUNNEXT_STREAK` were taken
    /// from there since one was last sent to `ready`: then it goes to the
    /// back of `ready`.
    #[inline]
    fn take_runnext(&self) -> Option<GRef> {
        let g = self.runnext.take()?;
        let streak = self.streak.get();
        if streak < RUNNEXT_STREAK && g.state.get() == State::Scheduled {
            self.streak.set(streak + 1);
            return Some(g);
        }
        self.streak.set(0);
        self.push(Ready::green(g));
        None
    }

    /// The queue the turn is running.
    #[inline]
    fn current(&self) -> &RefCell<VecDeque<Ready>> {
        if self.on_woken.get() {
            &self.woken
        } else {
            &self.ready
        }
    }

    pub(crate) fn token(&self) -> u32 {
        let t = self.next_token.get();
        // Wraps past u32::MAX back to 2: 0 and 1 mean none and kill.
        self.next_token.set(t.checked_add(1).unwrap_or(2));
        t
    }

    /// The next green thread to resume, running callbacks on the way.
    /// `None` when nothing can ever become ready.
    fn next_ready(&self) -> Option<GRef> {
        if let Some(g) = self.take_runnext() {
            return Some(g);
        }
        loop {
            let left = self.batch.get();
            if left == 0 {
                if self.then.get() > 0 {
                    self.switch_queue();
                } else if !self.turn() {
                    return None;
                }
                continue;
            }
            self.batch.set(left - 1);
            // Two calls rather than one on a chosen queue: the choice is
            // then a predicted branch, not a data dependency of every pop.
            let item = if self.on_woken.get() {
                self.pop(&self.woken, left)
            } else {
                self.pop(&self.ready, left)
            };
            match item.map(Ready::into_item) {
                Some(Item::Green(g)) if g.state.get() == State::Scheduled => return Some(g),
                Some(Item::Green(_)) => {}
                Some(Item::Call(c)) => self.run_callback(&c),
                None => self.batch.set(0),
            }
        }
    }

    /// Takes the next entry of `queue`, whose batch has `left` entries.
    #[inline(always)]
    fn pop(&self, queue: &RefCell<VecDeque<Ready>>, left: usize) -> Option<Ready> {
        let mut queue = queue.borrow_mut();
        let item = queue.pop_front();
        // A lone entry runs on warm memory; the clock is for long batches.
        if left > 1 {
            self.batch_step(&queue, left);
        }
        item
    }

    /// Per entry of a batch: prefetching, and in a long batch every
    /// `SLICE_CHECK` entries a look at the clock.
    #[inline]
    fn batch_step(&self, queue: &VecDeque<Ready>, left: usize) {
        let taken = self.taken.get().wrapping_add(1);
        self.taken.set(taken);
        if taken.is_multiple_of(BURST as u32) {
            prefetch_ahead(queue);
        }
        prefetch_next_stack(queue);
        if left > LONG_BATCH && taken.is_multiple_of(SLICE_CHECK) {
            self.check_slice(taken);
        }
    }

    /// Goes on to the turn's other queue.
    #[cold]
    fn switch_queue(&self) {
        self.on_woken.set(!self.on_woken.get());
        self.batch.set(self.then.replace(0));
        // The new queue's slice starts now (its clock at its 16th entry).
        self.taken.set(0);
        if self.batch.get() > 1 {
            prefetch_batch_start(&self.current().borrow());
        }
    }

    /// Ends the turn early once it has run the green threads' queue
    /// (`ready`) for `TURN_SLICE`, leaving the rest of it at the front; the
    /// next turn then runs `woken` first, so that a flood of green threads
    /// (spawns, yields) does not hold up timers and I/O. What the hub made
    /// ready (`woken`) is never cut: it was all due when the turn began, and
    /// cutting it measured 10% off the echo server with 1,000 connections
    /// (more turns, each polling epoll for fewer events); the green threads'
    /// queue, run first in the next turn, waits for one such batch at most.
    /// Called every `SLICE_CHECK` entries taken; the clock starts at the
    /// first call.
    #[cold]
    fn check_slice(&self, taken: u32) {
        let now = Instant::now();
        self.note_time(now);
        if taken == SLICE_CHECK {
            self.slice_start.set(now);
        } else if !self.on_woken.get()
            && now.duration_since(self.slice_start.get()) >= TURN_SLICE
            && (self.batch.get() > 0 || self.then.get() > 0)
        {
            self.batch.set(0);
            self.then.set(0);
            self.cut.set(true);
        }
    }

    /// Begins a turn: fires due timers, polls I/O (without waiting if
    /// something is ready, so a busy ready queue never starves I/O), and
    /// waits if nothing is ready. Returns false when nothing is ready and
    /// nothing ever could be.
    ///
    /// A turn runs what was queued before it, then what it made ready
    /// (timers, I/O, other threads' calls), each in order. When a turn runs
    /// out of its slice (`TURN_SLICE`) while it runs the green threads'
    /// queue, the next runs what the hub made ready first, ahead of the rest
    /// of that queue: a flood of spawns or yields then delays a sleeper by
    /// about a slice, not by the whole flood, and sleepers still wake in
    /// deadline order (see `check_slice`). gevent does the same: it runs its
    /// callbacks for at most its switch interval before it looks at timers
    /// and I/O again.
    fn turn(&self) -> bool {
        let turns = self.turns.get() + 1;
        self.turns.set(turns);
        if turns.is_multiple_of(CLOCK_TURNS) {
            self.note_time(Instant::now());
        }
        let has_timers = !self.timers.borrow().is_empty();
        let io_waiting = self.io.borrow().waiting > 0 || self.remotes.borrow().outstanding();
        // With no timer and nothing to poll, beginning the turn makes
        // nothing ready: skip counting what it adds.
        let quiet = !has_timers && !io_waiting;
        let before = if quiet { 0 } else { self.ready.borrow().len() };
        if !self.begin_turn(has_timers, io_waiting) {
            return false;
        }
        self.taken.set(0);
        let ready = self.ready.borrow();
        let before = if quiet { ready.len() } else { before };
        if ready.len() == before && !self.cut.get() {
            // The common case: nothing came due, nothing left over.
            self.on_woken.set(false);
            self.batch.set(before);
            if before > 1 {
                prefetch_batch_start(&ready);
            }
            return true;
        }
        drop(ready);
        self.plan_turn(before);
        true
    }

    /// Moves what `begin_turn` made ready to `woken` and chooses the order
    /// of the two queues (see `turn`).
    #[cold]
    fn plan_turn(&self, before: usize) {
        let (ready, woken) = {
            let (mut ready, mut woken) = (self.ready.borrow_mut(), self.woken.borrow_mut());
            if ready.len() > before {
                woken.extend(ready.drain(before..));
            }
            (ready.len(), woken.len())
        };
        let woken_first = self.cut.replace(false) || ready == 0;
        self.on_woken.set(woken_first);
        let (first, then) = if woken_first {
            (woken, ready)
        } else {
            (ready, woken)
        };
        self.batch.set(first);
        self.then.set(then);
        if first > 1 {
            prefetch_batch_start(&self.current().borrow());
        }
    }

    fn nothing_ready(&self) -> bool {
        self.ready.borrow().is_empty() && self.woken.borrow().is_empty()
    }

    /// Fires timers and polls (see `turn`).
    #[inline]
    fn begin_turn(&self, has_timers: bool, io_waiting: bool) -> bool {
        if has_timers {
            self.fire_timers(Instant::now());
        }
        if self.nothing_ready() {
            return self.idle(has_timers, io_waiting);
        }
        if io_waiting {
            self.wait(Some(Duration::ZERO));
        }
        true
    }

    /// Nothing is ready: waits for the earliest timer or I/O, and fires
    /// what came due. False when nothing ever could be ready.
    #[cold]
    fn idle(&self, has_timers: bool, io_waiting: bool) -> bool {
        let next = self.timers.borrow().next_deadline();
        let timeout = next.map(|d| d.saturating_duration_since(Instant::now()));
        if timeout.is_none() && !io_waiting {
            return false;
        }
        match timeout {
            // A deadline this close is met better by looking again than by
            // sleeping: a sleep that short costs a system call and ends late
            // by the kernel's timer slack (50 us by default).
            Some(t) if t < TIMER_SPIN => {
                if io_waiting {
                    self.wait(Some(Duration::ZERO));
                }
                std::hint::spin_loop();
            }
            _ => self.wait(timeout),
        }
        if has_timers {
            self.fire_timers(Instant::now());
        } else {
            self.note_time(Instant::now());
        }
        true
    }

    /// Fires every timer due at `now`, in deadline order. They are taken
    /// out `BURST`s at a time so that the records of the green threads they
    /// wake can be prefetched a burst ahead (see `BURST`).
    fn fire_timers(&self, now: Instant) {
        self.note_time(now);
        loop {
            {
                let mut due = self.due.borrow_mut();
                self.timers.borrow_mut().pop_due_into(now, &mut due, 8 * BURST);
                if due.is_empty() {
                    return;
                }
                prefetch_due(&due, 0..2 * BURST);
            }
            for fired in 1.. {
                let action = {
                    let mut due = self.due.borrow_mut();
                    let action = due.pop_front();
                    if fired % BURST == 0 {
                        prefetch_due(&due, BURST..2 * BURST);
                    }
                    action
                };
                match action {
                    None => break,
                    Some(Action::Wake(w)) => {
                        if w.wake_with(Wake::TimedOut) {
                            w.g.timer_fired.set(true);
                        }
                    }
                    Some(Action::Call(c)) => self.push(Ready::call(c)),
                    Some(Action::Throw(g, token)) => deliver_throw(&g, token),
                }
            }
        }
    }

    /// Sleeps in the poller until I/O or `timeout`, waking the green
    /// threads parked on ready fds. Without a poller (the OS refused one,
    /// so no fd can be registered either) it sleeps the OS thread.
    fn wait(&self, mut timeout: Option<Duration>) {
        // Idle time pays for releasing the memory of stacks a burst left
        // behind, a slice at a time; with more left, come back soon.
        if timeout.is_none_or(|t| t >= TRIM_IDLE) && crate::stack::trim(TRIM_BUDGET) {
            timeout = Some(Duration::ZERO);
        }
        // A wake from another OS thread is due soon: watch for it briefly
        // before sleeping, since an idle CPU takes tens of microseconds to
        // wake (measured here: a remote round trip of ~60 us without this).
        if timeout.is_none_or(|t| !t.is_zero()) && self.spin_for_remote(REMOTE_SPIN) {
            timeout = Some(Duration::ZERO);
        }
        let sleeps = timeout.is_none_or(|t| !t.is_zero());
        if sleeps {
            crate::debug::hub_idle(true);
        }
        match self.poller() {
            Ok(p) => p.wait(timeout, |ev| {
                if ev.token == remote::INBOX_TOKEN {
                    self.drain_inbox();
                } else {
                    self.io.borrow_mut().dispatch(ev);
                }
            }),
            Err(_) => std::thread::sleep(timeout.unwrap_or(Duration::from_millis(10))),
        }
        if sleeps {
            crate::debug::hub_idle(false);
        }
    }

    fn run_callback(&self, c: &CallSlot) {
        if let Some(f) = c.take() {
            crate::debug::in_callback();
            let _in_callback = InCallback::enter();
            // A panicking callback must not stop the hub; the panic hook has
            // already reported it, as gevent prints a failed callback.
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(f)) {
                core::drop_payload(p);
            }
        }
    }
}

/// Marks the running code as a hub callback until dropped, however the
/// callback ends (a guard: a panic escaping it must not leave the flag set,
/// or every later blocking call would be refused).
pub(crate) struct InCallback {
    was: bool,
}

impl InCallback {
    pub(crate) fn enter() -> InCallback {
        InCallback {
            was: IN_CALLBACK.replace(true),
        }
    }
}

impl Drop for InCallback {
    fn drop(&mut self) {
        IN_CALLBACK.set(self.was);
    }
}

/// Whether a hub callback is running (it must not block).
#[cfg(feature = "monkey")]
#[inline]
pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.get()
}

/// Panics unless the running code may block (not inside a hub callback).
#[inline]
pub(crate) fn assert_can_block() {
    if IN_CALLBACK.get() {
        callback_blocked();
    }
}

#[cold]
fn callback_blocked() -> ! {
    panic!(
        "greenhub: a hub callback tried to block (park, sleep, join or switch); \
             callbacks run on the hub itself and must return promptly: \
             spawn a green thread for blocking work"
    )
}

/// Prefetching is done in bursts: every `BURST` entries taken from a
/// queue, the next `BURST` entries beyond those already warmed are
/// prefetched together. A million green threads woken in a row (a million
/// sleepers) each touch a cold record and a cold stack page, and a prefetch
/// that misses the TLB holds up the instructions behind it until its page
/// walk ends (about 400 ns for a stack page on this VM, where a wake has a
/// budget of 1 us). Issued one at a time, the walks follow each other;
/// issued together, they overlap. Measured (`GREENHUB_BENCH_SPREAD_MS=1
/// cargo bench --bench timers -- gate`, a million wakes in random stack
/// order): about 850 ns a wake prefetching one entry ahead, 750 with bursts
/// of 8, 550 with bursts of 32, no better with 64.
const BURST: usize = 32;

/// A batch runs for at most about this long before the hub looks at timers
/// and I/O again (see `Hub::turn`); the clock is read every `SLICE_CHECK`
/// entries, so batches shorter than that never read it.
const TURN_SLICE: Duration = Duration::from_micros(250);
const SLICE_CHECK: u32 = 16;

/// Batches of at most this many entries (a few green threads taking turns)
/// are not timed: the bookkeeping cost them 5-10% (yield_now x2, Event and
/// Channel ping-pong), and they end within a slice anyway.
const LONG_BATCH: usize = SLICE_CHECK as usize;

/// The bytes of a parked green thread's stack that resuming it touches,
/// prefetched: `STACK_LINES` cache lines from `STACK_BELOW` under the stack
/// pointer it recorded as it suspended (the switch saves registers below
/// it, and the frames of a sleep reach about 900 bytes above it).
const STACK_BELOW: usize = 256;
const STACK_LINES: usize = 16;

/// The record of a green-thread entry, `None` for a callback.
fn record_of(r: &Ready) -> Option<&Inner> {
    if r.0.as_ptr() as usize & CALL_TAG == 0 {
        // SAFETY: an untagged entry is a live record (`Ready::green`),
        // kept alive by the queue's reference.
        Some(unsafe { &*(r.0.as_ptr() as *const Inner) })
    } else {
        None
    }
}

/// The entries of `queue` in `range`, clamped to its length.
fn entries<T>(queue: &VecDeque<T>, range: std::ops::Range<usize>) -> impl Iterator<Item = &T> {
    let len = queue.len();
    queue.range(range.start.min(len)..range.end.min(len))
}

/// Prefetches the records (or callback slots) of the entries in `range`.
fn prefetch_records(ready: &VecDeque<Ready>, range: std::ops::Range<usize>) {
    for r in entries(ready, range) {
        crate::sys::prefetch(r.0.as_ptr() as usize);
    }
}

/// Prefetches what the due timers in `range` will touch.
fn prefetch_due(due: &VecDeque<Action>, range: std::ops::Range<usize>) {
    for a in entries(due, range) {
        crate::sys::prefetch(a.prefetch_addr());
    }
}

/// Prefetches one line of the stack of each green thread in `range`: enough
/// to start its page walk (see `BURST`).
fn prefetch_stacks(ready: &VecDeque<Ready>, range: std::ops::Range<usize>) {
    for sp in entries(ready, range).filter_map(record_of).map(|g| g.sp.get()) {
        if sp != 0 {
            crate::sys::prefetch(sp.wrapping_sub(STACK_BELOW));
        }
    }
}

/// At the start of a batch: records three bursts ahead, stacks two.
fn prefetch_batch_start(ready: &VecDeque<Ready>) {
    prefetch_records(ready, 0..3 * BURST);
    prefetch_stacks(ready, 0..2 * BURST);
}

/// Every `BURST` entries taken: the next burst's records and stack pages
/// (read from records the previous burst warmed).
fn prefetch_ahead(ready: &VecDeque<Ready>) {
    prefetch_stacks(ready, BURST..2 * BURST);
    prefetch_records(ready, 2 * BURST..3 * BURST);
}

/// The rest of the stack lines of the entry about to run, whose page the
/// burst brought into the TLB.
fn prefetch_next_stack(ready: &VecDeque<Ready>) {
    if let Some(sp) = ready.front().and_then(record_of).map(|g| g.sp.get()) {
        if sp != 0 {
            for line in 1..STACK_LINES {
                crate::sys::prefetch(sp.wrapping_sub(STACK_BELOW) + line * 64);
            }
        }
    }
}

/// The hub's figures, for `debug::run_info`.
pub(crate) struct Figures {
    pub(crate) turns: u64,
    pub(crate) ready: usize,
    pub(crate) timers: usize,
    pub(crate) fds: usize,
    pub(crate) fds_waited: usize,
}

impl Hub {
    /// Milliseconds since the hub was created, as park stamps count them.
    pub(crate) fn clock_ms(&self) -> u32 {
        ms_between(self.epoch, Instant::now())
    }

    pub(crate) fn figures(&self) -> Figures {
        let io = self.io.borrow();
        Figures {
            turns: self.turns.get(),
            ready: self.ready.borrow().len() + self.woken.borrow().len(),
            timers: self.timers.borrow().len(),
            fds: io.registered(),
            fds_waited: io.waiting,
        }
    }
}

/// Milliseconds from `from` to `to`, wrapping at `u32::MAX` (49 days): park
/// stamps are compared with `wrapping_sub`.
#[inline]
fn ms_between(from: Instant, to: Instant) -> u32 {
    to.saturating_duration_since(from).as_millis() as u32
}

impl Drop for Hub {
    fn drop(&mut self) {
        core::ROOT.set(std::ptr::null());
        // The OS thread exits: what never ran goes now (closures of green
        // threads never started, callbacks, timers). Their destructors are
        // user code running after the hub is gone, where a greenhub call
        // panics (see `with`); each is dropped on its own, the panic
        // contained, so the thread exits instead of aborting with "thread
        // local panicked on drop".
        let queued = std::mem::take(self.ready.get_mut())
            .into_iter()
            .chain(std::mem::take(self.woken.get_mut()));
        queued.for_each(core::drop_contained);
        std::mem::take(self.due.get_mut())
            .into_iter()
            .for_each(core::drop_contained);
        std::mem::take(self.timers.get_mut())
            .into_actions()
            .for_each(core::drop_contained);
        // Green threads parked before they started (`spawn_when_readable`)
        // are held by their fd's place alone.
        self.io
            .get_mut()
            .take_wakers()
            .into_iter()
            .for_each(core::drop_contained);
    }
}

thread_local! {
    /// A callback is running on the hub's stack: blocking there is an error.
    /// Outside `Hub` so the check on every blocking call is one plain read.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("ready", &self.ready.borrow().len())
            .field("woken", &self.woken.borrow().len())
            .finish()
    }
}

impl Hub {
    /// After `fork`, in the child (see `crate::reinit_after_fork`): a fresh
    /// epoll instance with every registered fd added again, and the inbox
    /// renewed.
    fn reinit_after_fork(&self) -> std::io::Result<()> {
        let Some(Some(poller)) = self.poller.get() else {
            return Ok(());
        };
        poller.renew()?;
        for (fd, token) in self.io.borrow().registered_fds() {
            poller.add(fd, token)?;
        }
        self.reinit_remotes_after_fork(poller)
    }
}

/// Gives the child of a `fork` a working greenhub (gevent's
/// `gevent.reinit()`): call it in the child, on the thread that forked,
/// before any other greenhub call.
///
/// A child inherits its parent's memory but only the forking thread, so
/// without this it shares the hub's epoll instance and eventfd with the
/// parent (each would see the other's events, and lose its own) and the
/// blocking pool's bookkeeping counts threads that do not exist in it, so
/// `blocking::run` never runs its job. This gives the hub a fresh epoll
/// instance (the sockets it had registered are added again, so they keep
/// working in the child) and a fresh inbox eventfd, and the blocking pool
/// a fresh, empty state (its threads start on demand again).
///
/// What cannot carry over: work in flight on the parent's other threads
/// (a `blocking::run` parked at the fork panics in the child, saying its
/// job was lost), other OS threads' hubs and their `HubHandle`s, and
/// signal subscriptions (subscribe again in the child). Green threads of
/// this hub carry over, parked where they were.
///
/// # Errors
/// If a fresh epoll instance or eventfd cannot be made, or an fd cannot be
/// added again. On the kqueue poller (macOS, FreeBSD, and Linux with the
/// `kqueue-on-linux` feature) it is not supported yet: the blocking pool is
/// reset, then `ErrorKind::Unsupported` says so (a BSD child inherits no
/// kqueue at all, and libkqueue's own threads do not survive a fork), so
/// the child must not use the hub's I/O or timers.
///
/// ```no_run
/// // SAFETY: the child only calls async-signal-safe-enough greenhub code
/// // and exits; nothing else runs in it.
/// let pid = unsafe { libc::fork() };
/// if pid == 0 {
///     greenhub::reinit_after_fork().unwrap();
///     assert_eq!(greenhub::blocking::run(|| 2), 2);
///     std::process::exit(0);
/// }
/// ```
#[doc(alias = "reinit")]
pub fn reinit_after_fork() -> std::io::Result<()> {
    crate::blocking::reinit_after_fork();
    with(Hub::reinit_after_fork)
}

/// Runs `f` with this OS thread's hub.
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    match HUB.try_with(f) {
        Ok(r) => r,
        Err(_) => hub_gone(),
    }
}

/// A greenhub call from a destructor run while the OS thread exits, after
/// its hub is gone (see `Hub::drop`): fails with a panic that says so.
#[cold]
fn hub_gone() -> ! {
    panic!(
        "greenhub: this OS thread is exiting and its hub is gone: greenhub calls \
         (spawn, sleep, I/O...) cannot work in destructors run at thread exit"
    )
}

/// This OS thread's root green thread.
pub(crate) fn root() -> GRef {
    HUB.with(|h| h.root.clone())
}

/// Runs `f` with the hub, unless this OS thread is exiting and the hub is
/// gone already (for drops, which must not panic then).
pub(crate) fn try_with<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    HUB.try_with(f).ok()
}

/// The root, or `None` once the hub's thread-local is gone (thread exit).
pub(crate) fn try_root() -> Option<GRef> {
    HUB.try_with(|h| h.root.clone()).ok()
}

/// Whether blocking is possible now: not in a callback, not at thread exit.
pub(crate) fn try_can_block() -> bool {
    HUB.try_with(|_| !IN_CALLBACK.get()).unwrap_or(false)
}

pub(crate) fn next_ready() -> Option<GRef> {
    HUB.with(|h| h.next_ready())
}

/// Makes a pending throw take effect: a target parked on the hub, or paused
/// in an explicit switch, is scheduled so that it unwinds on the next turn.
pub(crate) fn deliver_throw(g: &GRef, code: u32) {
    if g.is_dead() {
        return;
    }
    g.set_throw(code);
    match g.state.get() {
        State::Parked => {
            Waker {
                g: g.clone(),
                seq: g.seq.get(),
            }
            .wake_with(Wake::TimedOut);
        }
        State::Suspended if g.is_started() => {
            g.state.set(State::Scheduled);
            HUB.with(|h| h.push(Ready::green(g.clone())));
        }
        _ => {}
    }
}

/// Wakes one park of one green thread, at most once.
///
/// A `Waker` is handed to the `register` closure of [`park`]; store it
/// wherever the event will happen, and call [`wake`](Waker::wake) when it
/// does. Wakes after the park has ended (it timed out, or another waker of
/// the same park fired first) are ignored, so a stale waker left in a list is
/// harmless.
///
/// ```
/// use greenhub::hub::{park, Wake, Waker};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// // A one-shot signal built on park: the waiter leaves its waker, the
/// // setter wakes it.
/// let waiting: Rc<RefCell<Option<Waker>>> = Rc::default();
/// let w = waiting.clone();
/// let setter = greenhub::spawn(move || w.borrow_mut().take().map(|w| w.wake()));
/// let why = park(None, |waker| *waiting.borrow_mut() = Some(waker.clone()));
/// assert_eq!(why, Wake::Ready);
/// assert_eq!(setter.join().unwrap(), Some(true));
/// ```
#[derive(Clone)]
pub struct Waker {
    g: GRef,
    seq: u32,
}

impl Waker {
    /// A waker for `g`'s current park.
    pub(crate) fn new(g: GRef) -> Waker {
        let seq = g.seq.get();
        Waker { g, seq }
    }

    /// Ends the park this waker belongs to with [`Wake::Ready`]. Returns
    /// whether it did (false if the park already ended).
    ///
    /// ```
    /// use greenhub::hub::{park, Wake};
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let slot = Rc::new(RefCell::new(None));
    /// let s = slot.clone();
    /// greenhub::call_soon(move || {
    ///     let w: greenhub::hub::Waker = s.borrow_mut().take().unwrap();
    ///     assert!(w.wake());
    ///     assert!(!w.wake(), "a wake is delivered once");
    /// });
    /// let why = park(None, |w| *slot.borrow_mut() = Some(w.clone()));
    /// assert_eq!(why, Wake::Ready);
    /// ```
    pub fn wake(&self) -> bool {
        self.wake_with(Wake::Ready)
    }

    /// Whether the park this waker belongs to is still waiting for a wake:
    /// false once it was woken, timed out or ended. Wait lists drop such
    /// stale wakers (`list.retain(Waker::is_waiting)`) so that a long-lived
    /// event waited on in a loop (for instance with a timeout) does not grow.
    ///
    /// ```
    /// use greenhub::hub::{park, Waker};
    /// use std::cell::RefCell;
    /// use std::time::{Duration, Instant};
    ///
    /// let kept: RefCell<Option<Waker>> = RefCell::new(None);
    /// park(Some(Instant::now() + Duration::from_millis(1)), |w| {
    ///     assert!(w.is_waiting());
    ///     *kept.borrow_mut() = Some(w.clone());
    /// });
    /// assert!(!kept.borrow().as_ref().unwrap().is_waiting()); // timed out: stale
    /// ```
    pub fn is_waiting(&self) -> bool {
        self.g.seq.get() == self.seq && matches!(self.g.wait.get(), WaitState::Armed | WaitState::Parked)
    }

    /// The green thread this waker wakes.
    pub(crate) fn target(&self) -> &GRef {
        &self.g
    }

    /// The id of the green thread this waker wakes.
    ///
    /// ```
    /// let me = greenhub::Greenlet::current().id();
    /// greenhub::hub::park(Some(greenhub::now()), |w| assert_eq!(w.green_thread_id(), me));
    /// ```
    pub fn green_thread_id(&self) -> u64 {
        self.g.id
    }

    pub(crate) fn wake_with(&self, reason: Wake) -> bool {
        let g = &self.g;
        if g.seq.get() != self.seq {
            return false;
        }
        match g.wait.get() {
            WaitState::Armed => {
                g.wait.set(WaitState::Woken);
                g.reason.set(reason);
                true
            }
            WaitState::Parked => {
                g.wait.set(WaitState::Woken);
                g.reason.set(reason);
                g.state.set(State::Scheduled);
                HUB.try_with(|h| h.push_woken(g.clone())).is_ok()
            }
            WaitState::Idle | WaitState::Woken => false,
        }
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("green_thread", &self.g.id)
            .field("seq", &self.seq)
            .finish()
    }
}

/// Parks the current green thread until a [`Waker`] wakes it or `deadline`
/// passes: the one primitive every blocking call in greenhub waits through.
///
/// `register` receives the waker for this park before the switch; store it
/// where the awaited event will find it. A wake delivered inside `register`
/// makes `park` return at once without switching. Wakes carry no data: the
/// caller re-checks its condition after waking, so nothing is lost if the
/// park is cut short.
///
/// While the caller unwinds (a destructor running during a panic, kill or
/// timeout), `park` registers and returns at once, `Ready` if `register`
/// woke it and `TimedOut` otherwise, without switching: see the crate docs'
/// rules for destructors.
///
/// # Blocking
/// Switches to the hub until woken (not while the caller unwinds).
///
/// # Panics
/// - A kill (or an expired [`with_timeout`](crate::with_timeout)) aimed at
///   this green thread unwinds from here, running destructors on the way, so
///   registrations held by guards are released.
/// - Called from inside another park's `register` closure (that park could
///   never be woken).
/// - On the root green thread, when nothing else can ever run (no ready green
///   thread, no timer): "this operation would block forever", as gevent says.
/// - Inside a hub callback (callbacks must not block).
///
/// ```
/// use greenhub::hub::{park, Wake};
/// use std::time::{Duration, Instant};
///
/// let why = park(Some(Instant::now() + Duration::from_millis(5)), |_waker| {});
/// assert_eq!(why, Wake::TimedOut);
/// ```
#[doc(alias = "wait")]
#[doc(alias = "LoopExit")]
pub fn park(deadline: Option<Instant>, register: impl FnOnce(&Waker)) -> Wake {
    park_as(WaitTag::PARK, deadline, register)
}

/// [`park`], saying what the park waits on (shown by `debug::run_info`).
#[inline]
pub(crate) fn park_as(tag: WaitTag, deadline: Option<Instant>, register: impl FnOnce(&Waker)) -> Wake {
    let since = PARK_CLOCK.get();
    core::with_current(|g| {
        g.wait_tag.set(tag.0);
        g.parked_at.set(since);
    });
    match park_inner(deadline, register) {
        Ok(w) => w,
        Err(WouldBlockForever) => panic!(
            "greenhub: this operation would block forever: the main green thread is waiting, \
             and no other green thread, timer or I/O can ever wake it"
        ),
    }
}

/// Parks `g`, a green thread not started yet, as waiting on `tag`: the
/// wake of a waker made for it now (`Waker::new`) schedules its start,
/// which takes its stack only then (`spawn_later`,
/// `spawn_when_readable`). A kill before that ends it without a stack.
pub(crate) fn park_unstarted(g: &Inner, tag: WaitTag) {
    debug_assert!(!g.is_started());
    g.wait_tag.set(tag.0);
    g.parked_at.set(PARK_CLOCK.get());
    g.state.set(State::Parked);
    g.wait.set(WaitState::Parked);
}

pub(crate) fn park_inner(
    deadline: Option<Instant>,
    register: impl FnOnce(&Waker),
) -> Result<Wake, WouldBlockForever> {
    if unwinding() {
        return Ok(park_unwinding(register));
    }
    assert_can_block();
    let cur = core::current();
    cur.check_throw();
    if cur.wait.get() != WaitState::Idle {
        nested_park();
    }
    let waker = Waker {
        g: cur.clone(),
        seq: cur.seq.get(),
    };
    register_armed(&cur, &waker, register);
    if cur.wait.get() == WaitState::Woken {
        end_wait(&cur);
        return Ok(cur.reason.get());
    }
    let timer = deadline.map(|d| HUB.with(|h| h.timers.borrow_mut().insert(d, Action::Wake(waker))));
    cur.wait.set(WaitState::Parked);
    cur.state.set(State::Parked);
    cur.timer_fired.set(false);
    let msg = core::leave(Next::Schedule);
    end_wait(&cur);
    if let Some(key) = timer.filter(|_| !cur.timer_fired.replace(false)) {
        HUB.with(|h| h.timers.borrow_mut().remove(key));
    }
    match msg {
        Err(e) => {
            cur.state.set(State::Running);
            Err(e)
        }
        Ok(msg) => {
            take_wake(msg);
            cur.check_throw();
            Ok(cur.reason.get())
        }
    }
}

fn end_wait(g: &Inner) {
    g.wait.set(WaitState::Idle);
    g.seq.set(g.seq.get().wrapping_add(1));
}

/// Whether the running code is unwinding (a panic, kill or timeout is
/// running destructors): `std::thread::panicking()`, one atomic load while
/// no thread of the process panics. See the crate docs' rules for
/// destructors: an unwinding green thread never switches away.
#[inline]
pub(crate) fn unwinding() -> bool {
    std::thread::panicking()
}

/// Arms `cur`'s park and runs `register`; if `register` panics, the park
/// is disarmed (its waker goes stale), so the green thread can park again.
#[inline]
fn register_armed(cur: &Inner, waker: &Waker, register: impl FnOnce(&Waker)) {
    /// Disarms the park if `register` unwinds.
    struct Disarm<'a>(&'a Inner);
    impl Drop for Disarm<'_> {
        fn drop(&mut self) {
            end_wait(self.0);
        }
    }
    cur.wait.set(WaitState::Armed);
    let disarm = Disarm(cur);
    register(waker);
    std::mem::forget(disarm);
}

/// A park made while the green thread unwinds (a destructor that blocks
/// during a panic, kill or timeout): it never switches away, since a second
/// throw could reach it there (which aborts the process: Rust cannot
/// unwind out of a destructor that is already unwinding) and every other
/// green thread would run with std's per-OS-thread panic count raised
/// (`std::thread::panicking()` true, std mutexes poisoned by guards dropped
/// there). It registers and returns at once as if its deadline had passed:
/// `Ready` if `register` woke it, else `TimedOut`.
#[cold]
fn park_unwinding(register: impl FnOnce(&Waker)) -> Wake {
    let cur = core::current();
    // In a callback (the root's own park is in progress) or inside another
    // park's `register`: nothing can be armed; time out without registering.
    if IN_CALLBACK.get() || cur.wait.get() != WaitState::Idle {
        return Wake::TimedOut;
    }
    let waker = Waker {
        g: cur.clone(),
        seq: cur.seq.get(),
    };
    register_armed(&cur, &waker, register);
    let why = if cur.wait.get() == WaitState::Woken {
        cur.reason.get()
    } else {
        Wake::TimedOut
    };
    end_wait(&cur);
    why
}

/// A wait with no deadline and no way to report giving up (a lock's
/// `lock`) found the condition unmet while its caller unwinds: it cannot
/// wait (see `park_unwinding`), nor return. Says so; as a panic in a
/// destructor during unwinding, this aborts the process, as a deadlock
/// there would have hung it.
#[cold]
pub(crate) fn cannot_wait_unwinding(what: &str) -> ! {
    panic!(
        "greenhub: {what} would wait for another green thread, but the caller is unwinding \
         (a destructor running during a panic, kill or timeout), when green threads never \
         switch away; use a try_ or _timeout variant in destructors"
    )
}

#[cold]
fn nested_park() -> ! {
    panic!(
        "greenhub: park called inside another park's `register` closure (a blocking call \
         while registering a waker); the outer park could never be woken: register only \
         stores the waker, block before or after the park"
    )
}

/// Accepts the message a parked or yielding green thread is resumed with.
fn take_wake(msg: Msg) {
    match msg {
        Msg::Wake => {}
        Msg::Throw(p) => panic::resume_unwind(p),
        Msg::Value(v) => panic!(
            "greenhub: invalid switch into a green thread parked on the hub \
             (it was sent a value of type {})",
            (*v).type_name()
        ),
    }
}

/// Lets every other ready green thread and callback run, then continues:
/// gevent's `sleep(0)`. The hub also looks at timers (and I/O) before this
/// green thread runs again, so a loop of `yield_now` starves nothing.
///
/// # Blocking
/// Switches to the hub once.
///
/// ```
/// let h = greenhub::spawn(|| 7);
/// greenhub::yield_now();
/// assert!(h.is_finished());
/// ```
#[doc(alias = "sleep(0)")]
#[doc(alias = "idle")]
pub fn yield_now() {
    if unwinding() {
        return;
    }
    assert_can_block();
    let cur = core::current();
    cur.check_throw();
    cur.state.set(State::Scheduled);
    HUB.with(|h| h.push(Ready::green(cur.clone())));
    match core::leave(Next::Schedule) {
        Ok(msg) => take_wake(msg),
        Err(WouldBlockForever) => unreachable!("greenhub: the yielding green thread was ready"),
    }
    cur.check_throw();
}

/// Parks the current green thread for `duration`; other green threads run
/// meanwhile. `sleep(Duration::ZERO)` is [`yield_now`].
///
/// # Blocking
/// Parks until the time has passed.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// greenhub::sleep(Duration::from_millis(20));
/// assert!(start.elapsed() >= Duration::from_millis(20));
/// ```
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        return yield_now();
    }
    match deadline_after(duration) {
        Some(deadline) => sleep_until(deadline),
        // Past the clock's range: never (only a kill, or an unwinding
        // caller's at-once return, ends it).
        None => while park(None, |_| {}) != Wake::TimedOut {},
    }
}

/// The deadline `timeout` from now; `None` ("never") when it lies past
/// what `Instant` can hold (`Duration::MAX` and the like), where std's
/// `Instant + Duration` would panic. Every public timeout goes through
/// this, once (deadlines inside).
#[inline]
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Parks the current green thread until `deadline`.
///
/// # Blocking
/// Parks until the deadline has passed.
///
/// ```
/// use std::time::Duration;
/// let wake_at = greenhub::now() + Duration::from_millis(10);
/// greenhub::sleep_until(wake_at);
/// assert!(greenhub::now() >= wake_at);
/// ```
pub fn sleep_until(deadline: Instant) {
    while park_as(WaitTag::SLEEP, Some(deadline), |_| {}) != Wake::TimedOut {}
}

/// The hub's clock (monotonic), the time base of `call_at` and deadlines
/// (asyncio's `loop.time()`).
///
/// ```
/// let t0 = greenhub::now();
/// greenhub::sleep(std::time::Duration::from_millis(1));
/// assert!(greenhub::now() > t0);
/// ```
#[doc(alias = "time")]
pub fn now() -> Instant {
    Instant::now()
}

/// Runs the hub until [`stop`] is called, for programs that only serve:
/// the current green thread parks and everything else runs. Returns early
/// if nothing is left that could ever call `stop` (no green thread can run
/// and no timer is pending), as gevent's `wait()` does.
///
/// # Blocking
/// Parks until `stop()`.
///
/// ```
/// use std::time::Duration;
/// greenhub::call_later(Duration::from_millis(10), greenhub::stop);
/// greenhub::run_forever(); // returns after ~10 ms
/// ```
pub fn run_forever() {
    if HUB.with(|h| h.stop_requested.replace(false)) {
        return yield_now();
    }
    core::with_current(|g| g.wait_tag.set(WaitTag::RUN_FOREVER.0));
    let waited = park_inner(None, |w| {
        HUB.with(|h| *h.stop_waker.borrow_mut() = Some(w.clone()))
    });
    HUB.with(|h| {
        h.stop_waker.borrow_mut().take();
        h.stop_requested.set(false);
    });
    let _ = waited;
}

/// Makes [`run_forever`] return. Called before `run_forever`, it makes the
/// next `run_forever` return after one pass of the loop (asyncio's rule).
///
/// ```
/// let worker = greenhub::spawn(|| {
///     greenhub::sleep(std::time::Duration::from_millis(5));
///     greenhub::stop(); // from a green thread: run_forever below returns
/// });
/// greenhub::run_forever();
/// assert!(worker.is_finished());
/// ```
pub fn stop() {
    let waker = HUB.with(|h| {
        h.stop_requested.set(true);
        h.stop_waker.borrow_mut().take()
    });
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The park sequence wraps: it used to be `+ 1`, which panics in debug
    /// builds after 2^32 parks of one green thread.
    #[test]
    fn park_sequence_wraps() {
        std::thread::spawn(|| {
            let cur = core::current();
            cur.seq.set(u32::MAX);
            let why = park(Some(Instant::now() + Duration::from_millis(1)), |_| {});
            assert_eq!(why, Wake::TimedOut);
            assert_eq!(cur.seq.get(), 0);
            // Wakers of the new sequence still work.
            let slot = std::rc::Rc::new(RefCell::new(None::<Waker>));
            let s = slot.clone();
            crate::call_soon(move || {
                s.borrow_mut().take().unwrap().wake();
            });
            assert_eq!(park(None, |w| *slot.borrow_mut() = Some(w.clone())), Wake::Ready);
        })
        .join()
        .unwrap();
    }
}
