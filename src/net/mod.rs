//! Blocking-style sockets on the hub (gevent's `gevent.socket`), with std's
//! names and signatures: [`TcpListener`], [`TcpStream`], [`UdpSocket`],
//! [`UnixListener`], [`UnixStream`], [`UnixDatagram`].
//!
//! A call that would block parks only the current green thread; the hub
//! runs the others and wakes it when the socket is ready. Each socket is in
//! non-blocking mode and registered with the hub's poller once; an operation
//! tries its syscall first and parks only on `EAGAIN`. Outside any green
//! thread (a plain OS thread) the same calls behave like std's: the thread's
//! hub runs until the socket is ready. Streams implement [`std::io::Read`]
//! and [`std::io::Write`] (also for `&TcpStream` and `&UnixStream`), so
//! `BufReader`, `BufWriter` and any crate taking `impl Read + Write` work
//! unchanged.
//!
//! - Timeouts: `set_read_timeout`/`set_write_timeout`/`connect_timeout` fail
//!   with `ErrorKind::TimedOut`; [`with_timeout`](crate::with_timeout)
//!   around any call works too.
//! - Names: [`ToSocketAddrs`] looks host names up on the
//!   [blocking pool](crate::blocking), never on the hub.
//! - Errors from the OS pass through unchanged; writes use `MSG_NOSIGNAL`
//!   (on macOS sockets carry `SO_NOSIGPIPE`), so a closed peer is `EPIPE`,
//!   never SIGPIPE.
//! - A socket belongs to the OS thread (the hub) that made it: the types are
//!   not `Send`. Each fd has at most one parked reader and one parked writer
//!   (two green threads reading the same socket at once is a bug, reported
//!   by a panic); [`TcpStream::try_clone`] gives a second, independent handle.
//!
//! ```compile_fail
//! let s = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
//! std::thread::spawn(move || s.local_addr()); // sockets are not Send
//! ```
//!
//! ```
//! use std::io::{Read, Write};
//! use greenhub::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = greenhub::spawn(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap(); // echo
//! });
//! let mut client = TcpStream::connect(addr).unwrap();
//! client.write_all(b"hello").unwrap();
//! let mut back = [0; 5];
//! client.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"hello");
//! server.join().unwrap();
//! ```

/// Implements the fd traits, `Debug` and `TryFrom` of the std type for a
/// socket type `$t` wrapping `Sock<$std>` in a field `inner`.
macro_rules! socket_common {
    ($t:ident, $std:ty) => {
        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.as_raw_fd()
            }
        }

        /// Takes the fd out of the hub; it stays in non-blocking mode.
        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.inner.into_raw_fd()
            }
        }

        /// Adopts `fd`, which must be an open socket of this type that
        /// nothing else owns; it is switched to non-blocking mode and
        /// registered with this thread's hub.
        ///
        /// # Panics
        /// If the fd cannot be registered (for instance, it already is).
        impl std::os::fd::FromRawFd for $t {
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the caller promises an owned, open socket fd of this type.
                let io = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                <$t>::from_std(io).expect("greenhub: cannot register the fd with the hub")
            }
        }

        impl TryFrom<$std> for $t {
            type Error = std::io::Error;

            fn try_from(io: $std) -> std::io::Result<$t> {
                <$t>::from_std(io)
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($t)).field(&self.inner).finish()
            }
        }
    };
}

/// Implements `Read` and `Write` for a stream type and for `&` it.
macro_rules! stream_io {
    ($t:ident) => {
        stream_io!(@impl $t);
        stream_io!(@impl &$t);
    };
    (@impl $($t:tt)+) => {
        impl std::io::Read for $($t)+ {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.inner.read(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                self.inner.read_vectored(bufs)
            }
        }

        impl std::io::Write for $($t)+ {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner.write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.inner.write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// Implements `local_addr`, `try_clone`, `take_error` and
/// `set_nonblocking` for a socket type `$t` wrapping a `$std` whose
/// addresses are `$addr`; `$setup` is doctest code that makes an `s: $t`.
macro_rules! common_methods {
    ($t:ident, $std:ty, $addr:ty, $setup:literal) => {
        impl $t {
            /// The local address.
            ///
            /// # Errors
            /// The OS error.
            ///
            #[doc = concat!("```\n", $setup, "\nlet _local = s.local_addr().unwrap();\n```")]
            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.inner.get().local_addr()
            }

            /// A second handle on the same socket: a new fd (`dup`) with its
            /// own registration, so one green thread may park on each (one
            /// reads while another writes, or each accepts). Starts with this
            /// handle's timeouts and mode; later changes apply to one handle.
            ///
            /// # Errors
            /// The OS error (`EMFILE`, ...).
            ///
            #[doc = concat!("```\n", $setup, "\nlet _clone = s.try_clone().unwrap();\n```")]
            pub fn try_clone(&self) -> std::io::Result<$t> {
                Ok($t {
                    inner: self.inner.try_clone_with(<$std>::try_clone)?,
                })
            }

            /// Takes the pending `SO_ERROR`, if any.
            ///
            /// # Errors
            /// The OS error of the query itself.
            ///
            #[doc = concat!("```\n", $setup, "\nassert!(s.take_error().unwrap().is_none());\n```")]
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.inner.get().take_error()
            }

            /// With `true`, calls return `WouldBlock` instead of parking the
            /// green thread (the fd itself is always in non-blocking mode;
            /// this is about the calls).
            ///
            /// # Errors
            /// None today; `io::Result` as in std.
            ///
            #[doc = concat!("```\n", $setup, "\ns.set_nonblocking(true).unwrap();\n```")]
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.inner.set_nonblocking(nonblocking);
                Ok(())
            }
        }
    };
}

/// Implements `peer_addr` and std's timeout getters and setters for a
/// socket type `$t` that sends and receives, with addresses of type `$addr`;
/// `$setup` is doctest code that makes an `s: $t`.
macro_rules! io_methods {
    ($t:ident, $addr:ty, $setup:literal) => {
        impl $t {
            /// The connected peer's address.
            ///
            /// # Errors
            /// The OS error (`NotConnected`, ...).
            ///
            #[doc = concat!("```\n", $setup, "\nlet _peer = s.peer_addr();\n```")]
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                self.inner.get().peer_addr()
            }

            /// Limits how long each read (receive, peek) may park; `None`
            /// for no limit. A call that runs out of time fails with
            /// `ErrorKind::TimedOut`.
            ///
            /// # Errors
            /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
            ///
            #[doc = concat!(
                        "```\nuse std::time::Duration;\n", $setup,
                        "\ns.set_read_timeout(Some(Duration::from_millis(20))).unwrap();",
                        "\nassert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(20)));\n```"
                    )]
            pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.inner
                    .set_timeout(crate::hub::io::Direction::Read, timeout)
            }

            /// Limits how long each write (send) may park; `None` for no
            /// limit. A call that runs out of time fails with
            /// `ErrorKind::TimedOut`.
            ///
            /// # Errors
            /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
            ///
            #[doc = concat!(
                        "```\nuse std::time::Duration;\n", $setup,
                        "\ns.set_write_timeout(Some(Duration::from_secs(1))).unwrap();",
                        "\nassert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));\n```"
                    )]
            pub fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.inner
                    .set_timeout(crate::hub::io::Direction::Write, timeout)
            }

            /// The read timeout.
            ///
            /// # Errors
            /// None today; `io::Result` as in std.
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(s.read_timeout().unwrap(), None);\n```")]
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.inner.timeout(crate::hub::io::Direction::Read))
            }

            /// The write timeout.
            ///
            /// # Errors
            /// None today; `io::Result` as in std.
            ///
            #[doc = concat!("```\n", $setup, "\nassert_eq!(s.write_timeout().unwrap(), None);\n```")]
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.inner.timeout(crate::hub::io::Direction::Write))
            }
        }
    };
}

mod addr;
pub(crate) mod backoff;
mod lend;
mod sock;
mod tcp;
mod tcp_stream;
mod udp;
mod unix;
mod unix_datagram;

pub use addr::{lookup_host, ToSocketAddrs};
pub use tcp::{Incoming, TcpListener};
pub use tcp_stream::TcpStream;
pub use udp::UdpSocket;
pub use unix::{UnixIncoming, UnixListener, UnixStream};
pub use unix_datagram::UnixDatagram;
