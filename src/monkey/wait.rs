//! How an interposed call waits: in a green thread, parked on the hub's
//! I/O loop (`hub::io`'s registration and park, as `greenhub::net` waits);
//! on any other thread, in the kernel's `poll`, for an fd that greenhub
//! made non-blocking behind the caller's back.

use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use libc::c_int;

use super::fd::{self, FdState};
use super::{cooperating, defer, raw};
use crate::hub::io::{Direction, Registration};
use crate::sync::Mutex;

/// One fd registered with this OS thread's hub by the interposed calls.
struct Entry {
    reg: Registration,
    /// The fd's epoch when registered: a different epoch means the fd was
    /// closed (and maybe its number reused) since.
    epoch: u32,
    /// An fd has one parked reader and one parked writer on the hub; more
    /// green threads waiting the same way (workers sharing a std listener)
    /// queue here for their turn.
    turns: [Mutex<()>; 2],
}

thread_local! {
    /// This OS thread's entries, indexed by fd.
    static REGS: RefCell<Vec<Option<Rc<Entry>>>> = const { RefCell::new(Vec::new()) };
}

/// The entry of `fd` at `epoch`, registering it if needed. A stale entry
/// (the fd was closed meanwhile) is dropped without touching the poller.
fn entry(fd: c_int, epoch: u32) -> std::io::Result<Rc<Entry>> {
    let i = fd as usize;
    let stale = REGS.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() <= i {
            r.resize_with(i + 1, || None);
        }
        match &r[i] {
            Some(e) if e.epoch == epoch => Err(e.clone()),
            _ => Ok(r[i].take()),
        }
    });
    let stale = match stale {
        Err(current) => return Ok(current),
        Ok(stale) => stale,
    };
    if let Some(old) = stale {
        old.reg.deregister(true);
    }
    // SAFETY: `fd` is open (the caller's call on it is in progress) and the
    // registration is dropped or deregistered before a close completes.
    let reg = Registration::new(unsafe { BorrowedFd::borrow_raw(fd) })?;
    let e = Rc::new(Entry {
        reg,
        epoch,
        turns: [Mutex::new(()), Mutex::new(())],
    });
    REGS.with(|r| r.borrow_mut()[i] = Some(e.clone()));
    Ok(e)
}

/// `fd` is being closed or replaced by this OS thread: its registration
/// leaves the poller while the number is still this fd's, and green threads
/// parked on it wake (and see `EBADF`). Only on threads with a hub.
pub(crate) fn forget(fd: c_int) {
    if !crate::greenlet::core::ROOT.get().is_null() || cooperating() {
        let e = REGS.with(|r| r.borrow_mut().get_mut(fd as usize).and_then(Option::take));
        if let Some(e) = e {
            e.reg.deregister(false);
        }
    }
}

/// The deadline of a wait on `st` in direction `read`, from its socket
/// timeout.
fn deadline(st: &FdState, read: bool) -> Option<Instant> {
    st.timeout(read).map(|t| Instant::now() + t)
}

/// Why a wait ended without the fd being ready: an errno for the caller.
pub(crate) type Errno = c_int;

/// Waits until `fd` may be ready for `read` (or write), or `deadline`
/// (`EAGAIN`, as the kernel's socket timeouts say). In a green thread it
/// parks; a close of the fd meanwhile gives `EBADF`, a kill `ECANCELED`.
fn wait_fd(
    fd: c_int,
    st: &FdState,
    epoch: u32,
    read: bool,
    deadline: Option<Instant>,
    green: bool,
) -> Result<(), Errno> {
    if st.epoch() != epoch {
        return Err(libc::EBADF);
    }
    if !green {
        return poll_one(fd, read, deadline);
    }
    let e = match entry(fd, epoch) {
        Ok(e) => e,
        // Not registrable here (another registration owns it): block as
        // the kernel would.
        Err(_) => return poll_one(fd, read, deadline),
    };
    let dir = if read { Direction::Read } else { Direction::Write };
    let waited = panic::catch_unwind(AssertUnwindSafe(|| {
        let _turn = e.turns[usize::from(!read)].lock();
        if st.epoch() != epoch {
            return Err(libc::EBADF);
        }
        e.reg.wait(dir, deadline).map_err(|_| libc::EAGAIN)
    }));
    match waited {
        Ok(Ok(())) if st.epoch() != epoch => Err(libc::EBADF),
        Ok(r) => r,
        Err(payload) => Err(defer(payload)),
    }
}

/// The kernel's `poll` on one fd until `deadline` (`EAGAIN` then).
fn poll_one(fd: c_int, read: bool, deadline: Option<Instant>) -> Result<(), Errno> {
    let mut p = libc::pollfd {
        fd,
        events: if read { libc::POLLIN } else { libc::POLLOUT },
        revents: 0,
    };
    loop {
        let left = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(libc::EAGAIN),
            },
        };
        match raw::poll(&mut p, 1, left) {
            0 => return Err(libc::EAGAIN),
            n if n > 0 => return Ok(()),
            // EINTR: go on waiting, as a restarted blocking call would.
            _ if raw::errno() == libc::EINTR => continue,
            _ => return Err(raw::errno()),
        }
    }
}

/// A blocking fd operation with the caller's blocking semantics kept:
/// `op` makes one attempt and returns the kernel's result (-1 with `errno`
/// on failure). In a green thread the fd is made non-blocking first and the
/// call parks on `EAGAIN`; elsewhere, an fd greenhub made non-blocking is
/// waited for with the kernel's poll. A user's non-blocking fd, and fds
/// that do not cooperate (regular files), get exactly one attempt.
///
/// `want` is the length a stream read asked for (0 for anything else): a
/// shorter result means the receive buffer is empty, so the next read on
/// the fd parks first instead of paying for an `EAGAIN` (as `net/` does).
#[inline(always)]
pub(crate) fn blocking_io(fd: c_int, read: bool, want: usize, mut op: impl FnMut() -> isize) -> isize {
    if !cooperating() {
        // The fd's bookkeeping is read before the call, so that the common
        // case (not made non-blocking by greenhub) is a plain tail call.
        return match fd::emulate_blocking(fd) {
            None => op(),
            Some(st) => retry(fd, st, read, None, op),
        };
    }
    match fd::for_green(fd) {
        Some(st) if st.parks() => {
            let want = (read && st.stream()).then_some(want).filter(|&w| w > 0);
            retry(fd, st, read, Some(want), op)
        }
        _ => op(),
    }
}

/// The loop of `blocking_io` for an fd that greenhub made non-blocking:
/// try, wait on `EAGAIN` (parked in a green thread, `green` = `Some(the
/// stream read's length)`, else in the kernel's poll), and try again.
#[inline(never)]
fn retry(
    fd: c_int,
    st: &FdState,
    read: bool,
    green: Option<Option<usize>>,
    mut op: impl FnMut() -> isize,
) -> isize {
    let epoch = st.epoch();
    let deadline = deadline(st, read);
    let want = green.flatten();
    let reg = want.and_then(|_| existing(fd, epoch));
    if let Some(e) = &reg {
        if e.reg.is_drained() {
            if let Err(e) = wait_fd(fd, st, epoch, read, deadline, true) {
                return raw::fail(e) as isize;
            }
        }
    }
    loop {
        let r = op();
        if r >= 0 {
            if let (Some(want), Some(e)) = (want, &reg) {
                if (r as usize) < want && r > 0 {
                    e.reg.mark_drained();
                }
            }
            return r;
        }
        if raw::errno() != libc::EAGAIN {
            return r;
        }
        if let Err(e) = wait_fd(fd, st, epoch, read, deadline, green.is_some()) {
            return raw::fail(e) as isize;
        }
    }
}

/// This OS thread's registration of `fd` at `epoch`, if it has one.
fn existing(fd: c_int, epoch: u32) -> Option<Rc<Entry>> {
    REGS.with(|r| {
        r.borrow()
            .get(fd as usize)
            .and_then(Option::as_ref)
            .filter(|e| e.epoch == epoch)
            .cloned()
    })
}

/// A write of one buffer of `len` bytes with blocking semantics: all of it
/// is written (as the kernel's blocking socket write does), unless an error
/// or timeout comes first, when the count so far is returned if any.
pub(crate) fn write_all(fd: c_int, len: usize, mut op: impl FnMut(usize) -> isize) -> isize {
    let mut done = 0usize;
    loop {
        let r = blocking_io(fd, false, 0, || op(done));
        if r < 0 {
            return if done > 0 { done as isize } else { -1 };
        }
        done += r as usize;
        if done >= len || r == 0 || !still_blocking(fd) {
            return done as isize;
        }
    }
}

/// Whether a write on `fd` made now goes on until done (a partial write of
/// a user's non-blocking fd is the user's to finish).
fn still_blocking(fd: c_int) -> bool {
    fd::get(fd).is_some_and(|st| st.known() && !st.user_nonblocking() && st.greenhub_nonblocking())
}

/// `connect` with blocking semantics on an fd greenhub made non-blocking:
/// `EINPROGRESS` is waited out (until `SO_SNDTIMEO`, like the kernel's
/// blocking connect), and the outcome read from `SO_ERROR`.
pub(crate) fn connect(fd: c_int, op: impl FnOnce() -> c_int) -> c_int {
    let green = cooperating();
    let st = if green {
        match fd::for_green(fd) {
            Some(st) if st.parks() => st,
            _ => return op(),
        }
    } else {
        match fd::emulate_blocking(fd) {
            Some(st) => st,
            None => return op(),
        }
    };
    let epoch = st.epoch();
    let r = op();
    if r == 0 || raw::errno() != libc::EINPROGRESS {
        return r;
    }
    match wait_fd(fd, st, epoch, false, deadline(st, false), green) {
        // The kernel's blocking connect says EINPROGRESS when it times out.
        Err(libc::EAGAIN) => raw::fail(libc::EINPROGRESS),
        Err(e) => raw::fail(e),
        Ok(()) => match raw::sock_error(fd) {
            0 => 0,
            e => raw::fail(e),
        },
    }
}

/// `poll` for a green thread: the fds are put in a private epoll instance,
/// which parks the green thread on the hub until one is ready or
/// `timeout` passes. Returns what the kernel's `poll` would.
pub(crate) fn green_poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: Option<Duration>) -> c_int {
    let r = raw::poll(fds, n, Some(Duration::ZERO));
    if r != 0 || timeout.is_some_and(|t| t.is_zero()) {
        return r;
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let ep = raw::epoll_create();
    if ep < 0 {
        return raw::poll(fds, n, timeout);
    }
    let guard = CloseOnDrop(ep);
    // SAFETY: the caller passes `n` valid pollfds (as poll requires).
    let list = unsafe { std::slice::from_raw_parts(fds, n as usize) };
    for p in list.iter().filter(|p| p.fd >= 0) {
        let ev =
            i32::from(p.events) & (libc::POLLIN | libc::POLLOUT | libc::POLLPRI | libc::POLLRDHUP) as i32;
        // Regular files refuse epoll (EPERM): they were reported ready above.
        raw::epoll_add(ep, p.fd, ev as u32);
    }
    loop {
        let waited = panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `ep` is open until `guard` drops, after this wait.
            crate::hub::wait_readable(unsafe { BorrowedFd::borrow_raw(ep) }, deadline)
        }));
        let r = raw::poll(fds, n, Some(Duration::ZERO));
        match waited {
            Err(payload) => {
                drop(guard);
                return if r > 0 { r } else { raw::fail(defer(payload)) };
            }
            Ok(Err(_)) => return r, // the deadline: whatever is ready now, likely 0
            Ok(Ok(())) if r != 0 => return r,
            Ok(Ok(())) => continue,
        }
    }
}

/// Closes an fd greenhub opened for itself, with the raw call.
struct CloseOnDrop(c_int);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        raw::close(self.0);
    }
}

/// Sleeps `d` in a green thread. `Err` with `EINTR` when a kill or timeout
/// cut it short (deferred, see "Kills and timeouts").
pub(crate) fn green_sleep(d: Duration) -> Result<(), Errno> {
    let deadline = Instant::now() + d;
    panic::catch_unwind(AssertUnwindSafe(|| crate::hub::sleep_until(deadline))).map_err(|p| {
        defer(p);
        libc::EINTR
    })
}

/// Waits for child `pid` to change state in a green thread: parks on its
/// pidfd until it exits, then reaps it with `wait4(WNOHANG)`. `None` when
/// it cannot (no pidfd: old kernel, or not a single child), for the caller
/// to use the blocking pool.
pub(crate) fn green_wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    ru: *mut libc::rusage,
) -> Option<libc::pid_t> {
    let pidfd = raw::pidfd_open(pid);
    if pidfd < 0 {
        return None;
    }
    let _guard = CloseOnDrop(pidfd);
    loop {
        let r = raw::wait4(pid, status, options | libc::WNOHANG, ru);
        if r != 0 {
            return Some(r);
        }
        let waited = panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `pidfd` is open until `_guard` drops, after this wait.
            crate::hub::wait_readable(unsafe { BorrowedFd::borrow_raw(pidfd) }, None)
        }));
        if let Err(payload) = waited {
            return Some(raw::fail(defer(payload)));
        }
    }
}

/// A result list of the real `getaddrinfo`, freed on drop unless taken: a
/// green thread killed while the pool resolves does not leak it.
struct AddrList(usize);

impl Drop for AddrList {
    fn drop(&mut self) {
        if self.0 != 0 {
            // SAFETY: a non-zero value is a list the real getaddrinfo made
            // and nobody else has.
            unsafe { libc::freeaddrinfo(self.0 as *mut libc::addrinfo) };
        }
    }
}

/// The hint fields `getaddrinfo` reads (the rest must be zero or null).
type Hints = Option<(c_int, c_int, c_int, c_int)>;

/// `getaddrinfo` run by `real` on the blocking pool while the green thread
/// parks: the names and hints are copied, so the pool thread touches only
/// memory it owns, even if the green thread is killed meanwhile.
pub(crate) fn green_getaddrinfo(
    real: super::hooks::Gai,
    node: *const libc::c_char,
    service: *const libc::c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    // SAFETY: non-null names are NUL-terminated strings (the caller's
    // contract), read here before the call returns.
    let copy =
        |p: *const libc::c_char| (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_owned());
    let (node, service) = (copy(node), copy(service));
    // SAFETY: a non-null `hints` is a valid addrinfo (the caller's contract).
    let hints: Hints =
        unsafe { hints.as_ref() }.map(|h| (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol));
    let job = move || {
        // SAFETY: all-zero is a valid addrinfo.
        let mut h: libc::addrinfo = unsafe { std::mem::zeroed() };
        if let Some((flags, family, socktype, protocol)) = hints {
            (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol) = (flags, family, socktype, protocol);
        }
        let hp = if hints.is_some() {
            &h as *const libc::addrinfo
        } else {
            std::ptr::null()
        };
        let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        let mut out: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: owned strings and hints, alive for the call; `out` is ours.
        let r = unsafe { real(ptr(&node), ptr(&service), hp, &mut out) };
        (r, raw::errno(), AddrList(out as usize))
    };
    match panic::catch_unwind(AssertUnwindSafe(|| crate::blocking::run(job))) {
        Ok((r, errno, mut list)) => {
            if r == 0 {
                // SAFETY: `res` is valid to write (the caller's contract).
                unsafe { *res = std::mem::take(&mut list.0) as *mut libc::addrinfo };
            }
            raw::set_errno(errno);
            r
        }
        Err(payload) => {
            raw::set_errno(defer(payload));
            libc::EAI_SYSTEM
        }
    }
}

/// `wait4` on the blocking pool, for a wait no pidfd can serve (any child,
/// a process group, stops). Status and usage come back by value, so the
/// pool never writes the caller's memory after a kill.
pub(crate) fn pool_wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    ru: *mut libc::rusage,
) -> libc::pid_t {
    let want_ru = !ru.is_null();
    let job = move || {
        let mut st: c_int = 0;
        // SAFETY: all-zero is a valid rusage.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = raw::wait4(
            pid,
            &mut st,
            options,
            if want_ru { &mut usage } else { std::ptr::null_mut() },
        );
        (r, raw::errno(), st, usage)
    };
    match panic::catch_unwind(AssertUnwindSafe(|| crate::blocking::run(job))) {
        Ok((r, errno, st, usage)) => {
            if r > 0 {
                if !status.is_null() {
                    // SAFETY: a non-null `status` is valid to write.
                    unsafe { *status = st };
                }
                if want_ru {
                    // SAFETY: a non-null `ru` is valid to write.
                    unsafe { *ru = usage };
                }
            }
            raw::set_errno(errno);
            r
        }
        Err(payload) => raw::fail(defer(payload)),
    }
}
