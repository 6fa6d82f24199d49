//! The interposed libc functions. Each has libc's exact signature; before
//! [`patch_all`](super::patch_all) (and in a forked child) it is the raw
//! system call and nothing else, so a program that never patches pays one
//! relaxed atomic load per call.
//!
//! # Safety (for every function here)
//! The caller upholds the contract of the libc function of the same name
//! (valid pointers of the stated sizes): these functions pass the pointers
//! on to the kernel, or read/write them exactly as that function would.

use std::ffi::CStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use libc::{c_char, c_int, c_uint, c_ulong, c_void, size_t, sockaddr, socklen_t, ssize_t};

use super::fd;
use super::wait::{self, blocking_io, write_all};
use super::{cooperating, raw, PATCHED, PROBED};

/// Every interposed symbol, with its address: `patch_all` checks that the
/// dynamic linker finds these, and naming them here keeps them linked.
pub(crate) fn symbols() -> [(&'static CStr, usize); 34] {
    [
        (c"read", read as *const () as usize),
        (c"write", write as *const () as usize),
        (c"readv", readv as *const () as usize),
        (c"writev", writev as *const () as usize),
        (c"recv", recv as *const () as usize),
        (c"recvfrom", recvfrom as *const () as usize),
        (c"recvmsg", recvmsg as *const () as usize),
        (c"send", send as *const () as usize),
        (c"sendto", sendto as *const () as usize),
        (c"sendmsg", sendmsg as *const () as usize),
        (c"connect", connect as *const () as usize),
        (c"accept", accept as *const () as usize),
        (c"accept4", accept4 as *const () as usize),
        (c"poll", poll as *const () as usize),
        (c"ppoll", ppoll as *const () as usize),
        (c"select", select as *const () as usize),
        (c"nanosleep", nanosleep as *const () as usize),
        (c"clock_nanosleep", clock_nanosleep as *const () as usize),
        (c"usleep", usleep as *const () as usize),
        (c"sleep", sleep as *const () as usize),
        (c"getaddrinfo", getaddrinfo as *const () as usize),
        (c"waitpid", waitpid as *const () as usize),
        (c"wait4", wait4 as *const () as usize),
        (c"close", close as *const () as usize),
        (c"dup", dup as *const () as usize),
        (c"dup2", dup2 as *const () as usize),
        (c"dup3", dup3 as *const () as usize),
        (c"fcntl", fcntl as *const () as usize),
        (c"ioctl", ioctl as *const () as usize),
        (c"setsockopt", setsockopt as *const () as usize),
        (c"__read_chk", __read_chk as *const () as usize),
        (c"__recv_chk", __recv_chk as *const () as usize),
        (c"__recvfrom_chk", __recvfrom_chk as *const () as usize),
        (c"__poll_chk", __poll_chk as *const () as usize),
    ]
}

#[inline(always)]
fn patched() -> bool {
    PATCHED.load(Ordering::Relaxed)
}

// ---- reads and writes ------------------------------------------------------

/// libc's `read`: parks a green thread on an empty socket or pipe.
///
/// # Safety
/// As libc's `read` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    if !patched() {
        return raw::read(fd, buf, n);
    }
    blocking_io(fd, true, n, || raw::read(fd, buf, n))
}

/// libc's `write`: parks a green thread on a full socket or pipe.
///
/// # Safety
/// As libc's `write` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if !patched() {
        return raw::write(fd, buf, n);
    }
    write_all(fd, n, |done| {
        raw::write(fd, buf.wrapping_byte_add(done), n - done)
    })
}

/// libc's `readv`.
///
/// # Safety
/// As libc's `readv` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    if !patched() {
        return raw::readv(fd, iov, n);
    }
    blocking_io(fd, true, 0, || raw::readv(fd, iov, n))
}

/// libc's `writev` (a partial write returns its count, as a non-blocking
/// kernel write would; callers of `writev` loop on it).
///
/// # Safety
/// As libc's `writev` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    if !patched() {
        return raw::writev(fd, iov, n);
    }
    blocking_io(fd, false, 0, || raw::writev(fd, iov, n))
}

/// libc's `recv`.
///
/// # Safety
/// As libc's `recv` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    let op = || raw::recvfrom(fd, buf, n, flags, std::ptr::null_mut(), std::ptr::null_mut());
    if !patched() || flags & libc::MSG_DONTWAIT != 0 {
        return op();
    }
    blocking_io(fd, true, unpeeked(n, flags), op)
}

/// libc's `recvfrom`.
///
/// # Safety
/// As libc's `recvfrom` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    let op = || raw::recvfrom(fd, buf, n, flags, addr, len);
    if !patched() || flags & libc::MSG_DONTWAIT != 0 {
        return op();
    }
    blocking_io(fd, true, unpeeked(n, flags), op)
}

/// libc's `recvmsg`.
///
/// # Safety
/// As libc's `recvmsg` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    let op = || raw::recvmsg(fd, msg, flags);
    if !patched() || flags & libc::MSG_DONTWAIT != 0 {
        return op();
    }
    blocking_io(fd, true, 0, op)
}

/// libc's `send`: all of the buffer, as a blocking socket sends.
///
/// # Safety
/// As libc's `send` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: as `sendto` with no address, which is what libc's send is.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

/// libc's `sendto`.
///
/// # Safety
/// As libc's `sendto` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    if !patched() || flags & libc::MSG_DONTWAIT != 0 {
        return raw::sendto(fd, buf, n, flags, addr, len);
    }
    write_all(fd, n, |done| {
        raw::sendto(fd, buf.wrapping_byte_add(done), n - done, flags, addr, len)
    })
}

/// libc's `sendmsg` (a partial send returns its count).
///
/// # Safety
/// As libc's `sendmsg` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    let op = || raw::sendmsg(fd, msg, flags);
    if !patched() || flags & libc::MSG_DONTWAIT != 0 {
        return op();
    }
    blocking_io(fd, false, 0, op)
}

/// The length a read asked for, for the short-read hint of `blocking_io`
/// (none for a peek, which leaves the data queued).
fn unpeeked(n: size_t, flags: c_int) -> usize {
    if flags & libc::MSG_PEEK != 0 {
        0
    } else {
        n
    }
}

// ---- connections -----------------------------------------------------------

/// libc's `connect`: a green thread parks until the connection is made.
///
/// # Safety
/// As libc's `connect` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if !patched() {
        return raw::connect(fd, addr, len);
    }
    wait::connect(fd, || raw::connect(fd, addr, len))
}

/// libc's `accept`.
///
/// # Safety
/// As libc's `accept` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: libc's accept is accept4 with no flags.
    unsafe { accept4(fd, addr, len, 0) }
}

/// libc's `accept4`: a green thread parks until a connection arrives. The
/// new fd starts with fresh bookkeeping.
///
/// # Safety
/// As libc's `accept4` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    if !patched() {
        return raw::accept4(fd, addr, len, flags);
    }
    let r = blocking_io(fd, true, 0, || raw::accept4(fd, addr, len, flags) as isize) as c_int;
    if let Some(st) = fd::get(r) {
        st.reset();
    }
    r
}

// ---- bookkeeping -----------------------------------------------------------

/// libc's `close`: forgets the fd's state (a green thread parked on it
/// wakes with `EBADF`) before the kernel closes it.
///
/// # Safety
/// As libc's `close` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if patched() || fd < 0 {
        forget(fd);
    }
    raw::close(fd)
}

/// The bookkeeping of a closed or replaced fd.
fn forget(fd: c_int) {
    if fd < 0 {
        PROBED.store(true, Ordering::SeqCst);
        return;
    }
    if let Some(st) = fd::get(fd) {
        if st.known() || st.epoch() != 0 {
            st.reset();
        }
    }
    wait::forget(fd);
}

/// libc's `dup`: the copy shares the original's blocking state.
///
/// # Safety
/// As libc's `dup` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn dup(old: c_int) -> c_int {
    let r = raw::dup(old);
    if patched() {
        copied(old, r);
    }
    r
}

/// After `new` became a duplicate of `old`.
fn copied(old: c_int, new: c_int) {
    if new < 0 || new == old {
        return;
    }
    wait::forget(new);
    if let (Some(from), Some(to)) = (fd::get(old), fd::get(new)) {
        to.copy_from(from);
    } else if let Some(to) = fd::get(new) {
        to.reset();
    }
}

/// libc's `dup2`: `new` is replaced, so its state goes.
///
/// # Safety
/// As libc's `dup2` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // dup2 to itself checks `old` and changes nothing (dup3 would fail).
        return if raw::fcntl(old, libc::F_GETFD, 0) < 0 {
            -1
        } else {
            new
        };
    }
    // SAFETY: the same contract as dup3's.
    unsafe { dup3(old, new, 0) }
}

/// libc's `dup3`.
///
/// # Safety
/// As libc's `dup3` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if patched() && old != new && new >= 0 {
        wait::forget(new);
    }
    let r = raw::dup3(old, new, flags);
    if patched() && r >= 0 {
        copied(old, r);
    }
    r
}

/// libc's `fcntl`: `F_GETFL` shows only the user's `O_NONBLOCK`, `F_SETFL`
/// records it (greenhub keeps the kernel's flag while it needs it), and
/// `F_DUPFD*` copies the state.
///
/// Declared with one integer argument: on the Linux C ABIs (x86-64,
/// aarch64) a variadic call passes its first variadic argument where this
/// function reads it, and every `fcntl` command takes at most one.
///
/// # Safety
/// As libc's `fcntl` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if !patched() {
        return raw::fcntl(fd, cmd, arg);
    }
    let st = fd::get(fd).filter(|s| s.known());
    match (cmd, st) {
        (libc::F_GETFL, Some(st)) => {
            let r = raw::fcntl(fd, cmd, arg);
            if r >= 0 && !st.user_nonblocking() && st.greenhub_nonblocking() {
                r & !libc::O_NONBLOCK
            } else {
                r
            }
        }
        (libc::F_SETFL, Some(st)) => {
            let user = arg as c_int & libc::O_NONBLOCK != 0;
            let keep = st.set_user_nonblocking(user);
            let fl = if keep {
                arg | libc::O_NONBLOCK as c_ulong
            } else {
                arg
            };
            raw::fcntl(fd, cmd, fl)
        }
        (libc::F_DUPFD | libc::F_DUPFD_CLOEXEC, _) => {
            let r = raw::fcntl(fd, cmd, arg);
            copied(fd, r);
            r
        }
        _ => raw::fcntl(fd, cmd, arg),
    }
}

/// libc's `ioctl`: `FIONBIO` records the user's choice, as `F_SETFL` does.
/// (Declared with one argument, as `fcntl`.)
///
/// # Safety
/// As libc's `ioctl` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    if patched() && req == libc::FIONBIO as c_ulong {
        if let Some(st) = fd::get(fd).filter(|s| s.known()) {
            // SAFETY: FIONBIO takes a pointer to an int (the caller's contract).
            let on = unsafe { *(arg as *const c_int) } != 0;
            if st.set_user_nonblocking(on) && !on {
                // Greenhub keeps the kernel's flag: only check the fd.
                return if raw::fcntl(fd, libc::F_GETFL, 0) < 0 {
                    -1
                } else {
                    0
                };
            }
        }
    }
    raw::ioctl(fd, req, arg)
}

/// libc's `setsockopt`: `SO_RCVTIMEO`/`SO_SNDTIMEO` are recorded, since
/// the kernel's own timeouts do not apply to a non-blocking fd.
///
/// # Safety
/// As libc's `setsockopt` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let r = raw::setsockopt(fd, level, name, val, len);
    let timeo = name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO;
    if r == 0 && patched() && level == libc::SOL_SOCKET && timeo {
        if let Some(st) = fd::get(fd).filter(|s| s.known()) {
            // The kernel accepted it, so `val` holds a timeval.
            st.set_timeout(name == libc::SO_RCVTIMEO, raw::sock_timeout(fd, name));
        }
    }
    r
}

// ---- waiting ---------------------------------------------------------------

/// libc's `poll`: a green thread parks until an fd is ready.
///
/// # Safety
/// As libc's `poll` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    let t = u64::try_from(timeout).ok().map(Duration::from_millis);
    if !cooperating() {
        return raw::poll(fds, n, t);
    }
    wait::green_poll(fds, n, t)
}

/// libc's `ppoll`; with a signal mask it is the kernel's call (the mask
/// cannot be applied around a park).
///
/// # Safety
/// As libc's `ppoll` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !mask.is_null() || !cooperating() {
        return raw::ppoll(fds, n, ts, mask);
    }
    // SAFETY: a non-null `ts` is a valid timespec (the caller's contract).
    let t = match unsafe { ts.as_ref() }.map(raw::from_timespec) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => return raw::fail(libc::EINVAL),
    };
    wait::green_poll(fds, n, t)
}

/// libc's `select`, as a `poll` of the same fds; the timeout is updated
/// with the time left, as Linux does.
///
/// # Safety
/// As libc's `select` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    // SAFETY: a non-null `tv` is a valid timeval (the caller's contract).
    let t = unsafe { tv.as_ref() }.map(|tv| {
        Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
    });
    if !cooperating() || !(0..=libc::FD_SETSIZE as c_int).contains(&n) {
        let mut ts = t.map(raw::timespec);
        let tsp = ts
            .as_mut()
            .map_or(std::ptr::null_mut(), |t| t as *mut libc::timespec);
        let res = raw::pselect6(n, r, w, e, tsp);
        if let (Some(ts), false) = (ts, tv.is_null()) {
            // SAFETY: as above.
            unsafe { *tv = to_timeval(&ts) };
        }
        return res;
    }
    let sets = [(r, libc::POLLIN), (w, libc::POLLOUT), (e, libc::POLLPRI)];
    let mut fds: Vec<libc::pollfd> = Vec::new();
    for fd in 0..n {
        let mut events = 0;
        for &(set, ev) in &sets {
            // SAFETY: a non-null set is a valid fd_set (the caller's contract).
            if !set.is_null() && unsafe { libc::FD_ISSET(fd, set) } {
                events |= ev;
            }
        }
        if events != 0 {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    let start = std::time::Instant::now();
    let res = wait::green_poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, t);
    if res < 0 {
        return res;
    }
    let mut count = 0;
    for &(set, _) in &sets {
        if !set.is_null() {
            // SAFETY: as above.
            unsafe { libc::FD_ZERO(set) };
        }
    }
    for p in &fds {
        if p.revents & libc::POLLNVAL != 0 {
            return raw::fail(libc::EBADF);
        }
        let hits = [
            (r, p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0),
            (w, p.revents & (libc::POLLOUT | libc::POLLERR) != 0),
            (e, p.revents & libc::POLLPRI != 0),
        ];
        for (set, hit) in hits {
            // Only the sets the caller asked about this fd in.
            if hit && !set.is_null() && p.events & ev_of(set, r, w) != 0 {
                // SAFETY: as above.
                unsafe { libc::FD_SET(p.fd, set) };
                count += 1;
            }
        }
    }
    if let (Some(t), false) = (t, tv.is_null()) {
        // SAFETY: as above.
        unsafe { *tv = to_timeval(&raw::timespec(t.saturating_sub(start.elapsed()))) };
    }
    count
}

/// The poll event that asks for `set` among select's three.
fn ev_of(set: *mut libc::fd_set, r: *mut libc::fd_set, w: *mut libc::fd_set) -> i16 {
    if set == r {
        libc::POLLIN
    } else if set == w {
        libc::POLLOUT
    } else {
        libc::POLLPRI
    }
}

fn to_timeval(ts: &libc::timespec) -> libc::timeval {
    libc::timeval {
        tv_sec: ts.tv_sec,
        tv_usec: ts.tv_nsec / 1000,
    }
}

// ---- sleeping --------------------------------------------------------------

/// libc's `nanosleep`: a green thread parks for the time.
///
/// # Safety
/// As libc's `nanosleep` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    match clock_sleep(libc::CLOCK_REALTIME, 0, req, rem) {
        0 => 0,
        e => raw::fail(e),
    }
}

/// libc's `clock_nanosleep` (returns the error number, as libc's does).
///
/// # Safety
/// As libc's `clock_nanosleep` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    clock_sleep(clock, flags, req, rem)
}

/// The sleeps' one path: the kernel's call, or in a green thread a park.
/// Returns 0 or the error number.
fn clock_sleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let known_clock = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME
    );
    if !cooperating() || !known_clock || req.is_null() {
        return raw::clock_nanosleep(clock, flags, req, rem);
    }
    // SAFETY: `req` is a valid timespec (the caller's contract).
    let Some(mut d) = raw::from_timespec(unsafe { &*req }) else {
        return libc::EINVAL;
    };
    if flags & libc::TIMER_ABSTIME != 0 {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write.
        unsafe { libc::clock_gettime(clock, &mut now) };
        d = d.saturating_sub(raw::from_timespec(&now).unwrap_or_default());
    }
    match wait::green_sleep(d) {
        Ok(()) => 0,
        Err(e) => {
            if !rem.is_null() && flags & libc::TIMER_ABSTIME == 0 {
                // Nothing left: a caller that resumes on EINTR (std's
                // sleep does) then returns instead of sleeping again.
                // SAFETY: a non-null `rem` is a valid timespec to write.
                unsafe {
                    *rem = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    }
                };
            }
            e
        }
    }
}

/// libc's `usleep`.
///
/// # Safety
/// None beyond libc's.
#[no_mangle]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    let ts = raw::timespec(Duration::from_micros(u64::from(us)));
    match clock_sleep(libc::CLOCK_REALTIME, 0, &ts, std::ptr::null_mut()) {
        0 => 0,
        e => raw::fail(e),
    }
}

/// libc's `sleep`: returns the seconds left when interrupted.
///
/// # Safety
/// None beyond libc's.
#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let ts = raw::timespec(Duration::from_secs(u64::from(secs)));
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match clock_sleep(libc::CLOCK_REALTIME, 0, &ts, &mut rem) {
        0 => 0,
        _ => (rem.tv_sec as c_uint).saturating_add(c_uint::from(rem.tv_nsec > 0)),
    }
}

// ---- names and children ----------------------------------------------------

pub(crate) type Gai = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const libc::addrinfo,
    *mut *mut libc::addrinfo,
) -> c_int;

/// libc's own `getaddrinfo` (the next definition after ours).
fn real_getaddrinfo() -> Option<Gai> {
    static REAL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: the name is a NUL-terminated C string; dlsym only reads it.
    let p = *REAL.get_or_init(|| unsafe { libc::dlsym(libc::RTLD_NEXT, c"getaddrinfo".as_ptr()) } as usize);
    // SAFETY: a non-null result is libc's getaddrinfo, of this type.
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, Gai>(p) })
}

/// libc's `getaddrinfo`: in a green thread it runs on the blocking pool
/// (glibc's resolver makes calls no interposer sees) while the green thread
/// parks.
///
/// # Safety
/// As libc's `getaddrinfo` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    let Some(real) = real_getaddrinfo() else {
        return libc::EAI_SYSTEM;
    };
    if !cooperating() {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real(node, service, hints, res) };
    }
    wait::green_getaddrinfo(real, node, service, hints, res)
}

/// libc's `waitpid`.
///
/// # Safety
/// As libc's `waitpid` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t {
    // SAFETY: waitpid is wait4 without resource usage.
    unsafe { wait4(pid, status, options, std::ptr::null_mut()) }
}

/// libc's `wait4`: a green thread parks until the child changes state
/// (on its pidfd; on the blocking pool where there is none).
///
/// # Safety
/// As libc's `wait4` (see the module doc).
#[no_mangle]
pub unsafe extern "C" fn wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    ru: *mut libc::rusage,
) -> libc::pid_t {
    let nohang = options & libc::WNOHANG != 0;
    if nohang || !cooperating() {
        return raw::wait4(pid, status, options, ru);
    }
    let exits_only = options & (libc::WUNTRACED | libc::WCONTINUED) == 0;
    if pid > 0 && exits_only {
        if let Some(r) = wait::green_wait4(pid, status, options, ru) {
            return r;
        }
    }
    wait::pool_wait4(pid, status, options, ru)
}

// ---- _FORTIFY_SOURCE entry points --------------------------------------------
//
// C code built with `-D_FORTIFY_SOURCE` calls these instead of `read`,
// `recv`, `recvfrom` and `poll` when the buffer's size is known; glibc's
// versions call its own internal functions, which no interposer sees.

/// A fortified call's buffer is smaller than the length it passes: what
/// glibc's `__chk_fail` does (report and abort).
#[cold]
fn chk_fail() -> ! {
    eprintln!("*** buffer overflow detected ***: terminated");
    std::process::abort()
}

/// glibc's `__read_chk`: `read` after checking the buffer's size.
///
/// # Safety
/// As libc's `read`; `buflen` is the real size of `buf`.
#[no_mangle]
pub unsafe extern "C" fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t {
    if n > buflen {
        chk_fail();
    }
    // SAFETY: the caller's contract, with the size checked.
    unsafe { read(fd, buf, n) }
}

/// glibc's `__recv_chk`.
///
/// # Safety
/// As libc's `recv`; `buflen` is the real size of `buf`.
#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if n > buflen {
        chk_fail();
    }
    // SAFETY: the caller's contract, with the size checked.
    unsafe { recv(fd, buf, n, flags) }
}

/// glibc's `__recvfrom_chk`.
///
/// # Safety
/// As libc's `recvfrom`; `buflen` is the real size of `buf`.
#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if n > buflen {
        chk_fail();
    }
    // SAFETY: the caller's contract, with the size checked.
    unsafe { recvfrom(fd, buf, n, flags, addr, len) }
}

/// glibc's `__poll_chk`: `poll` after checking the array's size.
///
/// # Safety
/// As libc's `poll`; `fdslen` is the real size of `fds` in bytes.
#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if (fdslen / std::mem::size_of::<libc::pollfd>()) < n as size_t {
        chk_fail();
    }
    // SAFETY: the caller's contract, with the size checked.
    unsafe { poll(fds, n, timeout) }
}
