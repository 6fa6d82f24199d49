//! The kernel's own calls, made with `syscall(2)`: the interposed symbols
//! cannot call libc's functions of the same name (they would call
//! themselves), and these return exactly what the kernel returned, with
//! `errno` set by `syscall` on failure.
//!
//! Every pointer handed to these functions must be valid for the kernel's
//! access, as for the libc function of the same name: they are called with
//! the pointers the interposed function's own caller passed, or with
//! pointers to locals.

use std::time::Duration;

use libc::{c_int, c_long, c_void, size_t, sockaddr, socklen_t, ssize_t};

/// The arguments of a system call as `c_long`s (pointers and integers).
macro_rules! args {
    ($($arg:expr),*) => { [$($arg as c_long),*] };
}

/// `syscall(nr, args...)`.
///
/// # Safety
/// `args` are what system call `nr` takes; every pointer among them is
/// valid for what the kernel reads or writes through it (as for the libc
/// function of the same name).
#[inline(always)]
unsafe fn sys<const N: usize>(nr: c_long, args: [c_long; N]) -> c_long {
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    // SAFETY: the caller's contract; only the arguments the call takes are
    // passed (the hot calls take three: no more registers are set up).
    unsafe {
        match N {
            0 => libc::syscall(nr),
            1 => libc::syscall(nr, a(0)),
            2 => libc::syscall(nr, a(0), a(1)),
            3 => libc::syscall(nr, a(0), a(1), a(2)),
            4 => libc::syscall(nr, a(0), a(1), a(2), a(3)),
            _ => libc::syscall(nr, a(0), a(1), a(2), a(3), a(4), a(5)),
        }
    }
}

#[inline]
pub(crate) fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: the arguments of _read, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_read, args!(fd, buf, n)) }) as ssize_t
}

#[inline]
pub(crate) fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    // SAFETY: the arguments of _write, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_write, args!(fd, buf, n)) }) as ssize_t
}

pub(crate) fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    // SAFETY: the arguments of _readv, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_readv, args!(fd, iov, n)) }) as ssize_t
}

pub(crate) fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    // SAFETY: the arguments of _writev, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_writev, args!(fd, iov, n)) }) as ssize_t
}

#[inline]
pub(crate) fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    // SAFETY: the arguments of _recvfrom, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_recvfrom, args!(fd, buf, n, flags, addr, len)) }) as ssize_t
}

#[inline]
pub(crate) fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    // SAFETY: the arguments of _sendto, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_sendto, args!(fd, buf, n, flags, addr, len)) }) as ssize_t
}

pub(crate) fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the arguments of _recvmsg, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_recvmsg, args!(fd, msg, flags)) }) as ssize_t
}

pub(crate) fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the arguments of _sendmsg, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_sendmsg, args!(fd, msg, flags)) }) as ssize_t
}

pub(crate) fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: the arguments of _connect, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_connect, args!(fd, addr, len)) }) as c_int
}

pub(crate) fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    // SAFETY: the arguments of _accept4, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_accept4, args!(fd, addr, len, flags)) }) as c_int
}

pub(crate) fn close(fd: c_int) -> c_int {
    // SAFETY: the arguments of _close, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_close, args!(fd)) }) as c_int
}

pub(crate) fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: the arguments of _dup3, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_dup3, args!(old, new, flags)) }) as c_int
}

pub(crate) fn dup(old: c_int) -> c_int {
    // SAFETY: the arguments of _dup, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_dup, args!(old)) }) as c_int
}

pub(crate) fn fcntl(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    // SAFETY: the arguments of _fcntl, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_fcntl, args!(fd, cmd, arg)) }) as c_int
}

pub(crate) fn ioctl(fd: c_int, req: libc::c_ulong, arg: libc::c_ulong) -> c_int {
    // SAFETY: the arguments of _ioctl, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_ioctl, args!(fd, req, arg)) }) as c_int
}

pub(crate) fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
    // SAFETY: the arguments of _setsockopt, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_setsockopt, args!(fd, level, name, val, len)) }) as c_int
}

pub(crate) fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    // SAFETY: the arguments of _getsockopt, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_getsockopt, args!(fd, level, name, val, len)) }) as c_int
}

/// `ppoll` with a relative timeout (`None`: forever) and no signal mask.
pub(crate) fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: Option<Duration>) -> c_int {
    let ts = timeout.map(timespec);
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: the arguments of _ppoll, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_ppoll, args!(fds, n, tsp, 0usize, 0usize)) }) as c_int
}

pub(crate) fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // The kernel takes the signal set's size: 8 bytes on Linux (_NSIG / 8).
    // SAFETY: the arguments of _ppoll, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_ppoll, args!(fds, n, ts, mask, 8usize)) }) as c_int
}

pub(crate) fn pselect6(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *mut libc::timespec,
) -> c_int {
    // The sixth argument is {sigmask, size}: null for no mask.
    // SAFETY: the arguments of _pselect6, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_pselect6, args!(n, r, w, e, ts, 0usize)) }) as c_int
}

/// `clock_nanosleep`, returning the error number (0 on success) as the
/// libc function does, without touching `errno`.
pub(crate) fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let saved = errno();
    // SAFETY: the arguments of _clock_nanosleep, with pointers valid as the module doc requires.
    let r = unsafe { sys(libc::SYS_clock_nanosleep, args!(clock, flags, req, rem)) };
    if r == 0 {
        return 0;
    }
    let e = errno();
    set_errno(saved);
    e
}

pub(crate) fn wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    rusage: *mut libc::rusage,
) -> libc::pid_t {
    // SAFETY: the arguments of _wait4, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_wait4, args!(pid, status, options, rusage)) }) as libc::pid_t
}

/// A pollable fd for process `pid` (Linux >= 5.3), or -1 with `errno`.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> c_int {
    // SAFETY: the arguments of _pidfd_open, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_pidfd_open, args!(pid, 0usize)) }) as c_int
}

pub(crate) fn epoll_create() -> c_int {
    // SAFETY: the arguments of _epoll_create1, with pointers valid as the module doc requires.
    (unsafe { sys(libc::SYS_epoll_create1, args!(libc::EPOLL_CLOEXEC)) }) as c_int
}

pub(crate) fn epoll_add(ep: c_int, fd: c_int, events: u32) -> c_int {
    let mut ev = libc::epoll_event { events, u64: 0 };
    // SAFETY: the arguments of _epoll_ctl, with pointers valid as the module doc requires.
    (unsafe {
        sys(
            libc::SYS_epoll_ctl,
            args!(ep, libc::EPOLL_CTL_ADD, fd, &mut ev as *mut libc::epoll_event),
        )
    }) as c_int
}

/// The file type bits (`S_IFMT`) of `fd`, or `None` if it is not open.
pub(crate) fn file_type(fd: c_int) -> Option<libc::mode_t> {
    // SAFETY: all-zero is a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the arguments of _fstat, with pointers valid as the module doc requires.
    let r = unsafe { sys(libc::SYS_fstat, args!(fd, &mut st as *mut libc::stat)) };
    (r == 0).then_some(st.st_mode & libc::S_IFMT)
}

pub(crate) fn get_fl(fd: c_int) -> Option<c_int> {
    let r = fcntl(fd, libc::F_GETFL, 0);
    (r >= 0).then_some(r)
}

pub(crate) fn set_fl(fd: c_int, fl: c_int) -> bool {
    fcntl(fd, libc::F_SETFL, fl as libc::c_ulong) == 0
}

/// A socket's `SO_RCVTIMEO`/`SO_SNDTIMEO`, `None` if unset or unreadable.
pub(crate) fn sock_timeout(fd: c_int, name: c_int) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
    let r = getsockopt(
        fd,
        libc::SOL_SOCKET,
        name,
        (&mut tv as *mut libc::timeval).cast(),
        &mut len,
    );
    (r == 0).then(|| from_timeval(&tv)).flatten()
}

/// A socket's type (`SO_TYPE`: `SOCK_STREAM`, `SOCK_DGRAM`, ...).
pub(crate) fn sock_type(fd: c_int) -> Option<c_int> {
    let mut ty: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    let r = getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        (&mut ty as *mut c_int).cast(),
        &mut len,
    );
    (r == 0).then_some(ty)
}

/// A pending socket error (`SO_ERROR`), 0 for none.
pub(crate) fn sock_error(fd: c_int) -> c_int {
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    let r = getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        (&mut err as *mut c_int).cast(),
        &mut len,
    );
    if r == 0 {
        err
    } else {
        errno()
    }
}

/// A `timeval` as a timeout: zero means none, as for `SO_RCVTIMEO`.
pub(crate) fn from_timeval(tv: &libc::timeval) -> Option<Duration> {
    let d = Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64);
    (!d.is_zero()).then_some(d)
}

pub(crate) fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as c_long,
    }
}

/// A `timespec` as a duration; `None` if it is invalid (EINVAL).
pub(crate) fn from_timespec(ts: &libc::timespec) -> Option<Duration> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

pub(crate) fn errno() -> c_int {
    // SAFETY: `__errno_location` is always valid for the calling thread.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e };
}

/// Sets `errno` to `e` and returns -1, as a failing libc call does.
pub(crate) fn fail(e: c_int) -> c_int {
    set_errno(e);
    -1
}
