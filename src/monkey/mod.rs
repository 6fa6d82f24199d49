//! Monkey patching (feature `monkey`): libc's blocking calls park the green
//! thread instead of the OS thread, so std's blocking I/O, and every crate
//! or C library built on it, cooperates inside green threads (gevent's
//! `monkey.patch_all()`).
//!
//! ```no_run
//! use std::io::{Read, Write};
//!
//! greenhub::monkey::patch_all().expect("libc's symbols are greenhub's");
//! let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = server.local_addr().unwrap();
//! // A std server and a std client, green threads of one hub: without the
//! // patch the accept would freeze the hub, and the client would never run.
//! let s = greenhub::spawn(move || {
//!     let (mut conn, _) = server.accept().unwrap();
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap();
//! });
//! let mut c = std::net::TcpStream::connect(addr).unwrap();
//! c.write_all(b"hello").unwrap();
//! let mut buf = [0; 5];
//! c.read_exact(&mut buf).unwrap();
//! s.join().unwrap();
//! ```
//!
//! # How it works
//!
//! As libco, libgo and coost do in C++: greenhub defines libc's own symbols
//! (`recv`, `connect`, `poll`, `nanosleep`, ...), so every caller in the
//! program, Rust's std or a C library, reaches greenhub's function first.
//! Each asks one question: is this a green thread's own code (or the main
//! thread's root code) on a live hub, after [`patch_all`], outside a hub
//! callback? If not, it makes the system call itself (`syscall(2)`) and
//! returns exactly what the kernel returned. If so, it tries the call and,
//! where the kernel would block, parks on the hub's I/O loop (the same
//! registration and park as `greenhub::net`), retrying when the fd is ready.
//!
//! The main thread's root code cooperates too, as gevent's main greenlet
//! does: a blocking call there runs the hub until it can go on.
//!
//! Per fd, greenhub keeps (in a lock-free table cleared by `close`, `dup2`
//! and `dup3`): whether it is a socket or pipe, the user's own
//! non-blocking choice (`fcntl(F_SETFL, O_NONBLOCK)`, `ioctl(FIONBIO)`),
//! and `SO_RCVTIMEO`/`SO_SNDTIMEO` (`setsockopt`). The first time a green
//! thread makes a blocking call on a socket or pipe, greenhub turns on the
//! kernel's `O_NONBLOCK` for it; from then on:
//! - the caller still sees a blocking call: the same results and `errno`;
//!   `EAGAIN` once `SO_RCVTIMEO`/`SO_SNDTIMEO` passes, as from the kernel;
//!   a write of one buffer (`write`, `send`, `sendto`) writes all of it;
//! - `fcntl(F_GETFL)` never shows the flag greenhub set, and a user's
//!   non-blocking fd gets `EAGAIN` at once, as before;
//! - an OS thread (or the blocking pool) using the same fd still blocks:
//!   greenhub emulates the kernel's blocking with `poll`, timeouts included.
//!   `O_NONBLOCK` belongs to the open file, which duplicates share: a
//!   duplicate made with `dup*`/`fcntl(F_DUPFD*)` (`try_clone`) after a
//!   green thread used the fd shares its bookkeeping; one made before, or
//!   inherited, does not, and a blocking call on it from an OS thread then
//!   sees `EAGAIN`;
//! - `close` of an fd a green thread of the same OS thread is parked on
//!   wakes it with `EBADF`, and the number's reuse starts with fresh state.
//!   (A close from another OS thread does not wake it: the kernel does not
//!   wake a blocked `read` on a close either.)
//!
//! # What is covered
//!
//! Sockets and pipes: `read`, `write`, `readv`, `writev`, `recv`,
//! `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `connect`, `accept`,
//! `accept4`; waiting: `poll`, `ppoll` (without a signal mask), `select`;
//! sleeping: `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`; names:
//! `getaddrinfo` (run on [`blocking::run`](crate::blocking::run)'s pool:
//! glibc's resolver makes internal calls that no interposer sees);
//! children: `waitpid`, `wait4` (a `pidfd` waited for on the hub, or the
//! blocking pool where there is none), so `Command::output()` and
//! `Child::wait()` park. `close`, `dup`, `dup2`, `dup3`, `fcntl`,
//! `ioctl(FIONBIO)` and `setsockopt` keep the bookkeeping (`getsockopt`
//! needs none: the kernel keeps the real timeouts, which greenhub passes
//! on). The `_FORTIFY_SOURCE` variants `__read_chk`, `__recv_chk`,
//! `__recvfrom_chk` and `__poll_chk` are covered too.
//!
//! # What is not covered
//!
//! - `std::sync::Mutex`, `Condvar`, `mpsc`, `thread::park` and everything
//!   else built on futexes still block the OS thread: use greenhub's
//!   [`sync`](crate::sync) types, or move the call to
//!   [`blocking::run`](crate::blocking::run).
//! - Regular files (and terminals, eventfds, other devices) do not
//!   cooperate: the kernel reports them always ready. Use
//!   [`blocking::run`](crate::blocking::run) for slow disks.
//! - The standard streams (fds 0, 1 and 2) do not cooperate even when they
//!   are pipes or sockets: they are shared with other processes, whose
//!   calls greenhub's `O_NONBLOCK` would change. A read of a piped stdin
//!   blocks the OS thread: use [`blocking::run`](crate::blocking::run).
//! - Calls libc makes internally (inside `getaddrinfo`, `system`, stdio's
//!   `fread` on a socket) do not go through the symbols.
//! - Of the entry points that C code built with `_FORTIFY_SOURCE` calls,
//!   `__read_chk`, `__recv_chk`, `__recvfrom_chk` and `__poll_chk` are
//!   interposed; others (`__ppoll_chk`) are not.
//! - A signal handler that interrupts a green thread and makes a call that
//!   would block on a blocking socket or pipe would park from the handler;
//!   handlers must only make async-signal-safe calls, which do not block.
//!
//! # Kills and timeouts
//!
//! A kill or an expired [`with_timeout`](crate::with_timeout) unwinds a
//! parked green thread, but it cannot unwind through the C frame of an
//! interposed call (that aborts the process, and its caller is not built to
//! be unwound). So the call returns instead: `-1` with `ECANCELED` for a
//! kill, `ETIMEDOUT` for a timeout (a sleep returns early, as if
//! interrupted with no time left), after releasing its registration. The
//! kill stays pending: the green thread's next park unwinds it, and if it
//! ends first, it ends as killed all the same; the `with_timeout` section
//! returns `Err(Elapsed)` when it ends. Meanwhile every call of this green
//! thread that would park fails the same way at once.
//!
//! # Linking
//!
//! Works in dynamically linked programs on glibc: the executable's
//! definitions come before `libc.so`'s, for Rust code and for shared C
//! libraries alike. [`patch_all`] checks this at run time (the dynamic
//! linker must find greenhub's functions, and a call through the `libc`
//! crate must reach them) and returns an error otherwise, for instance when
//! greenhub is inside a shared library loaded with `dlopen` (its symbols
//! are then not the first the dynamic linker finds). An `LD_PRELOAD`
//! library does not displace them: the executable comes first. Statically linked binaries are
//! not supported: tried here with glibc (`-C target-feature=+crt-static`),
//! the link fails with "duplicate symbol: getaddrinfo" (libc.a's own
//! definition is pulled in too), so the failure is loud, never a silent
//! no-op. musl (static by default) would meet the same duplicates; its
//! target was not installable here, so that is untested. The variadic
//! `fcntl` and `ioctl` are defined with one fixed argument, which is how
//! the Linux C ABIs of x86-64 and aarch64 pass it (checked: the crate
//! builds for both; the tests ran on x86-64). Elsewhere than Linux with
//! glibc, enabling the feature is a compile error.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::greenlet::core::{self, KillUnwind, Outcome, TimeoutUnwind, THROW_KILL};
use crate::hub;

mod fd;
mod hooks;
mod raw;
mod wait;

/// Set by `patch_all`; cleared in a forked child, where the parent's hub
/// state must not be touched.
static PATCHED: AtomicBool = AtomicBool::new(false);

/// Set by the interposed `close` when called with fd -1 (`patch_all`'s probe).
static PROBED: AtomicBool = AtomicBool::new(false);

/// Why [`patch_all`] could not patch.
///
/// ```
/// match greenhub::monkey::patch_all() {
///     Ok(()) => {}
///     Err(e) => eprintln!("not patched ({}): {e}", e.symbol()),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    symbol: &'static str,
    why: &'static str,
}

impl PatchError {
    /// The libc symbol that is not greenhub's (see [`PatchError`]'s
    /// example).
    pub fn symbol(&self) -> &'static str {
        self.symbol
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "greenhub::monkey: `{}` is not greenhub's in this process: {}",
            self.symbol, self.why
        )
    }
}

impl std::error::Error for PatchError {}

/// Makes libc's blocking calls cooperate in green threads, for the whole
/// process (gevent's `monkey.patch_all()`); call it once at the start of
/// `main`. Calling it again does nothing more. See the [module
/// docs](self) for what is covered.
///
/// # Errors
/// [`PatchError`] when the interposed symbols are not in effect: the
/// dynamic linker resolves one of them to another library's definition, or
/// a probe call through the `libc` crate does not reach greenhub's
/// function (see "Linking" in the module docs). Nothing is patched then.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// greenhub::monkey::patch_all().unwrap();
/// let start = Instant::now();
/// let sleepers: Vec<_> = (0..4)
///     .map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(100))))
///     .collect();
/// greenhub::join_all(&sleepers);
/// assert!(start.elapsed() < Duration::from_millis(350)); // together, not 400 ms
/// ```
#[doc(alias = "patch")]
pub fn patch_all() -> Result<(), PatchError> {
    check_symbols(|name| {
        // SAFETY: `name` is a NUL-terminated C string; dlsym only reads it.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
    })?;
    PROBED.store(false, Ordering::SeqCst);
    // SAFETY: closing -1 only fails with EBADF; it is the probe.
    unsafe { libc::close(-1) };
    if !PROBED.load(Ordering::SeqCst) {
        return Err(PatchError {
            symbol: "close",
            why: "a call through the libc crate did not reach greenhub's function",
        });
    }
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic, which
        // is safe in a forked child.
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    });
    PATCHED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Checks that `lookup` (the dynamic linker's answer, 0 for none) finds
/// greenhub's definition of every interposed symbol.
fn check_symbols(lookup: impl Fn(&std::ffi::CStr) -> usize) -> Result<(), PatchError> {
    for (name, ours) in hooks::symbols() {
        let found = lookup(name);
        if found != 0 && found != ours {
            return Err(PatchError {
                symbol: name.to_str().unwrap_or("?"),
                why: "the dynamic linker finds another definition first",
            });
        }
    }
    Ok(())
}

/// Whether [`patch_all`] has taken effect in this process.
///
/// ```
/// greenhub::monkey::patch_all().unwrap();
/// assert!(greenhub::monkey::is_patched());
/// ```
pub fn is_patched() -> bool {
    PATCHED.load(Ordering::Relaxed)
}

/// A forked child does not share the parent's hub: it makes plain calls.
extern "C" fn forked_child() {
    PATCHED.store(false, Ordering::SeqCst);
}

/// Whether a call made now may park: patched, in a green thread's (or the
/// root's) own code on a live hub, not in a hub callback.
#[inline]
fn cooperating() -> bool {
    PATCHED.load(Ordering::Relaxed) && core::running_own_code() && !hub::in_callback()
}

thread_local! {
    /// Throws that landed in an interposed call and were turned into an
    /// error there: (green thread id, throw code). See "Kills and timeouts".
    static DEFERRED: RefCell<Vec<(u64, u32)>> = const { RefCell::new(Vec::new()) };
}

/// A park inside an interposed call unwound with `payload`: keeps the throw
/// pending for the green thread's next park and returns the errno the call
/// fails with. Any other panic cannot cross the C frame: it aborts, loudly.
fn defer(payload: Box<dyn Any + Send>) -> libc::c_int {
    let (code, errno) = if payload.is::<KillUnwind>() {
        (THROW_KILL, libc::ECANCELED)
    } else if let Some(t) = payload.downcast_ref::<TimeoutUnwind>() {
        (t.0, libc::ETIMEDOUT)
    } else {
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not a string)");
        eprintln!(
            "greenhub::monkey: a panic inside an interposed libc call cannot unwind \
             through its C caller; aborting: {msg}"
        );
        std::process::abort();
    };
    core::with_current(|g| {
        g.set_throw(code);
        DEFERRED.with(|d| d.borrow_mut().push((g.id, code)));
    });
    errno
}

/// Whether the current green thread has a deferred throw `code`; forgets it.
pub(crate) fn take_deferred(g: &core::Inner, code: u32) -> bool {
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        let had = d.iter().any(|&(id, c)| id == g.id && c == code);
        if had {
            d.retain(|&(id, c)| !(id == g.id && c == code));
        }
        had
    })
}

/// At the end of a green thread's function: a kill deferred by an
/// interposed call and never delivered since makes the outcome "killed".
pub(crate) fn settle_outcome(outcome: Outcome) -> Outcome {
    let (id, kill) = core::with_current(|g| (g.id, g.throw.get() == THROW_KILL));
    let deferred_kill = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_empty() {
            return false;
        }
        let had = d.iter().any(|&(i, c)| i == id && c == THROW_KILL);
        d.retain(|&(i, _)| i != id);
        had
    });
    if kill && deferred_kill {
        core::with_current(|g| g.throw.set(core::THROW_NONE));
        return Outcome::Killed;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_definition_found_first_is_an_error_naming_it() {
        let theirs = |name: &std::ffi::CStr| {
            if name == c"recv" {
                1
            } else {
                0
            }
        };
        let e = check_symbols(theirs).unwrap_err();
        assert_eq!(e.symbol(), "recv");
        assert!(e.to_string().contains("another definition"), "{e}");
        // Found as ours, or not found at all (a static binary): fine.
        let ours: std::collections::HashMap<_, _> = hooks::symbols().into_iter().collect();
        assert!(check_symbols(|n| ours[n]).is_ok());
        assert!(check_symbols(|_| 0).is_ok());
    }
}
