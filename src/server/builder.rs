//! [`ServerBuilder`]: the backlog and the bound on concurrent handlers,
//! for a [`StreamServer`] or a [`DatagramServer`].

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use super::{Datagram, DatagramServer, Shared, StreamServer, DEFAULT_BACKLOG};
use crate::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

/// Sets the backlog and the bound on concurrent handlers before creating a
/// [`StreamServer`]; from [`StreamServer::builder`].
///
/// ```
/// use greenhub::server::StreamServer;
///
/// let server = StreamServer::builder()
///     .backlog(4096)
///     .max_handlers(10_000)
///     .bind("127.0.0.1:0", |_stream, _peer| {})
///     .unwrap();
/// assert_eq!(server.local_addr().ip().to_string(), "127.0.0.1");
/// ```
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    backlog: u32,
    max_handlers: Option<usize>,
}

impl Default for ServerBuilder {
    fn default() -> ServerBuilder {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// The default backlog, no bound on handlers.
    ///
    /// ```
    /// let b = greenhub::server::ServerBuilder::new();
    /// # drop(b);
    /// ```
    pub fn new() -> ServerBuilder {
        ServerBuilder {
            backlog: DEFAULT_BACKLOG,
            max_handlers: None,
        }
    }

    /// The listen backlog: how many connections the kernel queues before
    /// they are accepted (capped by `net.core.somaxconn`). Used by
    /// [`bind`](Self::bind) only.
    ///
    /// ```
    /// let b = greenhub::server::StreamServer::builder().backlog(16);
    /// # drop(b);
    /// ```
    pub fn backlog(mut self, backlog: u32) -> ServerBuilder {
        self.backlog = backlog;
        self
    }

    /// At most `max` handlers run at once; while that many run, the server
    /// stops accepting (new connections wait in the backlog) until one ends.
    ///
    /// # Panics
    /// If `max` is 0.
    ///
    /// ```
    /// let b = greenhub::server::StreamServer::builder().max_handlers(1000);
    /// # drop(b);
    /// ```
    pub fn max_handlers(mut self, max: usize) -> ServerBuilder {
        assert!(max > 0, "greenhub: a server needs room for at least one handler");
        self.max_handlers = Some(max);
        self
    }

    /// Binds a listener to `addr` with this backlog, for a server running
    /// `handler` per connection.
    ///
    /// # Errors
    /// The errors of binding and listening.
    ///
    /// # Blocking
    /// May park while a host name in `addr` is resolved.
    ///
    /// ```
    /// let server = greenhub::server::StreamServer::builder()
    ///     .backlog(64)
    ///     .bind("127.0.0.1:0", |_stream, _peer| {})
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn bind<A, F>(self, addr: A, handler: F) -> io::Result<StreamServer>
    where
        A: ToSocketAddrs,
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        let listener = TcpListener::bind_with_backlog(addr, self.backlog)?;
        self.listener(listener, handler)
    }

    /// A server on a listener the caller made; the backlog setting does not
    /// apply to it.
    ///
    /// # Errors
    /// When the listener's local address cannot be read.
    ///
    /// ```
    /// let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let server = greenhub::server::StreamServer::builder()
    ///     .max_handlers(8)
    ///     .listener(listener, |_stream, _peer| {})
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn listener<F>(self, listener: TcpListener, handler: F) -> io::Result<StreamServer>
    where
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        let local_addr = listener.local_addr()?;
        let shared = Shared::new(listener, local_addr, Rc::new(handler), self.max_handlers);
        Ok(StreamServer {
            shared: Rc::new(shared),
        })
    }

    /// Binds a UDP socket to `addr`, for a [`DatagramServer`] running
    /// `handler` per datagram, at most `max_handlers` at once (the backlog
    /// does not apply).
    ///
    /// # Errors
    /// The errors of binding.
    ///
    /// # Blocking
    /// May park while a host name in `addr` is resolved.
    ///
    /// ```
    /// let server = greenhub::server::ServerBuilder::new()
    ///     .max_handlers(64)
    ///     .bind_datagram("127.0.0.1:0", |_dgram, _peer| {})
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn bind_datagram<A, F>(self, addr: A, handler: F) -> io::Result<DatagramServer>
    where
        A: ToSocketAddrs,
        F: Fn(Datagram, SocketAddr) + 'static,
    {
        self.datagram_socket(UdpSocket::bind(addr)?, handler)
    }

    /// A [`DatagramServer`] on a socket the caller made.
    ///
    /// # Errors
    /// When the socket's local address cannot be read.
    ///
    /// ```
    /// let socket = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let server = greenhub::server::ServerBuilder::new()
    ///     .datagram_socket(socket, |_dgram, _peer| {})
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn datagram_socket<F>(self, socket: UdpSocket, handler: F) -> io::Result<DatagramServer>
    where
        F: Fn(Datagram, SocketAddr) + 'static,
    {
        DatagramServer::from_parts(socket, Rc::new(handler), self.max_handlers)
    }
}
