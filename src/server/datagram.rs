//! [`DatagramServer`]: a handler per UDP datagram, on the same machinery as
//! [`StreamServer`](super::StreamServer) (a receive loop in a green thread
//! of its own, a bound on concurrent handlers, graceful `stop`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::{Shared, Source, Stopper};
use crate::net::UdpSocket;
use crate::sync::Mutex;

/// The largest UDP payload: every datagram fits the receive buffer whole.
const MAX_DATAGRAM: usize = 65_536;

/// A UDP server: receives datagrams in a loop (in a green thread of its
/// own) and spawns `handler(datagram, peer_addr)` in a new green thread for
/// each (gevent's `DatagramServer`). Answer with [`Datagram::reply`].
///
/// Made with [`bind`](DatagramServer::bind), or with
/// [`ServerBuilder::bind_datagram`](super::ServerBuilder::bind_datagram) to
/// bound the concurrent handlers: while that many run, the server stops
/// receiving, and datagrams wait in the socket's receive buffer (the
/// kernel drops what does not fit, as UDP does). Run and stop it as a
/// [`StreamServer`](super::StreamServer).
///
/// ```
/// use std::time::Duration;
/// use greenhub::net::UdpSocket;
/// use greenhub::server::DatagramServer;
///
/// // An upper-casing echo.
/// let server = DatagramServer::bind("127.0.0.1:0", |dgram, _peer| {
///     let _ = dgram.reply(&dgram.data().to_ascii_uppercase());
/// })
/// .unwrap();
/// server.start().unwrap();
///
/// let client = UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.send_to(b"hi", server.local_addr()).unwrap();
/// let mut buf = [0; 8];
/// let (n, _) = client.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"HI");
/// server.stop(Duration::from_secs(1));
/// ```
pub struct DatagramServer {
    shared: Rc<Shared<DatagramSource>>,
}

/// One datagram a [`DatagramServer`] received, with the way to answer it.
///
/// ```
/// use greenhub::server::DatagramServer;
/// let server = DatagramServer::bind("127.0.0.1:0", |dgram, peer| {
///     println!("{} bytes from {peer}", dgram.data().len());
/// })
/// .unwrap();
/// # drop(server);
/// ```
pub struct Datagram {
    data: Vec<u8>,
    peer: SocketAddr,
    out: Rc<Outbox>,
}

/// The server's socket as the handlers see it: one at a time sends, since
/// an fd has a single slot for a writer parked on it.
struct Outbox {
    socket: Rc<UdpSocket>,
    sending: Mutex<()>,
}

impl Datagram {
    /// The datagram's payload.
    ///
    /// ```
    /// # use greenhub::server::DatagramServer;
    /// let server = DatagramServer::bind("127.0.0.1:0", |d, _| assert!(d.data().len() <= 65_536)).unwrap();
    /// # drop(server);
    /// ```
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the payload out.
    ///
    /// ```
    /// # use greenhub::server::DatagramServer;
    /// let server = DatagramServer::bind("127.0.0.1:0", |d, _| drop(d.into_data())).unwrap();
    /// # drop(server);
    /// ```
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Sends `buf` back to the peer it came from, from the server's socket
    /// (gevent's `server.sendto(data, address)`); returns the bytes sent.
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`].
    ///
    /// # Blocking
    /// Parks while another handler sends, or the socket's send buffer is
    /// full.
    ///
    /// ```
    /// # use greenhub::server::DatagramServer;
    /// let server = DatagramServer::bind("127.0.0.1:0", |d, _| { let _ = d.reply(b"pong"); }).unwrap();
    /// # drop(server);
    /// ```
    pub fn reply(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_to(buf, self.peer)
    }

    /// Sends `buf` to `addr` from the server's socket.
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`].
    ///
    /// # Blocking
    /// As [`reply`](Datagram::reply).
    ///
    /// ```
    /// # use greenhub::server::DatagramServer;
    /// let server = DatagramServer::bind("127.0.0.1:0", |d, peer| { let _ = d.send_to(b"ack", peer); }).unwrap();
    /// # drop(server);
    /// ```
    #[doc(alias = "sendto")]
    pub fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        let _turn = self.out.sending.lock();
        self.out.socket.send_to(buf, addr)
    }
}

impl fmt::Debug for Datagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datagram")
            .field("len", &self.data.len())
            .field("peer", &self.peer)
            .finish()
    }
}

/// The receive side: the loop's socket and a buffer for the largest
/// datagram, reused for every receive (each handler gets a copy of its
/// bytes only).
pub(super) struct DatagramSource {
    out: Rc<Outbox>,
    buf: std::cell::RefCell<Vec<u8>>,
}

impl DatagramSource {
    pub(super) fn new(socket: UdpSocket) -> DatagramSource {
        DatagramSource {
            out: Rc::new(Outbox {
                socket: Rc::new(socket),
                sending: Mutex::new(()),
            }),
            buf: std::cell::RefCell::new(vec![0; MAX_DATAGRAM]),
        }
    }
}

impl Source for DatagramSource {
    type Item = Datagram;
    const SERVER: &'static str = "DatagramServer";
    const CALL: &'static str = "recv_from";

    fn next(&self) -> io::Result<(Datagram, SocketAddr)> {
        let mut buf = self.buf.borrow_mut();
        let (n, peer) = self.out.socket.recv_from(&mut buf)?;
        let dgram = Datagram {
            data: buf[..n].to_vec(),
            peer,
            out: self.out.clone(),
        };
        Ok((dgram, peer))
    }

    /// A UDP socket reports an earlier send's ICMP error (port unreachable:
    /// `ConnectionRefused`) on a later receive: it concerns that peer only.
    fn is_transient(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
        ) || matches!(
            e.raw_os_error(),
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EHOSTDOWN | libc::ENETDOWN)
        )
    }
}

impl DatagramServer {
    /// Binds a UDP socket to `addr` and makes a server that runs `handler`
    /// for each datagram, with no bound on concurrent handlers. Nothing is
    /// received until [`start`](Self::start) or
    /// [`serve_forever`](Self::serve_forever).
    ///
    /// # Errors
    /// The errors of binding (`AddrInUse`, ...).
    ///
    /// # Blocking
    /// May park while a host name in `addr` is resolved.
    ///
    /// ```
    /// let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |_d, _peer| {}).unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<DatagramServer>
    where
        A: crate::net::ToSocketAddrs,
        F: Fn(Datagram, SocketAddr) + 'static,
    {
        super::ServerBuilder::new().bind_datagram(addr, handler)
    }

    pub(super) fn from_parts(
        socket: UdpSocket,
        handler: Rc<dyn Fn(Datagram, SocketAddr)>,
        max_handlers: Option<usize>,
    ) -> io::Result<DatagramServer> {
        let local_addr = socket.local_addr()?;
        let shared = Shared::new(DatagramSource::new(socket), local_addr, handler, max_handlers);
        Ok(DatagramServer {
            shared: Rc::new(shared),
        })
    }

    /// The address the socket is bound to.
    ///
    /// ```
    /// let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |_d, _p| {}).unwrap();
    /// println!("serving on {}", server.local_addr());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Starts the receive loop in a green thread of its own and returns at
    /// once; as [`StreamServer::start`](super::StreamServer::start).
    ///
    /// # Errors
    /// When the loop's green thread cannot get a stack.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |_d, _p| {}).unwrap();
    /// server.start().unwrap();
    /// server.stop(Duration::ZERO);
    /// ```
    pub fn start(&self) -> io::Result<()> {
        self.shared.start()
    }

    /// Serves until stopped; as
    /// [`StreamServer::serve_forever`](super::StreamServer::serve_forever).
    ///
    /// # Errors
    /// The receive loop's error if receiving failed for good.
    ///
    /// # Blocking
    /// Parks the caller until the server is stopped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |_d, _p| {}).unwrap();
    /// let stopper = server.stopper();
    /// greenhub::spawn_later(Duration::from_millis(10), move || stopper.stop(Duration::ZERO));
    /// server.serve_forever().unwrap();
    /// ```
    pub fn serve_forever(&self) -> io::Result<()> {
        self.shared.serve_forever()
    }

    /// Stops receiving, waits up to `grace` for the running handlers, then
    /// kills the rest; the socket closes when the last handler holding it
    /// has ended. As [`StreamServer::stop`](super::StreamServer::stop).
    ///
    /// # Blocking
    /// Parks the caller for up to `grace`, plus the time the killed
    /// handlers take to unwind.
    ///
    /// # Panics
    /// Inside a hub callback.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |_d, _p| {}).unwrap();
    /// server.start().unwrap();
    /// server.stop(Duration::from_millis(100));
    /// assert!(server.stopper().is_stopped());
    /// ```
    pub fn stop(&self, grace: Duration) {
        self.shared.stop(grace);
    }

    /// A handle that stops this server from another green thread.
    ///
    /// ```
    /// let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |_d, _p| {}).unwrap();
    /// let stopper = server.stopper();
    /// stopper.stop(std::time::Duration::ZERO);
    /// assert!(stopper.is_stopped());
    /// ```
    pub fn stopper(&self) -> Stopper {
        Stopper {
            shared: self.shared.clone(),
        }
    }

    /// How many handlers are running now.
    ///
    /// ```
    /// let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |_d, _p| {}).unwrap();
    /// assert_eq!(server.handler_count(), 0);
    /// ```
    pub fn handler_count(&self) -> usize {
        self.shared.active.get()
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}
