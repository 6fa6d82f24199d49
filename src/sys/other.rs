//! Unix systems other than Linux: guards by `mprotect` only, no mapping cap
//! to report.

use std::io;

/// Flags for stack mappings: private anonymous memory, committed on touch.
pub(crate) const STACK_MAP_FLAGS: libc::c_int = libc::MAP_PRIVATE | libc::MAP_ANON;

/// Nothing to tune on these systems.
pub(crate) fn prepare_stack_region(_addr: usize, _len: usize) {}

/// No guard without a mapping of its own here; stacks use `mprotect`.
pub(crate) fn install_light_guards(_addrs: &[usize], _len: usize) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Lightweight guards are a Linux feature.
pub(crate) fn light_guards_supported() -> bool {
    false
}

/// Not known on this system.
pub(crate) fn mapping_count() -> Option<usize> {
    None
}

/// This system has no per-process mapping cap to report.
pub(crate) fn max_map_count() -> Option<usize> {
    None
}

/// The address that faulted, from the `siginfo_t` of a SIGSEGV or SIGBUS.
///
/// # Safety
///
/// `info` must be the `siginfo_t` the kernel passed to an `SA_SIGINFO`
/// handler for a memory fault.
pub(crate) unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    // SAFETY: per this function's contract `info` is a valid fault siginfo,
    // for which the kernel fills in `si_addr`.
    unsafe { (*info).si_addr as usize }
}

/// Not measured on this system.
#[cfg(test)]
pub(crate) fn resident_bytes() -> Option<usize> {
    None
}
