//! TCP listening sockets: [`TcpListener`].

use std::io;
use std::net::{self, SocketAddr};
use std::time::{Duration, Instant};

use socket2::Domain;

use super::addr::{each_addr, ToSocketAddrs};
use super::sock::Sock;
use super::tcp_stream::TcpStream;
use crate::hub::io::Direction;

/// How many connections may wait to be accepted, unless
/// [`TcpListener::bind_with_backlog`] says otherwise. The kernel caps it
/// (`net.core.somaxconn`); std's 128 is small for a server with thousands
/// of clients connecting at once.
pub(crate) const DEFAULT_BACKLOG: u32 = 1024;

/// A TCP socket server, listening for connections (std's `TcpListener`,
/// on the hub).
///
/// ```
/// use greenhub::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// let (conn, peer) = listener.accept().unwrap();
/// assert_eq!(peer, client.local_addr().unwrap());
/// assert_eq!(conn.peer_addr().unwrap(), client.local_addr().unwrap());
/// ```
pub struct TcpListener {
    inner: Sock<net::TcpListener>,
}

socket_common!(TcpListener, net::TcpListener);
common_methods!(
    TcpListener,
    net::TcpListener,
    std::net::SocketAddr,
    "let s = greenhub::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();"
);

impl TcpListener {
    /// Binds a listener to `addr` (trying each address it resolves to) and
    /// starts listening, with `SO_REUSEADDR` as std sets it.
    ///
    /// # Errors
    /// The OS error of the last address tried (for instance `AddrInUse`), or
    /// the lookup's error.
    ///
    /// # Blocking
    /// Parks only while a host name is looked up.
    ///
    /// ```
    /// let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(addr, DEFAULT_BACKLOG)
    }

    /// [`bind`](Self::bind) with the length of the queue of connections
    /// waiting to be accepted (the kernel caps it at `net.core.somaxconn`).
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    ///
    /// # Blocking
    /// Parks only while a host name is looked up.
    ///
    /// ```
    /// let listener = greenhub::net::TcpListener::bind_with_backlog("127.0.0.1:0", 16).unwrap();
    /// # drop(listener);
    /// ```
    pub fn bind_with_backlog<A: ToSocketAddrs>(addr: A, backlog: u32) -> io::Result<TcpListener> {
        let io = each_addr(&addr, |a| {
            let socket = crate::sys::stream_socket(Domain::for_address(a), None)?;
            socket.set_reuse_address(true)?;
            socket.bind(&a.into())?;
            socket.listen(backlog.min(i32::MAX as u32) as i32)?;
            Ok(net::TcpListener::from(socket))
        })?;
        Ok(TcpListener {
            inner: Sock::registered(io)?,
        })
    }

    /// Wraps a std listener: switches it to non-blocking mode and registers
    /// it with this thread's hub.
    ///
    /// # Errors
    /// If the fd cannot be switched or registered.
    ///
    /// ```
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let listener = greenhub::net::TcpListener::from_std(std_listener).unwrap();
    /// # drop(listener);
    /// ```
    pub fn from_std(listener: net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: Sock::new(listener)?,
        })
    }

    /// Accepts a new connection, parking until one arrives.
    ///
    /// # Errors
    /// The OS error (for instance `EMFILE` when the process is out of fds;
    /// retry later, the connection stays queued). After such a shortage
    /// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) the next `accept` first
    /// pauses, 5 ms doubling up to 1 s while it lasts, as gevent's server
    /// sleeps and retries: a loop that retries at once cannot spin and
    /// starve the green threads whose ending would free an fd.
    ///
    /// # Blocking
    /// Parks until a client connects (and for the pause after a shortage).
    ///
    /// ```
    /// use greenhub::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let (_conn, _peer) = listener.accept().unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(None)
    }

    /// [`accept`](Self::accept), giving up after `timeout`.
    ///
    /// # Errors
    /// `TimedOut` if no client connected in time; else as `accept`.
    ///
    /// # Blocking
    /// Parks until a client connects or the time is up.
    ///
    /// ```
    /// use std::time::Duration;
    /// let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let err = listener.accept_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(crate::hub::deadline_after(timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> io::Result<(TcpStream, SocketAddr)> {
        let accepted = self
            .inner
            .accept(deadline, |l| crate::sys::accept(socket2::SockRef::from(l)));
        self.adopt(accepted)
    }

    /// [`accept`](Self::accept) without the listener's own back-off, for
    /// `StreamServer`, which backs off itself (waking early as handlers end).
    pub(crate) fn accept_without_backoff(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let accepted = self.inner.io_until(Direction::Read, None, |l| {
            crate::sys::accept(socket2::SockRef::from(l))
        });
        self.adopt(accepted)
    }

    fn adopt(
        &self,
        accepted: io::Result<(socket2::Socket, socket2::SockAddr)>,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = accepted?;
        let addr = addr
            .as_socket()
            .ok_or_else(|| io::Error::other("greenhub: a TCP listener accepted a non-IP peer"))?;
        let stream = TcpStream {
            inner: Sock::registered(net::TcpStream::from(socket))?,
        };
        Ok((stream, addr))
    }

    /// An endless iterator of accepted connections (each `accept`'s result).
    ///
    /// # Blocking
    /// Each `next` parks until a client connects.
    ///
    /// ```
    /// use greenhub::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let conn = listener.incoming().next().unwrap().unwrap();
    /// # drop(conn);
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets `IP_TTL` for the accepted sockets.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// listener.set_ttl(42).unwrap();
    /// assert_eq!(listener.ttl().unwrap(), 42);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// The `IP_TTL` option.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(listener.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }
}

/// The iterator of [`TcpListener::incoming`]; never returns `None`.
///
/// ```
/// use greenhub::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// greenhub::spawn(move || { let _ = TcpStream::connect(addr); });
/// let first = listener.incoming().next().unwrap().unwrap();
/// assert_eq!(first.local_addr().unwrap(), addr);
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
