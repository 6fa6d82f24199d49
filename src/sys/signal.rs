//! Signals as bytes in a pipe: the async-signal-safe half of
//! [`crate::signal`].
//!
//! The handler only marks the signal pending and writes one byte to a
//! process-wide self-pipe (both async-signal-safe); a dispatcher thread
//! reads the pipe and, outside signal context, does the rest. Pending flags
//! carry which signal arrived, so a full pipe (a burst of signals) loses
//! nothing: the unread bytes already guarantee the dispatcher's next wake.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Signal numbers below this can be handled (Linux's realtime signals end
/// at 64).
pub(crate) const SIGNAL_LIMIT: usize = 65;

/// Which signals arrived since the dispatcher last looked.
static PENDING: [AtomicBool; SIGNAL_LIMIT] = [const { AtomicBool::new(false) }; SIGNAL_LIMIT];

/// The self-pipe's write end (non-blocking), or -1 before it exists. Set
/// once, before any handler is installed, and never closed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// Signals that must not be turned into pipe bytes: SIGKILL and SIGSTOP
/// cannot be caught, and returning from a handler for a synchronous fault
/// re-runs the faulting instruction forever (greenhub's overflow report
/// owns SIGSEGV and SIGBUS).
pub(crate) fn can_handle(signo: i32) -> bool {
    let forbidden = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    usize::try_from(signo).is_ok_and(|s| (1..SIGNAL_LIMIT).contains(&s)) && !forbidden.contains(&signo)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__error() }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno() }
}

/// The handler: marks the signal pending and writes a wake-up byte. It
/// restores `errno`, which `write` may change under the interrupted code.
extern "C" fn on_signal(signo: libc::c_int) {
    let errno = errno_location();
    // SAFETY: `errno` points at this thread's errno.
    let saved = unsafe { *errno };
    if let Some(flag) = usize::try_from(signo).ok().and_then(|s| PENDING.get(s)) {
        flag.store(true, Ordering::SeqCst);
    }
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 0u8;
        // SAFETY: writes one byte from a live local to an fd that is never
        // closed; EAGAIN (pipe full) is fine, see the module comment.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// Creates the self-pipe and returns its read end (blocking), for the one
/// dispatcher. The write end lives for the rest of the process.
pub(crate) fn open_self_pipe() -> io::Result<OwnedFd> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&read, &write] {
        set_flag(fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
    }
    set_flag(&write, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK)?;
    WRITE_FD.store(std::os::fd::IntoRawFd::into_raw_fd(write), Ordering::SeqCst);
    Ok(read)
}

fn set_flag(fd: &OwnedFd, get: libc::c_int, set: libc::c_int, flag: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    let old = unsafe { libc::fcntl(fd.as_raw_fd(), get) };
    // SAFETY: as above.
    if old < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), set, old | flag) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks until the pipe has bytes, consumes them, and calls `f` with each
/// signal that arrived.
pub(crate) fn wait_pending(read: &OwnedFd, mut f: impl FnMut(i32)) -> io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a live buffer of the given length.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if n == 0 || e.kind() != io::ErrorKind::Interrupted {
            return Err(if n == 0 {
                io::ErrorKind::UnexpectedEof.into()
            } else {
                e
            });
        }
    }
    for (signo, flag) in PENDING.iter().enumerate() {
        if flag.swap(false, Ordering::SeqCst) {
            f(signo as i32);
        }
    }
    Ok(())
}

/// A signal's disposition before ours, to put back.
pub(crate) struct SavedAction(libc::sigaction);

/// Installs the pipe-writing handler for `signo`; returns what it replaced.
pub(crate) fn install(signo: i32) -> io::Result<SavedAction> {
    debug_assert!(WRITE_FD.load(Ordering::SeqCst) >= 0, "the self-pipe exists first");
    // SAFETY: sigaction is plain data; all-zero is a valid value.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_signal as *const () as usize;
    // SA_RESTART: other code's blocking syscalls continue, not fail with
    // EINTR. SA_ONSTACK: a green thread's small stack may be nearly full
    // when the signal lands; the signal frame goes on the alternate stack.
    new.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `new.sa_mask` is valid to initialise.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    // SAFETY: all-zero is a valid sigaction to write into.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `new` is fully initialised, its handler takes one argument
    // (no SA_SIGINFO); `old` is valid to write.
    if unsafe { libc::sigaction(signo, &new, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SavedAction(old))
}

/// Puts back the disposition `install` replaced.
pub(crate) fn restore(signo: i32, saved: &SavedAction) {
    // SAFETY: `saved` came from sigaction for this signal.
    unsafe { libc::sigaction(signo, &saved.0, ptr::null_mut()) };
}

/// Sends `signo` to this process (tests, examples).
pub(crate) fn raise_in_process(signo: i32) -> io::Result<()> {
    // SAFETY: kill with our own pid and a signal number has no memory effects.
    if unsafe { libc::kill(libc::getpid(), signo) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
