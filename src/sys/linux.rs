//! Linux specifics: lightweight guard pages, the mapping count and its cap.

use std::fs::File;
use std::io::{self, Read};

/// `madvise` advice that turns pages into guard markers without splitting the
/// mapping (Linux >= 6.13). Spelled out because the `libc` crate may lack it.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Flags for stack mappings. `MAP_NORESERVE`: slabs reserve far more address
/// space than is ever touched, so do not charge it against overcommit.
/// `MAP_STACK`: since Linux 6.7 it also keeps transparent huge pages away, so
/// touching one page of a slab never commits 2 MiB.
pub(crate) const STACK_MAP_FLAGS: libc::c_int =
    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;

/// Applies per-mapping advice to a fresh stack mapping: no huge pages, even
/// on kernels older than 6.7 where `MAP_STACK` does not imply it, because a
/// parked green thread must cost one page, not 2 MiB.
pub(crate) fn prepare_stack_region(addr: usize, len: usize) {
    // SAFETY: the caller just mapped [addr, addr + len); the advice changes
    // only how the kernel backs it, never its contents.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
    debug_assert!(rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL));
}

/// Installs a guard over `[addr, addr + len)` (page aligned, inside one
/// mapping) without creating a mapping: any access then faults.
pub(crate) fn install_light_guard(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and has nothing stored in it; the
    // advice only makes it fault on access.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this kernel supports `MADV_GUARD_INSTALL` (older kernels answer
/// EINVAL). Probes with a one-page scratch mapping; call once.
pub(crate) fn light_guards_supported() -> bool {
    let page = super::page_size();
    let Ok(addr) = super::map_stack_region(page) else {
        return false;
    };
    let supported = install_light_guard(addr, page).is_ok();
    super::unmap(addr, page);
    supported
}

/// How many memory mappings this process has (lines of `/proc/self/maps`).
///
/// Counts newlines through a fixed buffer, because it runs when mappings
/// have run out and a large heap allocation might need one more.
pub(crate) fn mapping_count() -> Option<usize> {
    let mut file = File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 4096];
    let mut lines = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The kernel's cap on mappings per process (`vm.max_map_count`).
pub(crate) fn max_map_count() -> Option<usize> {
    let mut file = File::open("/proc/sys/vm/max_map_count").ok()?;
    let mut buf = [0u8; 32];
    let n = file.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
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
    unsafe { (*info).si_addr() as usize }
}

/// Resident memory of this process in bytes (`/proc/self/statm`), for tests
/// that check a burst of green threads gives its memory back.
#[cfg(test)]
pub(crate) fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * super::page_size())
}
