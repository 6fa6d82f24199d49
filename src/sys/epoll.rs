//! The poller on Linux: epoll.
//!
//! For now the hub only sleeps in it until the next timer; sockets register
//! here once they exist. `epoll_pwait2` takes a nanosecond timeout, so timers
//! are not rounded to milliseconds; kernels before 5.11 lack it, and there the
//! timeout is rounded up to the next millisecond (never early, so no spin).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// An epoll instance.
pub(crate) struct Poller {
    epfd: OwnedFd,
}

/// Set once `epoll_pwait2` answered ENOSYS, so later waits skip it.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller { epfd })
    }

    /// Waits for events or until `timeout` passes (`None`: no limit).
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
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
            if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
                return;
            }
            NO_PWAIT2.store(true, Ordering::Relaxed);
        }
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: `events` is a live buffer of `n` entries.
        unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), events.as_mut_ptr(), n, ms) };
    }
}
