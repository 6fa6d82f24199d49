//! The one socket wrapper behind every type in `net`: a std socket in
//! non-blocking mode, its registration with the hub, and the per-direction
//! timeouts that become the I/O loop's deadline.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::lend::Lent;
use crate::hub::io::{Direction, Registration};

/// A std socket (`S`) driven by the hub.
pub(crate) struct Sock<S: AsFd> {
    /// Declared first so it drops first: the fd leaves the poller (and any
    /// green thread parked on it is woken) while the fd is still open.
    reg: Registration,
    /// The socket itself, always in non-blocking mode.
    io: S,
    /// `set_read_timeout`: each read's deadline is now + this.
    read_timeout: Cell<Option<Duration>>,
    /// `set_write_timeout` (and a connect's time limit).
    write_timeout: Cell<Option<Duration>>,
    /// `set_nonblocking(true)`: return `WouldBlock` instead of parking.
    nonblocking: Cell<bool>,
    /// A listener's accepts that ran out of a resource in a row: the next
    /// accept pauses first (see `backoff`).
    accept_failures: Cell<u8>,
    /// The registration belongs to this OS thread's hub, so the socket
    /// must not move to (or be dropped on) another thread.
    _not_send: PhantomData<Rc<()>>,
}

impl<S: AsFd> Sock<S> {
    /// Wraps `io`, switching it to non-blocking mode and registering it.
    pub(crate) fn new(io: S) -> io::Result<Sock<S>> {
        crate::sys::adopt_socket(SockRef::from(&io))?;
        Sock::registered(io)
    }

    /// Wraps `io`, which is already in non-blocking mode.
    pub(crate) fn registered(io: S) -> io::Result<Sock<S>> {
        Ok(Sock {
            reg: Registration::new(io.as_fd())?,
            io,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            nonblocking: Cell::new(false),
            accept_failures: Cell::new(0),
            _not_send: PhantomData,
        })
    }

    /// The std socket, for calls that cannot block.
    pub(crate) fn get(&self) -> &S {
        &self.io
    }

    /// The socket2 view of the fd, for options std lacks.
    pub(crate) fn sock_ref(&self) -> SockRef<'_> {
        SockRef::from(&self.io)
    }

    /// Runs `op` through the hub's I/O loop, with the deadline this
    /// direction's timeout gives (or once, when set non-blocking).
    pub(crate) fn io<R>(&self, dir: Direction, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let timeout = match dir {
            Direction::Read => self.read_timeout.get(),
            Direction::Write => self.write_timeout.get(),
        };
        self.io_until(dir, timeout.and_then(crate::hub::deadline_after), op)
    }

    /// [`io`](Self::io) with an explicit deadline.
    pub(crate) fn io_until<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.nonblocking.get() {
            return op(&self.io);
        }
        self.reg.io(dir, deadline, || op(&self.io))
    }

    /// An accept through the I/O loop that backs off: after it ran out of
    /// a resource (`EMFILE`...), the next one pauses first, 5 ms doubling
    /// up to 1 s (see `backoff`), so a loop retrying at once cannot spin
    /// while other green threads (whose ending may free an fd) wait. A
    /// non-blocking listener never pauses.
    pub(crate) fn accept<R>(
        &self,
        deadline: Option<Instant>,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let failures = self.accept_failures.get();
        if failures > 0 && !self.nonblocking.get() {
            let pause = crate::hub::deadline_after(super::backoff::delay(failures));
            match (pause, deadline) {
                (Some(p), Some(d)) if d < p => {
                    crate::hub::sleep_until(d);
                    return Err(io::Error::from(io::ErrorKind::TimedOut));
                }
                (Some(p), _) => crate::hub::sleep_until(p),
                (None, _) => {}
            }
        }
        let result = self.io_until(Direction::Read, deadline, op);
        self.accept_failures.set(super::backoff::next(failures, &result));
        result
    }

    /// A stream read. A short one means the receive buffer is empty now,
    /// which the registration notes so the next read parks at once rather
    /// than first failing with `EAGAIN` (one syscall per message saved in
    /// request/response traffic, as the echo benchmark showed).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io(Direction::Read, |s| (&*SockRef::from(s)).read(buf))?;
        if n > 0 && n < buf.len() && !self.nonblocking.get() {
            self.reg.mark_drained();
        }
        Ok(n)
    }

    /// A stream read into a buffer lent only while data is there (see
    /// `lend`): waits for data holding no buffer, then reads into a lent
    /// one and runs `f` on the bytes read (none: end of file).
    pub(crate) fn read_with<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> io::Result<R> {
        let (mut buf, n) = self.io(Direction::Read, |s| {
            // On `WouldBlock` the buffer goes back before the park.
            let mut buf = Lent::take();
            let n = (&*SockRef::from(s)).read(&mut buf)?;
            Ok((buf, n))
        })?;
        if n > 0 && n < buf.len() && !self.nonblocking.get() {
            self.reg.mark_drained();
        }
        Ok(f(&mut buf[..n]))
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io(Direction::Read, |s| (&*SockRef::from(s)).read_vectored(bufs))
    }

    /// `send` with `MSG_NOSIGNAL` (`SO_NOSIGPIPE` on macOS): a closed peer
    /// is `EPIPE`, never SIGPIPE.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Direction::Write, |s| {
            SockRef::from(s).send_with_flags(buf, crate::sys::SEND_FLAGS)
        })
    }

    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io(Direction::Write, |s| {
            SockRef::from(s).send_vectored_with_flags(bufs, crate::sys::SEND_FLAGS)
        })
    }

    /// std's rule: a zero timeout is an error, not "never wait".
    pub(crate) fn set_timeout(&self, dir: Direction, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        match dir {
            Direction::Read => self.read_timeout.set(timeout),
            Direction::Write => self.write_timeout.set(timeout),
        }
        Ok(())
    }

    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        match dir {
            Direction::Read => self.read_timeout.get(),
            Direction::Write => self.write_timeout.get(),
        }
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.set(nonblocking);
    }

    /// A second handle on the same socket (a dup'd fd, registered on its
    /// own), starting with this one's timeouts and mode.
    pub(crate) fn try_clone_with(&self, dup: impl FnOnce(&S) -> io::Result<S>) -> io::Result<Sock<S>> {
        let clone = Sock::registered(dup(&self.io)?)?;
        clone.read_timeout.set(self.read_timeout.get());
        clone.write_timeout.set(self.write_timeout.get());
        clone.nonblocking.set(self.nonblocking.get());
        Ok(clone)
    }

    /// The std socket, out of the hub (still in non-blocking mode).
    pub(crate) fn into_inner(self) -> S {
        let Sock { reg, io, .. } = self;
        drop(reg);
        io
    }
}

impl<S: AsFd> AsFd for Sock<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl<S: AsFd> AsRawFd for Sock<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_fd().as_raw_fd()
    }
}

impl<S: AsFd + IntoRawFd> Sock<S> {
    pub(crate) fn into_raw_fd(self) -> RawFd {
        self.into_inner().into_raw_fd()
    }
}

impl<S: AsFd + fmt::Debug> fmt::Debug for Sock<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.io, f)
    }
}

/// The body of every stream's `spawn_when_readable` (`timeout: None`) and
/// `spawn_when_readable_timeout`: `f(stream, why)` in a green thread that
/// starts once `sock` (the stream's own socket) is readable, or the
/// timeout passes.
#[track_caller]
pub(crate) fn spawn_when_readable<W: 'static, S: AsFd, T: 'static>(
    stream: W,
    sock: impl FnOnce(&W) -> &Sock<S>,
    timeout: Option<Duration>,
    f: impl FnOnce(W, crate::hub::Wake) -> T + 'static,
) -> crate::JoinHandle<T> {
    let place = sock(&stream).reg.reader_place();
    let deadline = timeout.and_then(crate::hub::deadline_after);
    crate::Builder::new()
        .spawn_when_readable(place, deadline, std::panic::Location::caller(), move |why| {
            f(stream, why)
        })
        .expect("greenhub: the default stack size is valid")
}
