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
//! For the hub: `Poller`, its `Event`s and its `Notifier` (the wake from
//! other OS threads): `epoll.rs` on Linux, `kqueue.rs` on macOS and FreeBSD,
//! and on Linux with the `kqueue-on-linux` feature (through libkqueue, so
//! that the kqueue poller is tested on Linux machines).
//!
//! For sockets (`net.rs`): `stream_socket`, `accept`, `adopt_socket`,
//! `SEND_FLAGS` and `set_reuse_port`, which hide `SOCK_NONBLOCK`,
//! `accept4`, `MSG_NOSIGNAL`/`SO_NOSIGPIPE` and `SO_REUSEPORT(_LB)`.
//!
//! For `select.rs`: `poll_now(fds)` (unix.rs): which fds are ready, without
//! waiting.

// The one message an unsupported target gets. kqueue carries 64-bit tokens
// in `udata`, so its systems must be 64-bit.
#[cfg(not(any(
    target_os = "linux",
    all(any(target_os = "macos", target_os = "freebsd"), target_pointer_width = "64")
)))]
compile_error!(
    "greenhub supports Linux, macOS (x86_64, aarch64) and 64-bit FreeBSD; this target is none of them"
);

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
    page_size, poll_now, protect_guard, unmap, write_stderr,
};

// The `monkey` feature defines glibc's own symbols, with Linux's system
// call numbers and C ABI, and waits on the hub's epoll (libkqueue's own
// libc calls would reach the interposed symbols).
#[cfg(all(feature = "monkey", not(all(target_os = "linux", target_env = "gnu"))))]
compile_error!("greenhub's `monkey` feature needs Linux with glibc: it defines libc's own symbols");
#[cfg(all(feature = "monkey", feature = "kqueue-on-linux"))]
compile_error!("greenhub's `monkey` feature does not go with `kqueue-on-linux`");

// The poller (hub/): epoll on Linux, kqueue on macOS and FreeBSD, or on
// Linux through libkqueue when the `kqueue-on-linux` feature asks for it.
#[cfg(all(target_os = "linux", not(feature = "kqueue-on-linux")))]
mod epoll;
#[cfg(all(target_os = "linux", not(feature = "kqueue-on-linux")))]
pub(crate) use epoll::{Event, Notifier, Poller, TAKES_SOCKET_ERRORS};
#[cfg(any(
    target_os = "macos",
    target_os = "freebsd",
    all(target_os = "linux", feature = "kqueue-on-linux")
))]
mod kqueue;
#[cfg(any(
    target_os = "macos",
    target_os = "freebsd",
    all(target_os = "linux", feature = "kqueue-on-linux")
))]
pub(crate) use kqueue::{Event, Notifier, Poller, TAKES_SOCKET_ERRORS};

// Sockets (net/, runtime.rs): the same flags and options everywhere.
mod net;
pub(crate) use net::{accept, adopt_socket, set_reuse_port, stream_socket, SEND_FLAGS};

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
