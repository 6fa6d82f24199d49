//! The per-fd bookkeeping of the interposed calls: for every fd a green
//! thread has used, what it is (does it cooperate?), whether greenhub or the
//! user put it in non-blocking mode, its `SO_RCVTIMEO`/`SO_SNDTIMEO`, and an
//! epoch that `close`/`dup2` bump so that a waiter notices its fd went away
//! and a reused number starts fresh.
//!
//! The table is lock-free (atomics in chunks that are never freed), because
//! the interposed calls are reached from any thread, and from signal
//! handlers: reading it never allocates, and the first chunk (fds below
//! 4096) is static, so the common case never allocates at all.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::raw;

/// Fds per chunk, and chunks: fds below `CHUNK * CHUNKS` (a million) are
/// tracked; larger ones are passed through untouched.
const CHUNK: usize = 4096;
const CHUNKS: usize = 256;

/// `flags` bits.
const KNOWN: u32 = 1;
/// A socket or a pipe/FIFO: blocking calls on it cooperate.
const COOP: u32 = 1 << 1;
/// greenhub turned `O_NONBLOCK` on in the kernel; the user did not ask.
const SYS_NB: u32 = 1 << 2;
/// The user asked for non-blocking mode (`O_NONBLOCK`, `FIONBIO`).
const USER_NB: u32 = 1 << 3;
/// A stream (a `SOCK_STREAM` socket or a pipe): a short read means the
/// receive buffer is empty.
const STREAM: u32 = 1 << 4;
const EPOCH_SHIFT: u32 = 8;

/// One fd's state.
pub(crate) struct FdState {
    /// `KNOWN | COOP | SYS_NB | USER_NB | STREAM`, and the epoch above `EPOCH_SHIFT`.
    flags: AtomicU32,
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO` in nanoseconds, 0 for none.
    rcv_ns: AtomicU64,
    snd_ns: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: FdState = FdState {
    flags: AtomicU32::new(0),
    rcv_ns: AtomicU64::new(0),
    snd_ns: AtomicU64::new(0),
};

/// Fds below `CHUNK`: static, so that most programs never allocate here.
static FIRST: [FdState; CHUNK] = [EMPTY; CHUNK];
/// Later chunks, allocated on first use by a green thread and never freed.
static REST: [AtomicPtr<[FdState; CHUNK]>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// The state of `fd` if its chunk exists; never allocates (safe anywhere).
#[inline]
pub(crate) fn get(fd: libc::c_int) -> Option<&'static FdState> {
    let fd = usize::try_from(fd).ok()?;
    if fd < CHUNK {
        return Some(&FIRST[fd]);
    }
    let chunk = REST.get(fd / CHUNK)?.load(Ordering::Acquire);
    // SAFETY: a non-null chunk pointer came from `new_chunk` (zeroed: valid
    // atomics) in `alloc` and is never freed.
    (!chunk.is_null()).then(|| unsafe { &(*chunk)[fd % CHUNK] })
}

/// The state of `fd`, allocating its chunk if needed (green threads only).
fn alloc(fd: libc::c_int) -> Option<&'static FdState> {
    if let Some(s) = get(fd) {
        return Some(s);
    }
    let slot = REST.get(usize::try_from(fd).ok()? / CHUNK)?;
    let fresh = new_chunk()?;
    if let Err(_other) =
        slot.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
    {
        // SAFETY: `fresh` came from `new_chunk` just above and lost the
        // race, so nothing else has seen it.
        unsafe { std::alloc::dealloc(fresh.cast(), std::alloc::Layout::new::<[FdState; CHUNK]>()) };
    }
    get(fd)
}

/// A zeroed chunk on the heap (all-zero atomics are `EMPTY`), made in
/// place: a chunk is 96 KiB, more than a green thread's stack may hold.
fn new_chunk() -> Option<*mut [FdState; CHUNK]> {
    let layout = std::alloc::Layout::new::<[FdState; CHUNK]>();
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    (!p.is_null()).then_some(p.cast())
}

/// What a caller outside a green thread needs: the fd is in non-blocking
/// mode only because greenhub put it there, so a blocking call must be
/// emulated (with the kernel's poll) to keep the user's blocking semantics.
#[inline]
pub(crate) fn emulate_blocking(fd: libc::c_int) -> Option<&'static FdState> {
    let s = get(fd)?;
    let f = s.flags.load(Ordering::Acquire);
    (f & (SYS_NB | USER_NB) == SYS_NB).then_some(s)
}

impl FdState {
    pub(crate) fn epoch(&self) -> u32 {
        self.flags.load(Ordering::Acquire) >> EPOCH_SHIFT
    }

    /// Whether a blocking call on this fd parks (not a user non-blocking fd,
    /// and greenhub did make it non-blocking).
    pub(crate) fn parks(&self) -> bool {
        self.flags.load(Ordering::Acquire) & (COOP | SYS_NB | USER_NB) == COOP | SYS_NB
    }

    /// `SO_RCVTIMEO` (`read`) or `SO_SNDTIMEO` (`!read`), if set.
    pub(crate) fn timeout(&self, read: bool) -> Option<Duration> {
        let ns = if read { &self.rcv_ns } else { &self.snd_ns }.load(Ordering::Relaxed);
        (ns != 0).then(|| Duration::from_nanos(ns))
    }

    /// Whether the fd was seen by a green thread (its flags are tracked).
    pub(crate) fn known(&self) -> bool {
        self.flags.load(Ordering::Acquire) & KNOWN != 0
    }

    pub(crate) fn set_timeout(&self, read: bool, t: Option<Duration>) {
        let ns = t.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
        if read { &self.rcv_ns } else { &self.snd_ns }.store(ns, Ordering::Relaxed);
    }

    /// Whether a short read means the receive buffer is empty.
    pub(crate) fn stream(&self) -> bool {
        self.flags.load(Ordering::Acquire) & STREAM != 0
    }

    pub(crate) fn user_nonblocking(&self) -> bool {
        self.flags.load(Ordering::Acquire) & USER_NB != 0
    }

    /// Whether greenhub (not the user) set `O_NONBLOCK` on the fd.
    pub(crate) fn greenhub_nonblocking(&self) -> bool {
        self.flags.load(Ordering::Acquire) & SYS_NB != 0
    }

    /// Records the user's non-blocking choice; returns whether the kernel's
    /// `O_NONBLOCK` must stay on regardless (a known fd that cooperates:
    /// greenhub keeps it non-blocking and emulates blocking).
    pub(crate) fn set_user_nonblocking(&self, on: bool) -> bool {
        let mut f = self.flags.load(Ordering::Acquire);
        loop {
            let mut new = if on { f | USER_NB } else { f & !USER_NB };
            if !on && new & (KNOWN | COOP) == KNOWN | COOP {
                new |= SYS_NB;
            }
            match self
                .flags
                .compare_exchange_weak(f, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return new & SYS_NB != 0,
                Err(now) => f = now,
            }
        }
    }

    /// Forgets everything about the fd (it is being closed or replaced) and
    /// bumps the epoch, so waiters and later users see a new fd.
    pub(crate) fn reset(&self) {
        let f = self.flags.load(Ordering::Acquire);
        let epoch = (f >> EPOCH_SHIFT).wrapping_add(1);
        self.flags.store(epoch << EPOCH_SHIFT, Ordering::Release);
        self.rcv_ns.store(0, Ordering::Relaxed);
        self.snd_ns.store(0, Ordering::Relaxed);
    }

    /// Makes `self` describe a duplicate of `from` (they share the open
    /// file description, so its flags), with a new epoch.
    pub(crate) fn copy_from(&self, from: &FdState) {
        self.reset();
        let keep = from.flags.load(Ordering::Acquire) & (KNOWN | COOP | SYS_NB | USER_NB | STREAM);
        self.rcv_ns
            .store(from.rcv_ns.load(Ordering::Relaxed), Ordering::Relaxed);
        self.snd_ns
            .store(from.snd_ns.load(Ordering::Relaxed), Ordering::Relaxed);
        self.flags.fetch_or(keep, Ordering::AcqRel);
    }
}

/// The state of `fd` for a green thread about to make a blocking call:
/// learned from the kernel on first use (type, the user's `O_NONBLOCK`,
/// socket timeouts), and for sockets and pipes the kernel's `O_NONBLOCK`
/// turned on so that the call can park. `None` for a bad or untracked fd.
pub(crate) fn for_green(fd: libc::c_int) -> Option<&'static FdState> {
    let s = alloc(fd)?;
    let f = s.flags.load(Ordering::Acquire);
    if f & KNOWN != 0 {
        return Some(s);
    }
    let mode = raw::file_type(fd)?;
    let is_socket = mode == libc::S_IFSOCK;
    // The standard streams are shared with the parent and other processes:
    // turning on their O_NONBLOCK would change those processes' reads and
    // writes too, so they never cooperate.
    let coop = (is_socket || mode == libc::S_IFIFO) && fd > 2;
    let fl = raw::get_fl(fd)?;
    let mut bits = KNOWN;
    if coop {
        bits |= COOP;
    }
    if fl & libc::O_NONBLOCK != 0 {
        bits |= USER_NB;
    } else if coop && raw::set_fl(fd, fl | libc::O_NONBLOCK) {
        bits |= SYS_NB;
    }
    if mode == libc::S_IFIFO || (is_socket && raw::sock_type(fd) == Some(libc::SOCK_STREAM)) {
        bits |= STREAM;
    }
    if is_socket {
        s.set_timeout(true, raw::sock_timeout(fd, libc::SO_RCVTIMEO));
        s.set_timeout(false, raw::sock_timeout(fd, libc::SO_SNDTIMEO));
    }
    s.flags.fetch_or(bits, Ordering::AcqRel);
    Some(s)
}
