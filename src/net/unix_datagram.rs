//! Unix domain datagram sockets: [`UnixDatagram`].

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

use super::sock::Sock;
use crate::hub::io::Direction;

/// A Unix domain datagram socket (std's `UnixDatagram`, on the hub).
///
/// ```
/// let (a, b) = greenhub::net::UnixDatagram::pair().unwrap();
/// a.send(b"one").unwrap();
/// let mut buf = [0; 8];
/// assert_eq!(b.recv(&mut buf).unwrap(), 3);
/// ```
pub struct UnixDatagram {
    inner: Sock<net::UnixDatagram>,
}

socket_common!(UnixDatagram, net::UnixDatagram);
common_methods!(
    UnixDatagram,
    net::UnixDatagram,
    SocketAddr,
    "let (s, _peer) = greenhub::net::UnixDatagram::pair().unwrap();"
);
io_methods!(
    UnixDatagram,
    SocketAddr,
    "let (s, _peer) = greenhub::net::UnixDatagram::pair().unwrap();"
);

impl UnixDatagram {
    /// Creates a socket bound to a new socket file at `path`.
    ///
    /// # Errors
    /// The OS error (`AddrInUse` if the file exists, ...).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenhub-doc-dg-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let socket = greenhub::net::UnixDatagram::bind(&path).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::bind(path)?)
    }

    /// Creates a socket bound to no address.
    ///
    /// # Errors
    /// The OS error (`EMFILE`, ...).
    ///
    /// ```
    /// let socket = greenhub::net::UnixDatagram::unbound().unwrap();
    /// assert!(socket.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::unbound()?)
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    /// The OS error (`EMFILE`, ...).
    ///
    /// ```
    /// let (a, b) = greenhub::net::UnixDatagram::pair().unwrap();
    /// # drop((a, b));
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a std socket: switches it to non-blocking mode and registers it
    /// with this thread's hub.
    ///
    /// # Errors
    /// If the fd cannot be switched or registered.
    ///
    /// ```
    /// let std_socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
    /// let socket = greenhub::net::UnixDatagram::from_std(std_socket).unwrap();
    /// # drop(socket);
    /// ```
    pub fn from_std(socket: net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Sock::new(socket)?,
        })
    }

    /// Sets the default peer for `send`, and the only one `recv` hears from.
    ///
    /// # Errors
    /// The OS error (`NotFound`, `ConnectionRefused`, ...).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("greenhub-doc-dgc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = greenhub::net::UnixDatagram::bind(&path).unwrap();
    /// let client = greenhub::net::UnixDatagram::unbound().unwrap();
    /// client.connect(&path).unwrap();
    /// client.send(b"hi").unwrap();
    /// assert_eq!(server.recv(&mut [0; 8]).unwrap(), 2);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.get().connect(path)
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    /// The OS error; `TimedOut` after the write timeout.
    ///
    /// # Blocking
    /// Parks while the peer's queue is full.
    ///
    /// ```
    /// let (a, _b) = greenhub::net::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.send(b"hi").unwrap(), 2);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.io(Direction::Write, |s| s.send(buf))
    }

    /// Receives a datagram from the connected peer.
    ///
    /// # Errors
    /// The OS error; `TimedOut` after the read timeout.
    ///
    /// # Blocking
    /// Parks until a datagram arrives.
    ///
    /// ```
    /// let (a, b) = greenhub::net::UnixDatagram::pair().unwrap();
    /// a.send(b"hi").unwrap();
    /// assert_eq!(b.recv(&mut [0; 8]).unwrap(), 2);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.recv(buf))
    }

    /// Sends a datagram to the socket at `path`.
    ///
    /// # Errors
    /// The OS error; `TimedOut` after the write timeout.
    ///
    /// # Blocking
    /// Parks while the peer's queue is full.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("greenhub-doc-dgs-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = greenhub::net::UnixDatagram::bind(&path).unwrap();
    /// let client = greenhub::net::UnixDatagram::unbound().unwrap();
    /// assert_eq!(client.send_to(b"hi", &path).unwrap(), 2);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner.io(Direction::Write, |s| s.send_to(buf, path))
    }

    /// Receives a datagram and the address it came from.
    ///
    /// # Errors
    /// The OS error; `TimedOut` after the read timeout.
    ///
    /// # Blocking
    /// Parks until a datagram arrives.
    ///
    /// ```
    /// let (a, b) = greenhub::net::UnixDatagram::pair().unwrap();
    /// a.send(b"hi").unwrap();
    /// let (n, from) = b.recv_from(&mut [0; 8]).unwrap();
    /// assert_eq!(n, 2);
    /// assert!(from.is_unnamed());
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// let (a, _b) = greenhub::net::UnixDatagram::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Both).unwrap();
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }
}
