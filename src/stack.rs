//! Green-thread stacks: a per-OS-thread pool of guarded stacks, and the
//! report printed when a green thread overflows its stack.
//!
//! Every stack is one slot of address space, low to high: one guard page,
//! then the usable bytes; the stack grows down from the top towards the
//! guard. Rust probes every page of a large frame, so one guard page is
//! enough to catch any overflow.
//!
//! Where the kernel supports guards without a mapping of their own
//! (`MADV_GUARD_INSTALL`), slots are carved from large slabs, so a million
//! live stacks cost about a thousand mappings. Elsewhere, or when
//! `GREENHUB_STACK_GUARD=mprotect` is set, each stack is its own mapping with
//! an `mprotect` guard: two mappings per stack, and `vm.max_map_count` caps
//! the number of live green threads.
//!
//! Memory is committed only when touched: a fresh stack costs address space,
//! and a green thread that stays shallow costs the one or two pages at the
//! top of its stack. Nothing here pre-faults or clears a stack.

use std::cell::{Cell, RefCell};
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use corosensei::stack::{StackPointer, MIN_STACK_SIZE};

use crate::sys;

/// Default usable size of a green thread's stack, in bytes: 64 KiB.
///
/// Measured on x86-64 Linux by filling a stack with a pattern, running code
/// in a coroutine on it and finding the deepest byte changed (the
/// `default_size_fits_*` tests in `src/stack/tests.rs`), debug build (release):
/// the coroutine's own frames 0.7 KiB (0.1); `println!` of floats and a
/// `{:#?}` struct 2.8 KiB (2.0); `format!` 3.1 KiB (2.1); filling a
/// `HashMap` and a `BTreeMap` 4.7 KiB (1.2); a panic caught by
/// `catch_unwind` while the default hook prints its message 6.2 KiB (5.4).
/// The deepest is the first panic of a process run with `RUST_BACKTRACE=1`,
/// whose hook symbolises the backtrace: 23 KiB (22). 64 KiB leaves nearly
/// three times that; 32 KiB would leave too little.
///
/// The size is address space, not memory: only touched pages are committed,
/// so a green thread parked in a sleep costs the top page of its stack
/// (plus about 130 bytes of page tables per 68 KiB slot).
///
/// ```
/// // Deeply recursive code asks for more.
/// let h = greenhub::Builder::new()
///     .stack_size(16 * greenhub::DEFAULT_STACK_SIZE)
///     .spawn(|| 42)
///     .unwrap();
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// Bytes of address space reserved per slab. Large, so that mappings stay
/// few (a million 68 KiB slots take about a thousand slabs), yet far from
/// exhausting the 128 TiB of a 64-bit address space.
const SLAB_BYTES: usize = 64 << 20;

/// Bytes of returned stacks per size class kept "hot" (memory intact, reused
/// first). Stacks returned beyond this have their memory released by
/// [`trim`], which the hub calls when it is idle, so a burst of green threads
/// does not leave its memory behind, and the burst itself pays no system
/// call per finished green thread (a million sleepers waking within a
/// second must not each wait for an `madvise`).
const HOT_BYTES: usize = 16 << 20;

/// Bounds on the number of hot stacks per size class, whatever the size.
const HOT_MIN: usize = 16;
const HOT_MAX: usize = 1024;

/// The environment variable that forces `mprotect` guards (value
/// `mprotect`), e.g. to test the fallback on a kernel with lightweight ones.
const GUARD_ENV: &str = "GREENHUB_STACK_GUARD";

/// How this process makes guard pages; decided once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GuardMode {
    /// Slots carved from slabs, guards installed by `MADV_GUARD_INSTALL`.
    Slab,
    /// One mapping per stack, guard made by `mprotect` (splits it in two).
    Separate,
}

/// The guard mode of this process: lightweight guards if the kernel has
/// them and the environment does not force `mprotect`.
fn guard_mode() -> GuardMode {
    static MODE: OnceLock<GuardMode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let forced = std::env::var_os(GUARD_ENV).is_some_and(|v| v == "mprotect");
        if !forced && sys::light_guards_supported() {
            GuardMode::Slab
        } else {
            GuardMode::Separate
        }
    })
}

/// A guarded stack for one green thread.
///
/// Sixteen bytes, because it is stored inline in every coroutine. `!Send`
/// (through the pointer): it belongs to the pool of the OS thread that took
/// it, and goes back there when dropped.
#[derive(Debug)]
pub(crate) struct Stack {
    /// One past the highest usable byte; page aligned.
    base: NonNull<u8>,
    /// Usable bytes between the guard and `base`; a multiple of the page.
    size: u32,
}

impl Stack {
    /// Takes a stack of at least `size` usable bytes from this thread's pool,
    /// or maps a new one.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `size` exceeds 4 GiB. When address space, memory or
    /// mappings run out, the OS error's kind (usually `OutOfMemory`) with a
    /// message naming the limit that was hit and how to raise it.
    pub(crate) fn new(size: usize) -> io::Result<Stack> {
        let size = class_size(size)?;
        let base = POOL
            .try_with(|pool| pool.borrow_mut().take(size))
            .map_err(|_| io::Error::other("greenhub: cannot take a stack while this thread is exiting"))??;
        debug_assert_eq!(base % sys::page_size(), 0);
        Ok(Stack {
            // SAFETY: `take` returns the top of a mapped slot, never 0.
            base: unsafe { NonNull::new_unchecked(base as *mut u8) },
            size: size as u32,
        })
    }

    /// Usable bytes, excluding the guard page.
    pub(crate) fn usable_size(&self) -> usize {
        self.size as usize
    }

    /// The guard region, as (lowest address, one past the highest).
    pub(crate) fn guard(&self) -> (usize, usize) {
        let hi = self.base.as_ptr() as usize - self.usable_size();
        (hi - guard_size(), hi)
    }
}

/// Releases the memory of up to `budget` pooled stacks beyond what the pool
/// keeps hot; returns whether more remain. The hub calls this when it is
/// about to sleep, in small budgets so I/O is not kept waiting.
pub(crate) fn trim(budget: usize) -> bool {
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.excess && pool.trim(budget)
    })
    .unwrap_or(false)
}

/// Bytes of guard below every stack: one page.
pub(crate) fn guard_size() -> usize {
    sys::page_size()
}

// SAFETY: `base` is the page-aligned top of `size` bytes of read-write
// memory owned by this value, and `limit` is the bottom of the guard page
// right below them, which faults on any access (installed when the slot was
// created and never removed while the slot exists).
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        // SAFETY: `base` is a non-null pointer.
        unsafe { NonZeroUsize::new_unchecked(self.base.as_ptr() as usize) }
    }

    fn limit(&self) -> StackPointer {
        // SAFETY: the guard sits above address 0, which is never mapped.
        unsafe { NonZeroUsize::new_unchecked(self.guard().0) }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let (base, size) = (self.base.as_ptr() as usize, self.usable_size());
        // If the pool is gone (its thread is exiting), it may have unmapped
        // or leaked the slab; leaking the slot is the only safe choice.
        let _ = POOL.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                pool.give_back(base, size);
            }
        });
    }
}

/// The usable size of the class serving a request: rounded up to pages, at
/// least corosensei's minimum, at most what `Stack::size` holds.
fn class_size(size: usize) -> io::Result<usize> {
    let page = sys::page_size();
    let rounded = size
        .max(MIN_STACK_SIZE)
        .checked_next_multiple_of(page)
        .filter(|&s| s <= u32::MAX as usize - page);
    rounded.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("greenhub: a green thread stack of {size} bytes is larger than 4 GiB"),
        )
    })
}

/// How many returned stacks of `size` usable bytes to keep hot.
fn hot_limit(size: usize) -> usize {
    (HOT_BYTES / size).clamp(HOT_MIN, HOT_MAX)
}

thread_local! {
    /// This OS thread's stacks. Stacks never cross threads, so no locking.
    static POOL: RefCell<Pool> = const { RefCell::new(Pool::new()) };
}

/// This OS thread's stacks: handed out, and kept in the pool for reuse
/// (for `debug::run_info`).
pub(crate) fn stats() -> (usize, usize) {
    POOL.try_with(|p| {
        let p = p.borrow();
        let pooled = p.classes.iter().map(|c| c.hot.len + c.cold.len()).sum();
        (p.outstanding, pooled)
    })
    .unwrap_or((0, 0))
}

/// The stacks of one OS thread, by size class.
struct Pool {
    /// One entry per size ever requested; few in practice, so a linear
    /// search (most recently added last) is fastest.
    classes: Vec<Class>,
    /// Every slab mapped by this pool, as (address, length), to unmap at
    /// thread exit.
    slabs: Vec<(usize, usize)>,
    /// Stacks handed out and not yet returned; slabs can be unmapped only
    /// when this is zero.
    outstanding: usize,
    /// Some class may hold more hot stacks than its limit (see `trim`).
    excess: bool,
}

/// Returned stacks with their memory intact, newest first, linked through
/// two words at the top of each stack (`next`, then `prev`): a returned
/// stack's memory is the pool's, and its top page is resident anyway. No
/// allocation per return: with a `Vec` here, a burst of a million green
/// threads ending grew it through ever larger buffers, and freeing each old
/// one made glibc consolidate every small free chunk in the heap (tens of
/// milliseconds each time, measured as steps in the timer benchmark).
#[derive(Default)]
struct HotList {
    head: usize,
    tail: usize,
    len: usize,
}

impl HotList {
    /// The link words of the stack whose top is `base`.
    fn links(base: usize) -> *mut [usize; 2] {
        (base - 2 * std::mem::size_of::<usize>()) as *mut [usize; 2]
    }

    fn push_front(&mut self, base: usize) {
        // SAFETY: `base` is the top of a stack just returned to the pool:
        // its usable memory is mapped read-write, and nothing else uses it
        // until the pool hands it out again. `head`, if any, is such a stack.
        unsafe {
            Self::links(base).write([self.head, 0]);
            if self.head != 0 {
                (*Self::links(self.head))[1] = base;
            }
        }
        self.head = base;
        if self.tail == 0 {
            self.tail = base;
        }
        self.len += 1;
    }

    fn pop_front(&mut self) -> Option<usize> {
        let base = std::num::NonZeroUsize::new(self.head)?.get();
        // SAFETY: every stack in the list is the pool's, links written by
        // `push_front`.
        let [next, _] = unsafe { Self::links(base).read() };
        self.unlink(base, next, 0);
        Some(base)
    }

    fn pop_back(&mut self) -> Option<usize> {
        let base = std::num::NonZeroUsize::new(self.tail)?.get();
        // SAFETY: as in `pop_front`.
        let [_, prev] = unsafe { Self::links(base).read() };
        self.unlink(base, 0, prev);
        Some(base)
    }

    /// Takes out `base`, an end of the list, whose neighbours are `next`
    /// and `prev`.
    fn unlink(&mut self, base: usize, next: usize, prev: usize) {
        if self.head == base {
            self.head = next;
        }
        if self.tail == base {
            self.tail = prev;
        }
        // SAFETY: `next` and `prev`, when non-zero, are stacks in the list.
        unsafe {
            if next != 0 {
                (*Self::links(next))[1] = 0;
            }
            if prev != 0 {
                (*Self::links(prev))[0] = 0;
            }
        }
        self.len -= 1;
    }
}

/// Free stacks of one usable size, identified by their top address.
struct Class {
    /// Usable bytes of every stack in this class.
    size: usize,
    /// Returned stacks whose memory is intact: the cheapest to reuse.
    hot: HotList,
    /// Returned stacks whose memory was released (slab mode only); reusing
    /// one costs page faults, not a system call.
    cold: Vec<usize>,
    /// Slots carved with their guards but never used yet (tops, the
    /// lowest last): address space only, nothing touched.
    fresh: Vec<usize>,
    /// The unused part of this class's newest slab, `[next, end)`.
    next: usize,
    end: usize,
}

/// Slots carved (guards installed) per system call: guards are installed
/// for a batch at once (see `sys::install_light_guards`), and the batch's
/// other slots wait, untouched, in `Class::fresh`.
const CARVE_BATCH: usize = 64;

impl Pool {
    const fn new() -> Pool {
        Pool {
            classes: Vec::new(),
            slabs: Vec::new(),
            outstanding: 0,
            excess: false,
        }
    }

    /// Index of the class for `size`, created if new.
    fn class_index(&mut self, size: usize) -> usize {
        if let Some(i) = self.classes.iter().position(|c| c.size == size) {
            return i;
        }
        self.classes.push(Class {
            size,
            hot: HotList::default(),
            cold: Vec::new(),
            fresh: Vec::new(),
            next: 0,
            end: 0,
        });
        self.classes.len() - 1
    }

    /// Top address of a free stack of `size` usable bytes.
    fn take(&mut self, size: usize) -> io::Result<usize> {
        let i = self.class_index(size);
        let class = &mut self.classes[i];
        let base = match class.hot.pop_front().or_else(|| class.cold.pop()) {
            Some(base) => base,
            None => match guard_mode() {
                GuardMode::Slab => self.carve(i)?,
                GuardMode::Separate => map_separate(size)?,
            },
        };
        self.outstanding += 1;
        Ok(base)
    }

    /// Carves a new slot for class `i` from its slab (mapping a new slab if
    /// the current one is used up) and installs the slot's guard.
    /// Slots are carved `CARVE_BATCH` at a time, handed out in address order.
    fn carve(&mut self, i: usize) -> io::Result<usize> {
        let page = sys::page_size();
        let class = &mut self.classes[i];
        if let Some(base) = class.fresh.pop() {
            return Ok(base);
        }
        let slot = class.size + page;
        if class.end - class.next < slot {
            let (addr, len) = map_slab(slot, class.size)?;
            self.slabs.push((addr, len));
            (class.next, class.end) = (addr, addr + len);
        }
        let n = ((class.end - class.next) / slot).min(CARVE_BATCH);
        let mut lows = [0usize; CARVE_BATCH];
        for (k, lo) in lows[..n].iter_mut().enumerate() {
            *lo = class.next + k * slot;
        }
        sys::install_light_guards(&lows[..n], page).map_err(|e| map_error(e, class.size))?;
        class.next += n * slot;
        class.fresh.extend(lows[1..n].iter().rev().map(|lo| lo + slot));
        Ok(lows[0] + slot)
    }

    /// Takes back the stack whose top is `base`, hot; [`trim`] releases
    /// the excess later.
    fn give_back(&mut self, base: usize, size: usize) {
        self.outstanding -= 1;
        let Some(class) = self.classes.iter_mut().find(|c| c.size == size) else {
            debug_assert!(false, "stack returned to a pool without its class");
            return;
        };
        class.hot.push_front(base);
        self.excess = self.excess || class.hot.len > hot_limit(size);
    }

    /// Releases the memory of up to `budget` hot stacks beyond the hot
    /// limits, oldest first; returns whether excess remains.
    fn trim(&mut self, mut budget: usize) -> bool {
        let mut more = false;
        for class in &mut self.classes {
            let excess = class.hot.len.saturating_sub(hot_limit(class.size));
            let n = excess.min(budget);
            budget -= n;
            more |= n < excess;
            for base in (0..n).filter_map(|_| class.hot.pop_back()) {
                match guard_mode() {
                    GuardMode::Slab => {
                        sys::discard(base - class.size, class.size);
                        class.cold.push(base);
                    }
                    // Mappings are the scarce resource in this mode (two
                    // per stack), and malloc needs them too: give them back.
                    GuardMode::Separate => {
                        let page = sys::page_size();
                        sys::unmap(base - class.size - page, class.size + page);
                    }
                }
            }
        }
        self.excess = more;
        more
    }
}

impl Drop for Pool {
    /// Unmaps what no live stack can use. A stack still alive now (held by
    /// another thread-local that is destroyed later) keeps its memory: in
    /// slab mode that means every slab stays mapped.
    fn drop(&mut self) {
        if self.classes.is_empty() {
            return;
        }
        let page = sys::page_size();
        match guard_mode() {
            GuardMode::Slab if self.outstanding == 0 => {
                for &(addr, len) in &self.slabs {
                    sys::unmap(addr, len);
                }
            }
            GuardMode::Slab => {}
            GuardMode::Separate => {
                for class in &mut self.classes {
                    while let Some(base) = class.hot.pop_front() {
                        sys::unmap(base - class.size - page, class.size + page);
                    }
                }
            }
        }
    }
}

/// Maps a slab of many `slot`-byte slots; under an address-space limit too
/// tight for that, a slab of one slot.
fn map_slab(slot: usize, size: usize) -> io::Result<(usize, usize)> {
    let slots = (SLAB_BYTES / slot).max(1);
    match sys::map_stack_region(slots * slot) {
        Ok(addr) => Ok((addr, slots * slot)),
        Err(_) if slots > 1 => match sys::map_stack_region(slot) {
            Ok(addr) => Ok((addr, slot)),
            Err(e) => Err(map_error(e, size)),
        },
        Err(e) => Err(map_error(e, size)),
    }
}

/// Maps one stack of `size` usable bytes with its own `mprotect` guard, and
/// returns its top.
fn map_separate(size: usize) -> io::Result<usize> {
    let page = sys::page_size();
    let len = size + page;
    let addr = sys::map_stack_region(len).map_err(|e| map_error(e, size))?;
    if let Err(e) = sys::protect_guard(addr, page) {
        sys::unmap(addr, len);
        return Err(map_error(e, size));
    }
    Ok(addr + len)
}

/// Explains a failure to map or guard a stack of `size` usable bytes: which
/// limit was hit and how to raise it, keeping the OS error's kind.
fn map_error(err: io::Error, size: usize) -> io::Error {
    let kib = size / 1024;
    let message = if err.raw_os_error() != Some(libc::ENOMEM) {
        format!("greenhub: cannot map a {kib} KiB green thread stack: {err}")
    } else if let Some((count, max)) = mappings_near_limit() {
        format!(
            "greenhub: cannot map a green thread stack: the process has {count} memory \
             mappings and vm.max_map_count is {max}; raise it (sysctl -w \
             vm.max_map_count={}) or use fewer live green threads",
            max.saturating_mul(4)
        )
    } else if let Some(limit) = sys::address_space_limit() {
        format!(
            "greenhub: cannot map a {kib} KiB green thread stack: out of address space \
             under RLIMIT_AS ({} MiB); raise it (ulimit -v) or use fewer or smaller \
             green threads ({err})",
            limit >> 20
        )
    } else {
        format!(
            "greenhub: cannot map a {kib} KiB green thread stack: out of memory; use \
             fewer or smaller green threads ({err})"
        )
    };
    io::Error::new(err.kind(), message)
}

/// The process's mapping count and the cap, if the count is within 1% of
/// the cap (other threads may have unmapped a few since the failure).
fn mappings_near_limit() -> Option<(usize, usize)> {
    let count = sys::mapping_count()?;
    let max = sys::max_map_count()?;
    (count + max / 100 >= max).then_some((count, max))
}

/// Which green thread is running on this OS thread, for the overflow report.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Running {
    /// Lowest address of its stack's guard region.
    pub(crate) guard_lo: usize,
    /// One past the highest address of the guard region.
    pub(crate) guard_hi: usize,
    /// Usable bytes of its stack.
    pub(crate) size: usize,
    /// Its id, as shown to users.
    pub(crate) id: u64,
    /// Its name, which must stay valid while it is the running one.
    pub(crate) name: Option<NonNull<str>>,
}

/// Tells the fault handler which green thread runs on the faulting OS
/// thread (`None`: the thread's own stack). Asked only when a fault happens,
/// so switches pay nothing for the report; it must only read memory
/// (async-signal-safe). Stored as a `fn` address; 0 until installed.
pub(crate) type Describe = fn() -> Option<Running>;
static DESCRIBE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread has been prepared by `install_overflow_handler`.
    static HANDLER_READY: Cell<bool> = const { Cell::new(false) };
}

/// Prepares this thread to report green-thread stack overflows: installs the
/// process-wide SIGSEGV/SIGBUS handler (once) and gives this thread an
/// alternate signal stack if it has none. Cheap after the first call.
/// `describe` names the running green thread (one per process: the
/// greenlet layer's).
pub(crate) fn install_overflow_handler(describe: Describe) {
    if HANDLER_READY.with(Cell::get) {
        return;
    }
    DESCRIBE.store(describe as usize, Ordering::Relaxed);
    sys::install_fault_handler(check_overflow);
    // Without a signal stack the handler cannot run on an overflowed stack;
    // the kernel then kills the process with SIGSEGV, which is still no
    // silent corruption. Retry on the next call.
    if sys::ensure_alt_stack().is_ok() {
        HANDLER_READY.with(|ready| ready.set(true));
    }
}

/// Called by the fault handler with the faulting address: if it lies in the
/// running green thread's guard, report the overflow and abort; otherwise
/// return so the fault goes to the previous handler.
fn check_overflow(addr: usize) {
    let f = DESCRIBE.load(Ordering::Relaxed);
    if f == 0 {
        return;
    }
    // SAFETY: a non-zero DESCRIBE was stored from a `Describe` fn pointer in
    // `install_overflow_handler`; fn pointers and usize have the same size.
    let describe: Describe = unsafe { std::mem::transmute::<usize, Describe>(f) };
    let Some(running) = describe() else {
        return;
    };
    if !(running.guard_lo..running.guard_hi).contains(&addr) {
        return;
    }
    overflow_report(&running).flush();
    sys::abort();
}

/// Builds `green thread '<name>' (#<id>) overflowed its <N> KiB stack\n`.
fn overflow_report(running: &Running) -> Report {
    // SAFETY: the greenlet layer keeps the name alive while its green thread
    // is the running one (documented on `Running::name`).
    let name = running.name.map(|name| unsafe { name.as_ref() });
    let mut report = Report::new();
    report.push(b"green thread '");
    report.push(name.unwrap_or("<unnamed>").as_bytes());
    report.push(b"' (#");
    report.push_decimal(running.id);
    report.push(b") overflowed its ");
    report.push_decimal((running.size / 1024) as u64);
    report.push(b" KiB stack\n");
    report
}

/// A message assembled without allocating, for the signal handler: bytes
/// accumulate in a fixed buffer that is written to stderr when full.
struct Report {
    buf: [u8; 256],
    len: usize,
}

impl Report {
    fn new() -> Report {
        Report {
            buf: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.flush();
        }
        if bytes.len() > self.buf.len() {
            sys::write_stderr(bytes);
            return;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn push_decimal(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn flush(&mut self) {
        sys::write_stderr(self.as_bytes());
        self.len = 0;
    }
}

#[cfg(test)]
mod tests;
