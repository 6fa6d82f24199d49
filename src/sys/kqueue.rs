//! The poller on macOS and FreeBSD (and on Linux through libkqueue, with the
//! `kqueue-on-linux` feature): kqueue, edge-triggered.
//!
//! The same shape as `epoll.rs`. Each fd is added once with an `EVFILT_READ`
//! and an `EVFILT_WRITE` filter, both `EV_CLEAR` (edge-triggered), so a
//! socket costs no `kevent` change per operation. The token rides in
//! `udata`. Other OS threads wake the poller through an `EVFILT_USER` event
//! (`NOTE_TRIGGER`), which needs no fd of its own. `kevent` takes a
//! `timespec`, so timers keep nanosecond precision.
//!
//! Where kqueue differs from epoll, this file makes it behave like epoll:
//! - `EV_ADD` on a watched fd silently replaces its token, where epoll
//!   answers `EEXIST`; the hub relies on that answer (registering a fd a
//!   greenhub socket already owns must fail, not steal its events), so the
//!   poller remembers which fds it watches;
//! - each filter reports separately: a read and a write event for one fd
//!   may come in one wait, and the hub handles each;
//! - `EV_EOF` on the read filter is epoll's `EPOLLRDHUP` (hangup); an
//!   `EV_ERROR` event (the registration failed, `data` holds the errno)
//!   wakes both directions, whose next syscall reports the error.
//!
//! On Linux the kqueue is libkqueue's emulation over epoll, which differs
//! from a kernel kqueue in three ways this file works around, each where it
//! matters: the order the two filters are added in (`add`), a socket error
//! it takes off the socket (`Event::error`), and events it drops when a
//! wait's answer is full (`FULL_MAY_LOSE`).

use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

#[cfg(not(target_os = "linux"))]
use libc as ffi;

/// libkqueue's `<sys/event.h>` (version 2.x, as installed by its cmake
/// build), for the `kqueue-on-linux` feature: the `libc` crate has no kqueue
/// items on Linux. The test at the bottom of this file compiles a C program
/// against the installed header and compares the layout and every constant.
#[cfg(target_os = "linux")]
#[allow(non_camel_case_types)]
mod ffi {
    pub(super) use libc::{c_int, c_void, timespec};

    /// libkqueue's `struct kevent` on Linux: BSD's classic layout, without
    /// FreeBSD 12's `ext[4]`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub(super) struct kevent {
        pub(super) ident: usize,
        pub(super) filter: i16,
        pub(super) flags: u16,
        pub(super) fflags: u32,
        pub(super) data: isize,
        pub(super) udata: *mut c_void,
    }

    pub(super) const EVFILT_READ: i16 = -1;
    pub(super) const EVFILT_WRITE: i16 = -2;
    pub(super) const EVFILT_USER: i16 = -11;
    pub(super) const EV_ADD: u16 = 0x0001;
    pub(super) const EV_DELETE: u16 = 0x0002;
    pub(super) const EV_CLEAR: u16 = 0x0020;
    pub(super) const EV_RECEIPT: u16 = 0x0040;
    pub(super) const EV_ERROR: u16 = 0x4000;
    pub(super) const EV_EOF: u16 = 0x8000;
    pub(super) const NOTE_TRIGGER: u32 = 0x0100_0000;

    // Linked by build.rs (`pkg-config --libs libkqueue`).
    extern "C" {
        pub(super) fn kqueue() -> c_int;
        pub(super) fn kevent(
            kq: c_int,
            changelist: *const kevent,
            nchanges: c_int,
            eventlist: *mut kevent,
            nevents: c_int,
            timeout: *const timespec,
        ) -> c_int;
    }
}

/// A kqueue instance.
pub(crate) struct Poller {
    /// Shared with the `Notifier`, which other OS threads use: the kqueue
    /// closes when the last of them goes.
    kq: Arc<OwnedFd>,
    /// `added[fd]`: the token `fd` is watched with (added and not deleted
    /// since), so that a second `add` answers `EEXIST` as epoll does,
    /// instead of replacing the first registration's token; and so that a
    /// wait that may have lost events can wake every fd (see `wait`).
    added: RefCell<Vec<Option<u64>>>,
    /// The notifier's token, for the same reason.
    notifier_token: std::cell::Cell<Option<u64>>,
}

/// Readiness reported for one registered fd.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    /// The token the fd was added with.
    pub(crate) token: u64,
    /// Readable, or the peer hung up / an error is pending (a read will say).
    pub(crate) readable: bool,
    /// Writable, or an error is pending (a write will say).
    pub(crate) writable: bool,
    /// The peer hung up (or an error is pending): reads reach EOF or the
    /// error without further events.
    pub(crate) hangup: bool,
    /// An error the poller took off the socket to report it (0: none); the
    /// fd's next operation must return it, as the socket no longer will.
    /// Only libkqueue does this (it reads `SO_ERROR`, which clears it on
    /// Linux); a kernel kqueue copies the error and leaves it in place.
    pub(crate) error: i32,
    /// TCP urgent data arrived (see epoll.rs): never reported here, where
    /// urgent data is not watched for.
    pub(crate) urgent: bool,
}

/// Whether events may carry an `error` taken off the socket (see
/// `Event::error`), so the hub must check for one before each operation.
pub(crate) const TAKES_SOCKET_ERRORS: bool = cfg!(target_os = "linux");

/// How many events one wait takes at most; more wait for the next turn.
/// kqueue reports read and write separately, so 1024 events cover about
/// 512 busy fds a turn; the buffer (32 KiB, 64 KiB with FreeBSD's `ext`)
/// is on the hub's OS-thread stack and left uninitialised.
#[cfg(not(target_os = "linux"))]
const EVENTS: usize = 1024;
/// libkqueue caps a wait at 512 events (its `MAX_KEVENT`), so ask for no
/// more, and a full answer is recognised as one (see `wait`).
#[cfg(target_os = "linux")]
const EVENTS: usize = 512;

/// Whether a full answer may have lost events. libkqueue asks epoll for as
/// many events as there are slots, but one epoll event for a fd that is
/// readable and writable becomes two kevents; when the slots run out it
/// drops the rest, and with `EV_CLEAR` (epoll's `EPOLLET` underneath) a
/// dropped edge never comes back. A kernel kqueue keeps what does not fit
/// for the next wait.
const FULL_MAY_LOSE: bool = cfg!(target_os = "linux");

/// The `EVFILT_USER` identifier of the cross-thread wake (user events have
/// their own identifier space, apart from fds).
const NOTIFY_IDENT: usize = 0;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A change (or an empty event) for `kevent`: zeroed first, so fields some
/// systems add (FreeBSD's `ext`) are zero.
fn change(ident: usize, filter: i16, flags: u16, fflags: u32, token: u64) -> ffi::kevent {
    // SAFETY: kevent is plain data (integers and a pointer); all-zero is valid.
    let mut ev: ffi::kevent = unsafe { std::mem::zeroed() };
    ev.ident = ident;
    ev.filter = filter;
    ev.flags = flags;
    ev.fflags = fflags;
    // The token is a number carried in a pointer-sized field, never read
    // through: no provenance. Tokens use 64 bits (sys/mod.rs admits only
    // 64-bit targets for kqueue).
    ev.udata = ptr::without_provenance_mut(token as usize);
    ev
}

/// Submits `changes` (each with `EV_RECEIPT`) and returns the first error
/// the receipts report. Receipts, not pending events, fill the event list,
/// so no readiness is consumed here.
fn apply(kq: RawFd, changes: &[ffi::kevent]) -> io::Result<()> {
    debug_assert!(changes.iter().all(|c| c.flags & ffi::EV_RECEIPT != 0));
    let mut receipts = [MaybeUninit::<ffi::kevent>::uninit(); 2];
    debug_assert!(changes.len() <= receipts.len());
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let n = loop {
        // SAFETY: `changes` and `receipts` are live buffers of the lengths
        // passed; `zero` outlives the call.
        let r = unsafe {
            ffi::kevent(
                kq,
                changes.as_ptr(),
                changes.len() as libc::c_int,
                receipts.as_mut_ptr().cast(),
                changes.len() as libc::c_int,
                &zero,
            )
        };
        match check(r) {
            Ok(n) => break n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    for receipt in &receipts[..n] {
        // SAFETY: kevent filled in the first `n` entries.
        let receipt = unsafe { receipt.assume_init() };
        if receipt.flags & ffi::EV_ERROR != 0 && receipt.data != 0 {
            return Err(io::Error::from_raw_os_error(receipt.data as i32));
        }
    }
    Ok(())
}

impl Poller {
    /// Urgent data is not watched for (`Event::urgent` is always false):
    /// a read that stops short at the urgent mark leaves data queued with
    /// no event to come, so the hub must not take a short read to mean
    /// "drained" on this poller.
    pub(crate) const REPORTS_URGENT: bool = false;

    /// After `fork` (see `reinit_after_fork`): not supported with kqueue
    /// yet (a BSD child does not inherit the kqueue at all, so the hub
    /// would need a new one with every fd added again).
    pub(crate) fn renew(&self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "greenhub: reinit_after_fork is not supported with the kqueue poller",
        ))
    }

    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: kqueue takes no arguments; the result is checked.
        let fd = check(unsafe { ffi::kqueue() })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let kq = unsafe { OwnedFd::from_raw_fd(fd) };
        // libkqueue's descriptor is an ordinary fd, which a child started
        // by exec would inherit; harmless on the BSDs, where no child ever
        // inherits a kqueue.
        // SAFETY: fcntl on a descriptor we own, with integer arguments.
        unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Poller {
            kq: Arc::new(kq),
            added: RefCell::new(Vec::new()),
            notifier_token: std::cell::Cell::new(None),
        })
    }

    /// Adds `fd` with read and write interest, edge-triggered.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let index = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if self.added.borrow().get(index).is_some_and(Option::is_some) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        let flags = ffi::EV_ADD | ffi::EV_CLEAR | ffi::EV_RECEIPT;
        // Write first: libkqueue builds the fd's epoll mask from the filter
        // added first plus the in/out bit of the second, so read first
        // would lose EPOLLRDHUP, and with it the EV_EOF of a FIN that
        // arrives with data (a kernel kqueue does not care about order).
        let changes = [
            change(index, ffi::EVFILT_WRITE, flags, 0, token),
            change(index, ffi::EVFILT_READ, flags, 0, token),
        ];
        if let Err(e) = apply(self.kq.as_raw_fd(), &changes) {
            // One filter may have been added before the other failed.
            let _ = self.remove_filters(index);
            return Err(e);
        }
        let mut added = self.added.borrow_mut();
        if added.len() <= index {
            added.resize(index + 1, None);
        }
        added[index] = Some(token);
        Ok(())
    }

    /// Removes `fd` (before it is closed, so a reused number starts clean;
    /// libkqueue, which cannot see a close, depends on it).
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let index = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if let Some(added) = self.added.borrow_mut().get_mut(index) {
            *added = None;
        }
        self.remove_filters(index)
    }

    fn remove_filters(&self, index: usize) -> io::Result<()> {
        let flags = ffi::EV_DELETE | ffi::EV_RECEIPT;
        let changes = [
            change(index, ffi::EVFILT_READ, flags, 0, 0),
            change(index, ffi::EVFILT_WRITE, flags, 0, 0),
        ];
        apply(self.kq.as_raw_fd(), &changes)
    }

    /// A way for other OS threads to wake this poller: an `EVFILT_USER`
    /// event that reports `token`. One per poller (the hub's inbox).
    pub(crate) fn notifier(&self, token: u64) -> io::Result<Notifier> {
        let flags = ffi::EV_ADD | ffi::EV_CLEAR | ffi::EV_RECEIPT;
        let add = change(NOTIFY_IDENT, ffi::EVFILT_USER, flags, 0, token);
        apply(self.kq.as_raw_fd(), &[add])?;
        self.notifier_token.set(Some(token));
        Ok(Notifier {
            kq: self.kq.clone(),
            token,
        })
    }

    /// Waits for events or until `timeout` passes (`None`: no limit), and
    /// hands each event to `on_event`.
    pub(crate) fn wait(&self, timeout: Option<Duration>, mut on_event: impl FnMut(Event)) {
        let mut events = [MaybeUninit::<ffi::kevent>::uninit(); EVENTS];
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let tsp = ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: no changes; `events` is a live buffer of EVENTS entries,
        // and `tsp` is null or points to `ts`, alive for the call.
        let r = unsafe {
            ffi::kevent(
                self.kq.as_raw_fd(),
                ptr::null(),
                0,
                events.as_mut_ptr().cast(),
                EVENTS as libc::c_int,
                tsp,
            )
        };
        // EINTR (or any failure): no events this turn; the hub comes back.
        let n = r.max(0) as usize;
        for ev in &events[..n] {
            // SAFETY: kevent filled in the first `n` entries.
            let ev = unsafe { ev.assume_init() };
            let token = ev.udata.addr() as u64;
            let error = ev.flags & ffi::EV_ERROR != 0;
            let eof = ev.flags & ffi::EV_EOF != 0;
            // With EV_EOF, fflags holds the socket's pending error, if any.
            let taken = if TAKES_SOCKET_ERRORS && eof {
                ev.fflags as i32
            } else {
                0
            };
            let event = match ev.filter {
                ffi::EVFILT_READ => Event {
                    token,
                    readable: true,
                    writable: error || taken != 0,
                    hangup: eof || error,
                    error: taken,
                    urgent: false,
                },
                ffi::EVFILT_WRITE => Event {
                    token,
                    readable: error || taken != 0,
                    writable: true,
                    hangup: error || taken != 0,
                    error: taken,
                    urgent: false,
                },
                // The notifier: the hub knows it by its token.
                ffi::EVFILT_USER => Event {
                    token,
                    readable: true,
                    writable: false,
                    hangup: false,
                    error: 0,
                    urgent: false,
                },
                _ => continue,
            };
            on_event(event);
        }
        if FULL_MAY_LOSE && n == EVENTS {
            self.wake_all(&mut on_event);
        }
    }

    /// After a wait that may have lost events: reports every watched fd as
    /// readable and writable, and the notifier as triggered. Readiness is
    /// a hint, so a parked operation woken for nothing retries its syscall,
    /// gets `EAGAIN` and parks again; one that lost its edge runs.
    fn wake_all(&self, on_event: &mut impl FnMut(Event)) {
        let tokens: Vec<u64> = self.added.borrow().iter().flatten().copied().collect();
        for token in tokens.into_iter().chain(self.notifier_token.get()) {
            on_event(Event {
                token,
                readable: true,
                writable: true,
                hangup: false,
                error: 0,
                urgent: false,
            });
        }
    }
}

/// How other OS threads wake the hub's poller: triggers the poller's
/// `EVFILT_USER` event. `Send + Sync`; keeps the kqueue open.
pub(crate) struct Notifier {
    kq: Arc<OwnedFd>,
    token: u64,
}

impl Notifier {
    /// After `fork`: not supported with kqueue (see `Poller::renew`).
    pub(crate) fn renew(&self, _poller: &Poller, _token: u64) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Triggers the event (from any thread). Triggering an event that is
    /// pending already changes nothing, which is all a notify needs.
    pub(crate) fn notify(&self) {
        // The token again: some kernels take `udata` from every change.
        let trigger = change(NOTIFY_IDENT, ffi::EVFILT_USER, 0, ffi::NOTE_TRIGGER, self.token);
        // SAFETY: one live change, no event list, no timeout.
        unsafe { ffi::kevent(self.kq.as_raw_fd(), &trigger, 1, ptr::null_mut(), 0, ptr::null()) };
    }

    /// Nothing to consume: `EV_CLEAR` resets the event when the poller
    /// reports it, so the next notify makes a new one.
    pub(crate) fn reset(&self) {}
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::process::Command;

    /// The Rust mirror of libkqueue's header matches the installed
    /// `<sys/event.h>`: a C program compiled against it (`cc` with
    /// `pkg-config --cflags libkqueue`) prints the struct's size and
    /// offsets and every constant used here.
    #[test]
    fn ffi_matches_the_installed_libkqueue_header() {
        let dir = std::env::temp_dir().join(format!("greenhub-kevent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("check.c");
        std::fs::write(
            &source,
            r#"#include <stddef.h>
#include <stdio.h>
#include <sys/event.h>
int main(void) {
    printf("%zu %zu %zu %zu %zu %zu %zu\n", sizeof(struct kevent),
        offsetof(struct kevent, ident), offsetof(struct kevent, filter),
        offsetof(struct kevent, flags), offsetof(struct kevent, fflags),
        offsetof(struct kevent, data), offsetof(struct kevent, udata));
    printf("%d %d %d %d %d %d %d %d %d %u\n", EVFILT_READ, EVFILT_WRITE,
        EVFILT_USER, EV_ADD, EV_DELETE, EV_CLEAR, EV_RECEIPT, EV_ERROR,
        EV_EOF, (unsigned)NOTE_TRIGGER);
    return 0;
}
"#,
        )
        .unwrap();
        let cflags = Command::new("pkg-config")
            .args(["--cflags", "libkqueue"])
            .output()
            .expect("pkg-config runs");
        assert!(cflags.status.success(), "pkg-config finds libkqueue");
        let cflags = String::from_utf8(cflags.stdout).unwrap();
        let binary = dir.join("check");
        let built = Command::new("cc")
            .args(cflags.split_whitespace())
            .arg(&source)
            .arg("-o")
            .arg(&binary)
            .status()
            .expect("cc runs");
        assert!(built.success(), "the check program compiles");
        let out = Command::new(&binary).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let c = String::from_utf8(out.stdout).unwrap();
        let rust = format!(
            "{} {} {} {} {} {} {}\n{} {} {} {} {} {} {} {} {} {}\n",
            size_of::<ffi::kevent>(),
            offset_of!(ffi::kevent, ident),
            offset_of!(ffi::kevent, filter),
            offset_of!(ffi::kevent, flags),
            offset_of!(ffi::kevent, fflags),
            offset_of!(ffi::kevent, data),
            offset_of!(ffi::kevent, udata),
            ffi::EVFILT_READ,
            ffi::EVFILT_WRITE,
            ffi::EVFILT_USER,
            ffi::EV_ADD,
            ffi::EV_DELETE,
            ffi::EV_CLEAR,
            ffi::EV_RECEIPT,
            ffi::EV_ERROR,
            ffi::EV_EOF,
            ffi::NOTE_TRIGGER,
        );
        assert_eq!(c, rust);
    }

    /// A second `add` of a watched fd fails with `EEXIST`, as on epoll, and
    /// leaves the first registration's token in place.
    #[test]
    fn adding_a_watched_fd_again_is_eexist() {
        let poller = Poller::new().unwrap();
        let (reader, mut writer) = std::io::pipe().unwrap();
        poller.add(reader.as_raw_fd(), 7).unwrap();
        let again = poller.add(reader.as_raw_fd(), 8).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EEXIST));
        std::io::Write::write_all(&mut writer, b"x").unwrap();
        let mut tokens = Vec::new();
        poller.wait(Some(Duration::from_secs(5)), |ev| {
            if ev.readable {
                tokens.push(ev.token)
            }
        });
        assert_eq!(tokens, [7]);
        poller.delete(reader.as_raw_fd()).unwrap();
        poller.add(reader.as_raw_fd(), 9).unwrap();
    }

    /// The notifier wakes a waiting poller from another thread, once per
    /// edge: after the event is reported, a wait without a notify times out.
    #[test]
    fn notifier_wakes_the_poller_from_another_thread() {
        let poller = Poller::new().unwrap();
        let notifier = poller.notifier(u64::MAX).unwrap();
        let t = std::thread::spawn(move || notifier.notify());
        let mut tokens = Vec::new();
        poller.wait(Some(Duration::from_secs(5)), |ev| tokens.push(ev.token));
        assert_eq!(tokens, [u64::MAX]);
        t.join().unwrap();
        let mut again = 0;
        poller.wait(Some(Duration::from_millis(20)), |_| again += 1);
        assert_eq!(again, 0);
    }
}
