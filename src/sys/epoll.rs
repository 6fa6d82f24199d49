//! The poller on Linux: epoll, edge-triggered.
//!
//! Each fd is added once with read and write interest (`EPOLLET`), so a
//! socket costs no `epoll_ctl` per operation; the hub turns each event into
//! wakes of the green threads parked on that fd. `epoll_pwait2` takes a
//! nanosecond timeout, so timers are not rounded to milliseconds; kernels
//! before 5.11 lack it, and there the timeout is rounded up to the next
//! millisecond (never early, so no spin).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// An epoll instance.
pub(crate) struct Poller {
    epfd: OwnedFd,
}

/// Readiness reported for one registered fd.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    /// The token the fd was added with.
    pub(crate) token: u64,
    /// Readable, or the peer hung up / an error is pending (a read will say).
    pub(crate) readable: bool,
    /// Writable, or an error is pending (a write will say).
    pub(crate) writable: bool,
    /// The peer hung up (or an error is pending): reads reach EOF or the
    /// error without further events.
    pub(crate) hangup: bool,
    /// TCP urgent data (`MSG_OOB`) arrived: reads stop short at its mark
    /// with more data queued behind it, so a short read no longer means
    /// the receive buffer is empty.
    pub(crate) urgent: bool,
    /// An error the poller took off the socket: never here (epoll leaves
    /// it for the next operation); see `kqueue.rs`.
    pub(crate) error: i32,
}

/// Whether events may carry an `error` taken off the socket: not on epoll.
pub(crate) const TAKES_SOCKET_ERRORS: bool = false;

/// How many events one wait takes at most; more wait for the next turn.
/// 1024 (12 KiB, on the root stack, where the hub runs): a server with a
/// thousand busy connections then needs one `epoll_pwait2` a turn, not four.
const EVENTS: usize = 1024;

/// Set once `epoll_pwait2` answered ENOSYS, so later waits skip it.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Poller {
    /// Urgent data (`MSG_OOB`) is reported (`EPOLLPRI`, `Event::urgent`),
    /// so the hub may trust a short stream read to mean "drained".
    pub(crate) const REPORTS_URGENT: bool = true;

    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller { epfd })
    }

    /// In a child process after `fork`: gives this poller a fresh, empty
    /// epoll instance under the same fd number (the inherited one is
    /// shared with the parent, which would see the child's registrations
    /// and steal its events). The fds must be added again.
    pub(crate) fn renew(&self) -> io::Result<()> {
        renew_fd(self.epfd.as_raw_fd(), Poller::new()?.epfd)
    }

    /// Adds `fd` with read and write interest, edge-triggered.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET)
                as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the call's duration.
        check(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Removes `fd` (before it is closed, so a reused number starts clean).
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: a null event is allowed for EPOLL_CTL_DEL (since 2.6.9).
        check(unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Waits for events or until `timeout` passes (`None`: no limit), and
    /// hands each event to `on_event`.
    pub(crate) fn wait(&self, timeout: Option<Duration>, mut on_event: impl FnMut(Event)) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        let n = self.wait_raw(timeout, &mut events);
        for ev in &events[..n] {
            let bits = ev.events as libc::c_int;
            let failed = bits & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
            on_event(Event {
                token: ev.u64,
                readable: failed || bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0,
                writable: failed || bits & libc::EPOLLOUT != 0,
                hangup: failed || bits & libc::EPOLLRDHUP != 0,
                urgent: bits & libc::EPOLLPRI != 0,
                error: 0,
            });
        }
    }

    /// One `epoll_pwait2` (or `epoll_wait`); the number of events (0 on EINTR).
    fn wait_raw(&self, timeout: Option<Duration>, events: &mut [libc::epoll_event]) -> usize {
        let n = events.len() as libc::c_int;
        if !NO_PWAIT2.load(Ordering::Relaxed) {
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` is a live buffer of `n` entries and `tsp` is
            // null or points to `ts`, alive for the call.
            let r = unsafe {
                libc::epoll_pwait2(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    n,
                    tsp,
                    std::ptr::null(),
                )
            };
            if r >= 0 {
                return r as usize;
            }
            if io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
                return 0;
            }
            NO_PWAIT2.store(true, Ordering::Relaxed);
        }
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: `events` is a live buffer of `n` entries.
        let r = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), events.as_mut_ptr(), n, ms) };
        r.max(0) as usize
    }
}

/// How other OS threads wake the hub's poller: an eventfd the poller
/// watches. `Send + Sync`.
pub(crate) struct Notifier {
    fd: OwnedFd,
}

/// Puts `fresh` in place of the open fd `at` (same number, close-on-exec),
/// then closes `fresh`'s own number.
fn renew_fd(at: RawFd, fresh: OwnedFd) -> io::Result<()> {
    // SAFETY: both are open fds this process owns; dup3 replaces `at`
    // atomically, and `at`'s owner keeps owning the number.
    check(unsafe { libc::dup3(fresh.as_raw_fd(), at, libc::O_CLOEXEC) })?;
    Ok(())
}

impl Poller {
    /// A way for other OS threads to wake this poller: a fresh eventfd,
    /// added with `token`. One per poller (the hub's inbox).
    pub(crate) fn notifier(&self, token: u64) -> io::Result<Notifier> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        self.add(fd.as_raw_fd(), token)?;
        Ok(Notifier { fd })
    }
}

impl Notifier {
    /// After `fork`, in the child: a fresh eventfd under the same fd number
    /// (the inherited one is shared with the parent), added to `poller`
    /// (renewed already) with `token`.
    pub(crate) fn renew(&self, poller: &Poller, token: u64) -> io::Result<()> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        renew_fd(self.fd.as_raw_fd(), unsafe { OwnedFd::from_raw_fd(fd) })?;
        poller.add(self.fd.as_raw_fd(), token)
    }

    /// Makes the fd readable (from any thread). A full counter (EAGAIN)
    /// means it is readable already, which is all a notify needs.
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64, as eventfd requires.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Consumes the notifications so far (edge-triggered: the next notify
    /// makes a new edge).
    pub(crate) fn reset(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64, as eventfd requires.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
}
