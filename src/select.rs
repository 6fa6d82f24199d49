//! Waiting on several file descriptors at once (gevent's `select.select`
//! and `select.poll`, Python's `selectors`): [`select`] parks the current
//! green thread until at least one of the fds is ready to read or write, or
//! the timeout passes, and says exactly which are ready.
//!
//! It waits through the hub like every other blocking call: each fd is
//! registered with the hub's poller for the length of the call, one park
//! waits on all of them, and poll(2) with a zero timeout tells exactly which
//! are ready (a wake is only a hint). An fd that a greenhub socket already
//! has registered is watched through a duplicate of it, so sockets can be
//! passed too.
//!
//! Why not fds in [`wait::wait_any`](crate::wait::wait_any): a
//! [`Waitable`](crate::wait::Waitable) only registers a waker, with no step
//! to clear the fd's slot and poller registration when the wait ends; an fd
//! must be registered for the length of one wait and cleaned up after it,
//! which is what this module does.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::hub::io::{wait_any, Direction, Registration};
use crate::sys;

/// Which fds [`select`] found ready, as indices into the slices it was
/// given, in order. Both empty when the timeout passed first.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// let (a, _a_tx) = std::io::pipe().unwrap();
/// let (b, mut b_tx) = std::io::pipe().unwrap();
/// b_tx.write_all(b"x").unwrap();
/// let got = greenhub::select::select(&[a.as_fd(), b.as_fd()], &[b_tx.as_fd()], None).unwrap();
/// assert_eq!(got, greenhub::select::Selected { readable: vec![1], writable: vec![0] });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// Indices into `read` of the fds ready to read (or at end of file, hung
    /// up, or in error: a read will not block).
    pub readable: Vec<usize>,
    /// Indices into `write` of the fds ready to write (or in error).
    pub writable: Vec<usize>,
}

impl Selected {
    /// Whether nothing was ready: the timeout passed.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use std::time::Duration;
    /// let (r, _w) = std::io::pipe().unwrap();
    /// let got = greenhub::select::select(&[r.as_fd()], &[] as &[std::os::fd::BorrowedFd], Some(Duration::from_millis(5))).unwrap();
    /// assert!(got.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.readable.is_empty() && self.writable.is_empty()
    }
}

/// Parks the current green thread until at least one fd of `read` is
/// readable or one of `write` is writable, or `timeout` passes (`None`:
/// no limit; `Some(Duration::ZERO)`: only look). Returns exactly the ready
/// ones; on timeout, an empty [`Selected`] (as `select.select` returns
/// empty lists), not an error. Other green threads run meanwhile.
///
/// # Errors
/// The OS error `EBADF` if an fd is not open; the OS error if an fd cannot
/// be watched by the hub's poller.
///
/// # Blocking
/// Parks until an fd is ready or the timeout passes.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::{AsFd, BorrowedFd};
/// use std::time::Duration;
///
/// let (a, _a_tx) = std::io::pipe().unwrap();
/// let (b, mut b_tx) = std::io::pipe().unwrap();
/// let writer = greenhub::spawn(move || {
///     greenhub::sleep(Duration::from_millis(10));
///     b_tx.write_all(b"!").unwrap();
/// });
/// let none: &[BorrowedFd] = &[];
/// let ready = greenhub::select::select(&[a.as_fd(), b.as_fd()], none, None).unwrap();
/// assert_eq!(ready.readable, [1]); // only b
/// writer.join().unwrap();
/// ```
#[doc(alias = "poll")]
#[doc(alias = "selectors")]
pub fn select<R: AsFd, W: AsFd>(read: &[R], write: &[W], timeout: Option<Duration>) -> io::Result<Selected> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let fds: Vec<(BorrowedFd<'_>, Direction)> = read
        .iter()
        .map(|f| (f.as_fd(), Direction::Read))
        .chain(write.iter().map(|f| (f.as_fd(), Direction::Write)))
        .collect();
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, dir)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: match dir {
                Direction::Read => libc::POLLIN,
                Direction::Write => libc::POLLOUT,
            },
            revents: 0,
        })
        .collect();
    let mut watches: Option<Vec<Watch>> = None;
    loop {
        let ready = ready_now(&mut polled, read.len())?;
        if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
        if watches.is_none() {
            watches = Some(watch_all(&fds)?);
        }
        let watches = watches.as_ref().expect("set just above");
        let waits: Vec<(&Registration, Direction)> = watches.iter().map(|w| (&w.reg, w.dir)).collect();
        wait_any(&waits, deadline);
    }
}

/// One fd watched for one direction: registered with the hub for the
/// length of a `select`.
struct Watch {
    reg: Registration,
    dir: Direction,
    /// The duplicate registered when the fd itself already was (by a
    /// greenhub socket). Declared after `reg`, so it is closed after the
    /// registration is removed.
    _dup: Option<OwnedFd>,
}

fn watch_all(fds: &[(BorrowedFd<'_>, Direction)]) -> io::Result<Vec<Watch>> {
    let mut watches = Vec::with_capacity(fds.len());
    let mut seen: Vec<(RawFd, Direction)> = Vec::with_capacity(fds.len());
    for &(fd, dir) in fds {
        if seen.contains(&(fd.as_raw_fd(), dir)) {
            continue; // asked twice the same way: one watch wakes for both
        }
        seen.push((fd.as_raw_fd(), dir));
        let watch = match Registration::new(fd) {
            Ok(reg) => Watch { reg, dir, _dup: None },
            // Registered already (by a greenhub socket, or by this select
            // for the other direction): watch a duplicate, which the poller
            // tells apart from the original.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let dup = fd.try_clone_to_owned()?;
                Watch {
                    reg: Registration::new(dup.as_fd())?,
                    dir,
                    _dup: Some(dup),
                }
            }
            Err(e) => return Err(e),
        };
        watches.push(watch);
    }
    Ok(watches)
}

/// poll(2) without waiting; the ready entries as a `Selected` (the first
/// `n_read` entries are `read`'s).
fn ready_now(polled: &mut [libc::pollfd], n_read: usize) -> io::Result<Selected> {
    sys::poll_now(polled)?;
    let mut ready = Selected::default();
    for (i, p) in polled.iter().enumerate() {
        if p.revents & libc::POLLNVAL != 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if p.revents != 0 {
            if i < n_read {
                ready.readable.push(i);
            } else {
                ready.writable.push(i - n_read);
            }
        }
    }
    Ok(ready)
}
