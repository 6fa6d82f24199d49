//! The platform layer: the only place in greenhub with `cfg(target_os)`.
//!
//! Every platform supplies the same vocabulary, so the modules above stay
//! platform-neutral.
//!
//! For stacks (`stack.rs`), from `unix.rs` (every Unix):
//! - `page_size()`: the size of a memory page, read once;
//! - `map_stack_region(len)`: reserve `len` bytes of read-write address space
//!   whose memory is committed only when touched;
//! - `unmap(addr, len)`: give an address range back to the kernel;
//! - `protect_guard(addr, len)`: make a range inaccessible with `mprotect`
//!   (splits the mapping: one more mapping per guard);
//! - `discard(addr, len)`: release the memory behind a range, keep the range;
//! - `address_space_limit()`: the soft `RLIMIT_AS`, if there is one;
//! - `install_fault_handler(check)`: route SIGSEGV/SIGBUS fault addresses to
//!   `check`, then chain to the handler that was installed before;
//! - `ensure_alt_stack()`: give this thread a signal stack if it has none;
//! - `write_stderr(bytes)` and `abort()`: async-signal-safe reporting.
//!
//! From the per-OS file (`linux.rs`, or `other.rs` elsewhere):
//! - `light_guards_supported()` and `install_light_guards(addrs, len)`:
//!   guards that cost no extra mapping (`MADV_GUARD_INSTALL`, Linux >=
//!   6.13), many in one system call where the kernel allows;
//! - `mapping_count()` and `max_map_count()`: the process's mappings and the
//!   kernel's cap on them, for error messages and tests;
//! - `fault_address(info)`: the faulting address in a `siginfo_t`;
//! - `STACK_MAP_FLAGS` and `prepare_stack_region(addr, len)`: how
//!   `map_stack_region` maps and tunes stack memory (private to `sys`);
//! - tests only: `resident_bytes()` here, `set_address_space_limit(bytes)`
//!   in `unix.rs`.
//!
//! For the hub: `Poller` (`epoll.rs` on Linux).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(not(target_os = "linux"))]
mod other;
mod unix;

#[cfg(all(test, target_os = "linux"))]
pub(crate) use linux::resident_bytes;
#[cfg(target_os = "linux")]
use linux::{fault_address, prepare_stack_region, STACK_MAP_FLAGS};
#[cfg(target_os = "linux")]
pub(crate) use linux::{install_light_guards, light_guards_supported, mapping_count, max_map_count};
#[cfg(all(test, not(target_os = "linux")))]
pub(crate) use other::resident_bytes;
#[cfg(not(target_os = "linux"))]
use other::{fault_address, prepare_stack_region, STACK_MAP_FLAGS};
#[cfg(not(target_os = "linux"))]
pub(crate) use other::{install_light_guards, light_guards_supported, mapping_count, max_map_count};
#[cfg(test)]
pub(crate) use unix::set_address_space_limit;
pub(crate) use unix::{
    abort, address_space_limit, discard, ensure_alt_stack, install_fault_handler, map_stack_region,
    page_size, protect_guard, unmap, write_stderr,
};

// The poller (hub.rs): epoll on Linux.
#[cfg(target_os = "linux")]
mod epoll;
#[cfg(target_os = "linux")]
pub(crate) use epoll::{Event, EventFd, Poller};

// Signals through a self-pipe (signal.rs); every Unix.
pub(crate) mod signal;

/// Hints the CPU to bring the cache line at `addr` in soon; never faults.
#[inline]
pub(crate) fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is only a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
