//! UDP: [`UdpSocket`].

use std::io;
use std::net::{self, SocketAddr};

use super::addr::{each_addr, first_addr, ToSocketAddrs};
use super::sock::Sock;
use crate::hub::io::Direction;

/// A UDP socket (std's `UdpSocket`, on the hub): receiving parks the current
/// green thread until a datagram arrives.
///
/// ```
/// use greenhub::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
pub struct UdpSocket {
    inner: Sock<net::UdpSocket>,
}

socket_common!(UdpSocket, net::UdpSocket);
common_methods!(
    UdpSocket,
    net::UdpSocket,
    std::net::SocketAddr,
    "let s = greenhub::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();"
);
io_methods!(
    UdpSocket,
    std::net::SocketAddr,
    "let s = greenhub::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();"
);

impl UdpSocket {
    /// Binds a socket to `addr`, trying each address it resolves to.
    ///
    /// # Errors
    /// The last address's OS error, or the lookup's error.
    ///
    /// # Blocking
    /// Parks only while a host name is looked up.
    ///
    /// ```
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(socket.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        UdpSocket::from_std(each_addr(&addr, net::UdpSocket::bind)?)
    }

    /// Wraps a std socket: switches it to non-blocking mode and registers it
    /// with this thread's hub.
    ///
    /// # Errors
    /// If the fd cannot be switched or registered.
    ///
    /// ```
    /// let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let socket = greenhub::net::UdpSocket::from_std(std_socket).unwrap();
    /// # drop(socket);
    /// ```
    pub fn from_std(socket: net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Sock::new(socket)?,
        })
    }

    /// Sets the default peer for `send` and the only one `recv` hears from.
    ///
    /// # Errors
    /// The last address's OS error, or the lookup's error.
    ///
    /// # Blocking
    /// Parks only while a host name is looked up.
    ///
    /// ```
    /// use greenhub::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.inner.get().connect(a))
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    /// The OS error (`ConnectionRefused` after an ICMP port unreachable,
    /// ...); `TimedOut` after the write timeout.
    ///
    /// # Blocking
    /// Parks while the send buffer is full.
    ///
    /// ```
    /// use greenhub::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
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
    /// use greenhub::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// b.connect(a.local_addr().unwrap()).unwrap();
    /// a.send_to(b"hi", b.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 2);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.recv(buf))
    }

    /// Receives a datagram from the connected peer without removing it.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    ///
    /// # Blocking
    /// Parks until a datagram arrives.
    ///
    /// ```
    /// use greenhub::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// b.connect(a.local_addr().unwrap()).unwrap();
    /// a.send_to(b"hi", b.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(b.peek(&mut buf).unwrap(), 2);
    /// assert_eq!(b.recv(&mut buf).unwrap(), 2);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.peek(buf))
    }

    /// Sends a datagram to `addr` (the first address it resolves to).
    ///
    /// # Errors
    /// The OS error or the lookup's error; `TimedOut` after the write timeout.
    ///
    /// # Blocking
    /// Parks while a host name is looked up or the send buffer is full.
    ///
    /// ```
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let to = socket.local_addr().unwrap();
    /// assert_eq!(socket.send_to(b"to myself", to).unwrap(), 9);
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = first_addr(&addr)?;
        self.inner.io(Direction::Write, |s| s.send_to(buf, to))
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
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// socket.send_to(b"echo", socket.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// let (n, from) = socket.recv_from(&mut buf).unwrap();
    /// assert_eq!((n, from), (4, socket.local_addr().unwrap()));
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Direction::Read, |s| s.recv_from(buf))
    }

    /// [`recv_from`](Self::recv_from) without removing the datagram.
    ///
    /// # Errors
    /// As `recv_from`.
    ///
    /// # Blocking
    /// Parks until a datagram arrives.
    ///
    /// ```
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// socket.send_to(b"echo", socket.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.peek_from(&mut buf).unwrap().0, 4);
    /// assert_eq!(socket.recv_from(&mut buf).unwrap().0, 4);
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Direction::Read, |s| s.peek_from(buf))
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// socket.set_broadcast(true).unwrap();
    /// assert!(socket.broadcast().unwrap());
    /// ```
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.inner.get().set_broadcast(broadcast)
    }

    /// The `SO_BROADCAST` option.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(!socket.broadcast().unwrap());
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.get().broadcast()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// socket.set_ttl(9).unwrap();
    /// assert_eq!(socket.ttl().unwrap(), 9);
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
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(socket.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }
}
