//! What every Unix shares: anonymous mappings, `mprotect` guards, the fault
//! signal handler and alternate signal stacks.

use std::cell::Cell;
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use super::{fault_address, prepare_stack_region, STACK_MAP_FLAGS};

/// Size of the signal stack we give threads that have none. The fault
/// handler needs well under 1 KiB, but it chains to handlers we do not know;
/// only touched pages cost memory.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// The size of a memory page. Read once: it is asked on every fresh stack.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(page).unwrap_or(4096);
    PAGE.store(page, Ordering::Relaxed);
    page
}

/// Reserves `len` bytes (a multiple of the page size) of read-write address
/// space, committed page by page only when touched.
pub(crate) fn map_stack_region(len: usize) -> io::Result<usize> {
    // SAFETY: a fresh anonymous mapping at an address the kernel chooses
    // cannot alias anything we own.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            STACK_MAP_FLAGS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    prepare_stack_region(addr as usize, len);
    Ok(addr as usize)
}

/// Returns `[addr, addr + len)` to the kernel.
pub(crate) fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller mapped this range and nothing refers to it any more.
    let rc = unsafe { libc::munmap(addr as *mut libc::c_void, len) };
    debug_assert_eq!(rc, 0, "munmap of a range we mapped failed");
}

/// Makes `[addr, addr + len)` inaccessible, so touching it faults.
pub(crate) fn protect_guard(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and keeps nothing in it.
    let rc = unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Releases the memory behind `[addr, addr + len)` but keeps the range
/// mapped; it reads as zeroes afterwards. Guard markers survive this.
pub(crate) fn discard(addr: usize, len: usize) {
    // SAFETY: the caller owns the range and no longer needs its contents.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    debug_assert_eq!(rc, 0, "MADV_DONTNEED on a range we mapped failed");
}

/// The soft address-space limit (`RLIMIT_AS`) in bytes, if one is set.
pub(crate) fn address_space_limit() -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to write into.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Sets the soft address-space limit, for tests of the out-of-memory path.
#[cfg(test)]
pub(crate) fn set_address_space_limit(bytes: libc::rlim_t) -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to write into.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    limit.rlim_cur = bytes;
    // SAFETY: `limit` is a valid rlimit; lowering the soft limit is allowed.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The handler that was installed for one signal before ours, so faults that
/// are not green-thread overflows reach it (std's own overflow check, a
/// debugger's, or the default action).
struct Previous {
    /// `sa_sigaction` (or `sa_handler`) of the previous disposition.
    handler: AtomicUsize,
    /// Its `sa_flags`, to know whether it takes three arguments.
    flags: AtomicI32,
}

impl Previous {
    const fn new() -> Previous {
        Previous {
            handler: AtomicUsize::new(libc::SIG_DFL),
            flags: AtomicI32::new(0),
        }
    }
}

/// Previous dispositions of SIGSEGV and SIGBUS, written once before our
/// handler is installed and only read afterwards (atomics keep the reads in
/// the signal handler sound).
static PREVIOUS: [Previous; 2] = [Previous::new(), Previous::new()];

/// The check run on every fault address; set once with the handler.
static FAULT_CHECK: OnceLock<fn(usize)> = OnceLock::new();

/// Signals whose faults we inspect, in the order of `PREVIOUS`.
const FAULT_SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs, once per process, a SIGSEGV/SIGBUS handler that runs on the
/// alternate signal stack, passes the fault address to `check` (which does
/// not return if it recognises the fault), and otherwise chains to whatever
/// handler was installed before.
pub(crate) fn install_fault_handler(check: fn(usize)) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = FAULT_CHECK.set(check);
        for (signal, previous) in FAULT_SIGNALS.into_iter().zip(&PREVIOUS) {
            install_one(signal, previous);
        }
    });
}

/// Records the current disposition of `signal` in `previous`, then installs
/// `handle_fault`. Recording first means the handler never reads an unset
/// `previous`.
fn install_one(signal: libc::c_int, previous: &Previous) {
    // SAFETY: sigaction is plain data; all-zero is a valid value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only (null new action); `old` is valid to write.
    if unsafe { libc::sigaction(signal, ptr::null(), &mut old) } != 0 {
        return;
    }
    previous.handler.store(old.sa_sigaction, Ordering::Release);
    previous.flags.store(old.sa_flags, Ordering::Release);
    // SAFETY: as above, all-zero is a valid sigaction.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handle_fault as *const () as usize;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `new.sa_mask` is valid to initialise.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    // SAFETY: `new` is a fully initialised action whose handler has the
    // three-argument signature that SA_SIGINFO promises.
    unsafe { libc::sigaction(signal, &new, ptr::null_mut()) };
}

/// The SIGSEGV/SIGBUS handler. Runs on the alternate signal stack, so it
/// works even when the faulting stack is the one that overflowed.
extern "C" fn handle_fault(signal: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if let Some(check) = FAULT_CHECK.get() {
        // SAFETY: the kernel passed `info` for a fault signal (SA_SIGINFO).
        check(unsafe { fault_address(info) });
    }
    let index = usize::from(signal == libc::SIGBUS);
    let handler = PREVIOUS[index].handler.load(Ordering::Acquire);
    let flags = PREVIOUS[index].flags.load(Ordering::Acquire);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Returning re-runs the faulting instruction, which now takes the
        // default action (terminate, with a core dump if enabled).
        reset_to_default(signal);
    } else if flags & libc::SA_SIGINFO != 0 {
        type Action = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
        // SAFETY: it was installed with SA_SIGINFO, so it has this signature.
        let action: Action = unsafe { std::mem::transmute::<usize, Action>(handler) };
        action(signal, info, ctx);
    } else {
        type Handler = extern "C" fn(libc::c_int);
        // SAFETY: installed without SA_SIGINFO, so it takes just the signal.
        let handler: Handler = unsafe { std::mem::transmute::<usize, Handler>(handler) };
        handler(signal);
    }
}

/// Restores the default disposition of `signal`; async-signal-safe.
fn reset_to_default(signal: libc::c_int) {
    // SAFETY: all-zero is a valid sigaction; SIG_DFL is 0 on every Unix.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = libc::SIG_DFL;
    // SAFETY: `action` is fully initialised.
    unsafe { libc::sigaction(signal, &action, ptr::null_mut()) };
}

/// A signal stack this module mapped for the current thread, unmapped when
/// the thread exits.
struct OwnedAltStack(Cell<Option<(usize, usize)>>);

impl Drop for OwnedAltStack {
    fn drop(&mut self) {
        let Some((addr, len)) = self.0.get() else {
            return;
        };
        // SAFETY: all-zero is a valid stack_t to write into.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: querying only; `current` is valid to write.
        unsafe { libc::sigaltstack(ptr::null(), &mut current) };
        if current.ss_sp as usize != addr + page_size() {
            // Someone replaced it; they may still use our memory. Leak it.
            return;
        }
        let disable = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: ALT_STACK_SIZE,
        };
        // SAFETY: disabling the signal stack of this (exiting) thread, which
        // is not running a handler now.
        unsafe { libc::sigaltstack(&disable, ptr::null_mut()) };
        unmap(addr, len);
    }
}

thread_local! {
    /// The signal stack we installed on this thread, if any.
    static OWNED_ALT_STACK: OwnedAltStack = const { OwnedAltStack(Cell::new(None)) };
}

/// Makes sure this thread has an alternate signal stack, so the fault
/// handler can run when the thread's current stack has overflowed. Threads
/// from std already have one; others get a guarded one freed at thread exit.
pub(crate) fn ensure_alt_stack() -> io::Result<()> {
    // SAFETY: all-zero is a valid stack_t to write into.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: querying only; `current` is valid to write.
    if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    let page = page_size();
    let len = page + ALT_STACK_SIZE;
    let addr = map_stack_region(len)?;
    if let Err(e) = protect_guard(addr, page) {
        unmap(addr, len);
        return Err(e);
    }
    let stack = libc::stack_t {
        ss_sp: (addr + page) as *mut libc::c_void,
        ss_flags: 0,
        ss_size: ALT_STACK_SIZE,
    };
    // SAFETY: `stack` describes memory we own and keep until thread exit.
    if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } != 0 {
        let e = io::Error::last_os_error();
        unmap(addr, len);
        return Err(e);
    }
    OWNED_ALT_STACK.with(|owned| owned.0.set(Some((addr, len))));
    Ok(())
}

/// Writes all of `bytes` to stderr with write(2); async-signal-safe, for
/// reports from the fault handler. Errors are ignored: there is no one left
/// to tell.
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable slice of the given length.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Aborts the process (SIGABRT); async-signal-safe.
pub(crate) fn abort() -> ! {
    // SAFETY: abort has no preconditions and never returns.
    unsafe { libc::abort() }
}

/// Which of `fds` are ready now, without waiting: poll(2) with a zero
/// timeout, filling each entry's `revents` (for `select.rs`, which parks on
/// the hub itself when none is).
pub(crate) fn poll_now(fds: &mut [libc::pollfd]) -> io::Result<()> {
    loop {
        // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfds,
        // and a zero timeout never blocks.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
