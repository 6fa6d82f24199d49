//! File descriptors on the hub: registration with the poller, the parked
//! reader and writer of each fd, and the one I/O loop every blocking
//! operation goes through.
//!
//! Each fd is registered once, edge-triggered, with read and write interest.
//! An operation tries its syscall first and parks only on `WouldBlock`, so a
//! ready socket costs no extra syscall; an fd has at most one parked reader
//! and one parked writer.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;

use super::{with, Hub, Wake, Waker};
use crate::greenlet::core::is_current;
use crate::greenlet::gref::GRef;
use crate::sys::{Event, Poller};

/// Which way an operation waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// One registered fd.
#[derive(Default)]
struct Slot {
    /// Bumped on reuse, so an event for a removed fd is not taken for the
    /// fd now in its place.
    generation: u32,
    in_use: bool,
    /// A stream read came back short, so the receive buffer was empty: the
    /// next read parks first instead of paying for an `EAGAIN`. Cleared by
    /// the next readable event (edge-triggered: data arriving after that
    /// read makes one).
    drained: bool,
    /// The peer hung up: a short read may be followed by EOF with no event
    /// to announce it, so reads never wait first once this is set.
    hangup: bool,
    /// Urgent data (`MSG_OOB`) was seen on it: reads stop short at the
    /// urgent mark with data still queued and no event to come for it, so
    /// a short read never marks it drained again.
    urgent: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The fd, to add it again to a fresh poller after `fork`.
    fd: RawFd,
    /// An error the poller took off the socket (`sys::Event::error`; only
    /// libkqueue does): the next operation returns it.
    error: Option<i32>,
}

impl Slot {
    /// The parked waiter for `dir`.
    fn place(&mut self, dir: Direction) -> &mut Option<Waker> {
        match dir {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

#[cold]
fn two_waiters(dir: Direction) -> ! {
    panic!(
        "greenhub: two green threads wait to {} the same fd at once",
        if dir == Direction::Read { "read" } else { "write" }
    )
}

/// The registered fds, indexed by the low half of their poller token.
#[derive(Default)]
pub(crate) struct IoTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Green threads parked on an fd: while any are, the hub may wait for
    /// I/O without a deadline.
    pub(crate) waiting: usize,
}

fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

impl IoTable {
    /// How many fds are registered (for `debug::run_info`).
    pub(crate) fn registered(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn insert(&mut self, fd: RawFd) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.in_use = true;
        slot.fd = fd;
        slot.drained = false;
        slot.hangup = false;
        slot.urgent = false;
        slot.error = None;
        token(index, slot.generation)
    }

    fn slot(&mut self, token: u64) -> Option<&mut Slot> {
        let slot = self.slots.get_mut((token & 0xffff_ffff) as usize)?;
        (slot.in_use && u64::from(slot.generation) == token >> 32).then_some(slot)
    }

    fn remove(&mut self, token: u64) -> (Option<Waker>, Option<Waker>) {
        let Some(slot) = self.slot(token) else {
            return (None, None);
        };
        slot.in_use = false;
        slot.generation = slot.generation.wrapping_add(1);
        let wakers = (slot.reader.take(), slot.writer.take());
        // Their parks find no slot to clear when they end.
        self.waiting -= usize::from(wakers.0.is_some()) + usize::from(wakers.1.is_some());
        self.free.push((token & 0xffff_ffff) as u32);
        wakers
    }

    /// Every registered fd and its token (to add them to a fresh poller).
    pub(crate) fn registered_fds(&self) -> impl Iterator<Item = (RawFd, u64)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.in_use)
            .map(|(i, s)| (s.fd, token(i as u32, s.generation)))
    }

    /// Wakes whoever waits for what `ev` reports.
    pub(crate) fn dispatch(&mut self, ev: Event) {
        let Some(slot) = self.slot(ev.token) else { return };
        slot.hangup |= ev.hangup;
        slot.urgent |= ev.urgent;
        if ev.error != 0 {
            slot.error = Some(ev.error);
        }
        let mut started = 0;
        if ev.readable {
            slot.drained = false;
            if let Some(w) = &slot.reader {
                w.wake();
                // A green thread parked before it started (see
                // `ReaderPlace`) has no park of its own to clear its
                // place: it leaves now, on its way to start.
                if !w.target().is_started() {
                    slot.reader = None;
                    started = 1;
                }
            }
        }
        if ev.writable {
            if let Some(w) = &slot.writer {
                w.wake();
            }
        }
        self.waiting -= started;
    }

    /// Every waker still in a place, for the hub's teardown.
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        self.waiting = 0;
        self.slots
            .iter_mut()
            .flat_map(|s| [s.reader.take(), s.writer.take()])
            .flatten()
            .collect()
    }
}

impl Hub {
    /// The poller, created on first use; `None` if the OS refused one.
    pub(crate) fn poller(&self) -> io::Result<&Poller> {
        self.poller
            .get_or_init(|| Poller::new().ok())
            .as_ref()
            .ok_or_else(|| io::Error::other("greenhub: cannot create the hub's poller (epoll or kqueue)"))
    }
}

/// An fd registered with this OS thread's hub; removed on drop. Owned by
/// the socket (or other fd wrapper) it serves, and dropped before the fd is
/// closed.
#[derive(Debug)]
pub(crate) struct Registration {
    fd: RawFd,
    token: u64,
    /// `!Send`: the fd table it is in belongs to this OS thread's hub.
    _hub: std::marker::PhantomData<*const ()>,
}

impl Registration {
    /// Registers `fd` (which must be in non-blocking mode).
    pub(crate) fn new(fd: BorrowedFd<'_>) -> io::Result<Registration> {
        let fd = fd.as_raw_fd();
        with(|h| {
            let token = h.io.borrow_mut().insert(fd);
            match h.poller().and_then(|p| p.add(fd, token)) {
                Ok(()) => Ok(Registration {
                    fd,
                    token,
                    _hub: std::marker::PhantomData,
                }),
                Err(e) => {
                    h.io.borrow_mut().remove(token);
                    Err(e)
                }
            }
        })
    }

    /// The fd's reader place, for a green thread to start in once the fd
    /// is readable (see `ReaderPlace`).
    pub(crate) fn reader_place(&self) -> ReaderPlace {
        ReaderPlace {
            fd: self.fd,
            token: self.token,
        }
    }

    /// Parks until the fd may be ready for `dir`, or `deadline` passes
    /// (`TimedOut`). Readiness is a hint: the caller retries its syscall.
    pub(crate) fn wait(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        // Refused before anything is registered: the first waiter's waker
        // stays in the slot (a guard made first would clear it as the
        // refusal unwinds, and the first waiter would never wake).
        self.check_free(dir);
        let guard = Parked {
            token: self.token,
            dir,
        };
        let tag = match dir {
            Direction::Read => crate::debug::WaitTag::read(self.fd),
            Direction::Write => crate::debug::WaitTag::write(self.fd),
        };
        let why = super::park_as(tag, deadline, |w| self.arm(dir, w));
        drop(guard);
        match why {
            Wake::Ready => Ok(()),
            Wake::TimedOut => Err(io::Error::from(io::ErrorKind::TimedOut)),
        }
    }

    /// Refuses a second waiter for `dir` while another's park is under way
    /// (checked before its `Parked` guard exists, so that the refusal, as
    /// it unwinds, cannot clear the first waiter's waker).
    fn check_free(&self, dir: Direction) {
        let busy = with(|h| {
            let mut t = h.io.borrow_mut();
            t.slot(self.token)
                .and_then(|slot| slot.place(dir).as_ref().map(Waker::is_waiting))
                .unwrap_or(false)
        });
        if busy {
            two_waiters(dir);
        }
    }

    /// Puts `w` in the fd's reader or writer slot, for the park under way
    /// (a `Parked` guard takes it out when the park ends).
    fn arm(&self, dir: Direction, w: &Waker) {
        with(|h| {
            let mut t = h.io.borrow_mut();
            if let Some(slot) = t.slot(self.token) {
                let place = slot.place(dir);
                if place
                    .as_ref()
                    .is_some_and(|old| old.is_waiting() && !is_current(old.target()))
                {
                    drop(t);
                    two_waiters(dir);
                }
                if place.replace(w.clone()).is_none() {
                    t.waiting += 1;
                }
            }
        })
    }

    /// Notes that a stream read came back short: the receive buffer is
    /// empty until the next readable event, so the next read waits first.
    pub(crate) fn mark_drained(&self) {
        with(|h| {
            if let Some(slot) = h.io.borrow_mut().slot(self.token) {
                // Without urgent-data events (kqueue) a short read may have
                // stopped at an urgent mark: never park on it first there.
                slot.drained = Poller::REPORTS_URGENT && !slot.hangup && !slot.urgent;
            }
        });
    }

    /// The error the poller took off the socket, if any (see `Slot::error`).
    fn take_error(&self) -> Option<io::Error> {
        with(|h| h.io.borrow_mut().slot(self.token).and_then(|s| s.error.take()))
            .map(io::Error::from_raw_os_error)
    }

    pub(crate) fn is_drained(&self) -> bool {
        with(|h| h.io.borrow_mut().slot(self.token).is_some_and(|s| s.drained))
    }

    /// The one I/O loop: tries `op`; on `WouldBlock` parks until the fd is
    /// ready for `dir` (or `deadline`: `TimedOut`), and tries again. A read
    /// on a drained fd (see `mark_drained`) parks before its first try.
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        // Not while unwinding: parks return at once then, and the read
        // is to be tried once (see the crate docs' rules for destructors).
        if dir == Direction::Read && self.is_drained() && !super::unwinding() {
            self.wait(dir, deadline)?;
        }
        loop {
            if crate::sys::TAKES_SOCKET_ERRORS {
                if let Some(e) = self.take_error() {
                    return Err(e);
                }
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
            self.wait(dir, deadline)?;
        }
    }
}

impl Registration {
    /// Ends the registration now, while the handle lives on (held by a
    /// parked waiter, say): the fd leaves the poller (unless `closed`: its
    /// last close removed it already, and its number may now be another
    /// fd's), its slot goes, and whoever is parked on it wakes. Dropping it
    /// later does nothing more. For the interposed `close` (monkey).
    #[cfg(feature = "monkey")]
    pub(crate) fn deregister(&self, closed: bool) {
        let _ = with_live_hub(|h| {
            if h.io.borrow_mut().slot(self.token).is_none() {
                return;
            }
            if !closed {
                if let Ok(p) = h.poller() {
                    let _ = p.delete(self.fd);
                }
            }
            let (reader, writer) = h.io.borrow_mut().remove(self.token);
            for w in reader.into_iter().chain(writer) {
                w.wake();
            }
        });
    }
}

/// An fd's reader place, taken from its `Registration` before the socket
/// moves into the function of a green thread that is to start once the fd
/// is readable (`TcpStream::spawn_when_readable`). Such a green thread
/// waits as a parked record in the place, with no stack: the readable
/// event's wake takes it out of the place and schedules its start; a kill
/// before that drops its function, and with it the socket, whose
/// registration leaves the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReaderPlace {
    fd: RawFd,
    token: u64,
}

impl ReaderPlace {
    /// Parks `g`, a green thread not started yet, in the place. Returns
    /// false, parking nothing, when the fd may be readable now (data or end
    /// of file queued, or a hang-up or error seen: no new event would
    /// announce them) or is registered no more: the caller then schedules
    /// its start at once, and its first read finds out.
    ///
    /// # Panics
    /// If another green thread is parked reading the fd.
    ///
    /// With a `deadline`, a timer also wakes it then (`Wake::TimedOut`);
    /// whichever comes first starts it, and its function removes the timer
    /// if the fd came first (`Timers::remove_wake_of`).
    pub(crate) fn park_unstarted(self, g: &GRef, deadline: Option<Instant>) -> bool {
        let known_empty = with(|h| {
            h.io.borrow_mut()
                .slot(self.token)
                .map(|s| s.drained && !s.hangup && s.error.is_none())
        });
        match known_empty {
            None => return false,
            // Edge-triggered: what arrived before the last event was taken
            // makes no new one, so ask once.
            Some(false) if readable_now(self.fd) => return false,
            Some(_) => {}
        }
        with(|h| {
            let mut t = h.io.borrow_mut();
            let Some(slot) = t.slot(self.token) else {
                return false;
            };
            if slot.reader.as_ref().is_some_and(Waker::is_waiting) {
                drop(t);
                two_waiters(Direction::Read);
            }
            super::park_unstarted(g, crate::debug::WaitTag::start_readable(self.fd));
            if slot.reader.replace(Waker::new(g.clone())).is_none() {
                t.waiting += 1;
            }
            drop(t);
            if let Some(d) = deadline {
                let waker = Waker::new(g.clone());
                h.timers
                    .borrow_mut()
                    .insert(d, super::timers::Action::Wake(waker));
            }
            true
        })
    }
}

/// Whether `fd` has data, end of file or an error to report now: a `poll`
/// that does not wait.
fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the call; a zero timeout never
    // blocks (and the interposed `poll` of `monkey` passes it straight on).
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    // An error (n < 0) is the read's to report: start it.
    n != 0
}

/// Parks until any of `fds` may be ready for its direction, or `deadline`
/// passes: one park, its waker in every fd's slot (`select.rs`).
pub(crate) fn wait_any(fds: &[(&Registration, Direction)], deadline: Option<Instant>) -> Wake {
    for &(r, dir) in fds {
        r.check_free(dir);
    }
    let _guards: Vec<Parked> = fds
        .iter()
        .map(|&(r, dir)| Parked { token: r.token, dir })
        .collect();
    super::park_as(crate::debug::WaitTag::SELECT, deadline, |w| {
        for &(r, dir) in fds {
            r.arm(dir, w);
        }
    })
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = with_live_hub(|h| {
            // Deregistered already (see `deregister`): the fd number may be
            // another fd's by now.
            if h.io.borrow_mut().slot(self.token).is_none() {
                return;
            }
            if let Ok(p) = h.poller() {
                let _ = p.delete(self.fd);
            }
            let (reader, writer) = h.io.borrow_mut().remove(self.token);
            // Anyone still parked on this fd must not wait forever for it.
            for w in reader.into_iter().chain(writer) {
                w.wake();
            }
        });
    }
}

/// Clears a parked waiter's slot when its park ends, however it ends
/// (woken, timed out, or unwound by a kill), so no registration leaks.
struct Parked {
    token: u64,
    dir: Direction,
}

impl Drop for Parked {
    fn drop(&mut self) {
        let _ = with_live_hub(|h| {
            let mut t = h.io.borrow_mut();
            if let Some(slot) = t.slot(self.token) {
                // Only our own waker: never another green thread's.
                let place = slot.place(self.dir);
                if place.take_if(|w| is_current(w.target())).is_some() {
                    t.waiting -= 1;
                }
            }
        });
    }
}

/// The hub, unless this OS thread is exiting and it is gone already
/// (drops must not panic then).
fn with_live_hub<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    super::try_with(f)
}

/// Parks the current green thread until `fd` is readable (gevent's
/// `wait_read`), or `deadline` passes. For fds the caller owns (pipes,
/// eventfds, a child's stdout) that are not wrapped by a greenhub type; put
/// the fd in non-blocking mode first.
///
/// # Errors
/// `TimedOut` when the deadline passes; the OS error if the fd cannot be
/// registered (for instance `EEXIST`: a greenhub socket already owns it).
///
/// # Blocking
/// Parks until readable.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use std::time::{Duration, Instant};
///
/// let (reader, mut writer) = std::io::pipe().unwrap();
/// let deadline = Instant::now() + Duration::from_millis(10);
/// let waited = greenhub::hub::wait_readable(reader.as_fd(), Some(deadline));
/// assert_eq!(waited.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// writer.write_all(b"x").unwrap();
/// greenhub::hub::wait_readable(reader.as_fd(), None).unwrap();
/// ```
#[doc(alias = "wait_read")]
pub fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<()> {
    Registration::new(fd)?.wait(Direction::Read, deadline)
}

/// Parks the current green thread until `fd` is writable (gevent's
/// `wait_write`), or `deadline` passes. As [`wait_readable`].
///
/// # Errors
/// As [`wait_readable`].
///
/// # Blocking
/// Parks until writable.
///
/// ```
/// use std::os::fd::AsFd;
/// let (_reader, writer) = std::io::pipe().unwrap();
/// greenhub::hub::wait_writable(writer.as_fd(), None).unwrap(); // an empty pipe has room
/// ```
#[doc(alias = "wait_write")]
pub fn wait_writable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<()> {
    Registration::new(fd)?.wait(Direction::Write, deadline)
}
