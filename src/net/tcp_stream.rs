//! TCP connections: [`TcpStream`].

use std::io;
use std::net::{self, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr};

use super::addr::{each_addr, ToSocketAddrs};
use super::sock::Sock;
use crate::hub::io::Direction;

/// A TCP connection (std's `TcpStream`, on the hub). Reads and writes park
/// the current green thread until the socket is ready.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use greenhub::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// greenhub::spawn(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     conn.write_all(b"hello\n").unwrap();
/// });
/// let mut line = String::new();
/// BufReader::new(TcpStream::connect(addr).unwrap()).read_line(&mut line).unwrap();
/// assert_eq!(line, "hello\n");
/// ```
pub struct TcpStream {
    pub(super) inner: Sock<net::TcpStream>,
}

socket_common!(TcpStream, net::TcpStream);
stream_io!(TcpStream);
common_methods!(
    TcpStream,
    net::TcpStream,
    std::net::SocketAddr,
    "let l = greenhub::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\nlet s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();"
);
io_methods!(
    TcpStream,
    std::net::SocketAddr,
    "let l = greenhub::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\nlet s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();"
);

/// Connects to `addr` within `deadline`, from `source` if given:
/// a non-blocking `connect`, then the I/O loop waits for writability and
/// reads the outcome from `SO_ERROR`.
fn connect_addr(
    addr: SocketAddr,
    deadline: Option<Instant>,
    source: Option<SocketAddr>,
) -> io::Result<TcpStream> {
    let socket = crate::sys::stream_socket(Domain::for_address(addr), Some(Protocol::TCP))?;
    if let Some(source) = source {
        socket.bind(&SockAddr::from(source))?;
    }
    let inner = Sock::registered(net::TcpStream::from(socket))?;
    let target = SockAddr::from(addr);
    let mut started = false;
    inner.io_until(Direction::Write, deadline, |s| {
        let s = socket2::SockRef::from(s);
        if !std::mem::replace(&mut started, true) {
            return match s.connect(&target) {
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                done => done,
            };
        }
        if let Some(e) = s.take_error()? {
            return Err(e);
        }
        match s.peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(e),
        }
    })?;
    Ok(TcpStream { inner })
}

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn.
    ///
    /// # Errors
    /// The last address's OS error (`ConnectionRefused`, ...) or the
    /// lookup's error.
    ///
    /// # Blocking
    /// Parks while the name is looked up and the handshake completes.
    ///
    /// ```
    /// use greenhub::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// # drop(stream);
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| connect_addr(a, None, None))
    }

    /// Connects to `addr`, giving up after `timeout`.
    ///
    /// # Errors
    /// `TimedOut` when the time is up; `InvalidInput` for a zero timeout (as
    /// std); else the OS error.
    ///
    /// # Blocking
    /// Parks until connected or the time is up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap();
    /// # drop(stream);
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        connect_addr(*addr, crate::hub::deadline_after(timeout), None)
    }

    /// Connects to `addr` (a name or an address), trying each address it
    /// resolves to until one answers, all within `timeout` if one is given,
    /// from the local address `source` if one is given (gevent's
    /// `create_connection(address, timeout, source_address)`). The timeout
    /// is one deadline for every try, not one per address; the name lookup
    /// itself is not bounded by it.
    ///
    /// # Errors
    /// `TimedOut` when the time is up; `InvalidInput` for a zero timeout;
    /// the lookup's error; else the last address's OS error (binding
    /// `source` to an address of the other family fails for that address).
    ///
    /// # Blocking
    /// Parks while the name is looked up and the handshake completes.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    /// use greenhub::net::{TcpListener, TcpStream};
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let port = listener.local_addr().unwrap().port();
    /// let from: SocketAddr = "127.0.0.1:0".parse().unwrap();
    /// let stream = TcpStream::connect_with(("localhost", port), Some(Duration::from_secs(5)), Some(from)).unwrap();
    /// let (_conn, peer) = listener.accept().unwrap();
    /// assert_eq!(stream.local_addr().unwrap(), peer);
    /// ```
    #[doc(alias = "create_connection")]
    pub fn connect_with<A: ToSocketAddrs>(
        addr: A,
        timeout: Option<Duration>,
        source: Option<SocketAddr>,
    ) -> io::Result<TcpStream> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let deadline = timeout.and_then(crate::hub::deadline_after);
        each_addr(&addr, |a| connect_addr(a, deadline, source))
    }

    /// Wraps a std stream: switches it to non-blocking mode and registers it
    /// with this thread's hub.
    ///
    /// # Errors
    /// If the fd cannot be switched or registered.
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    /// let stream = greenhub::net::TcpStream::from_std(std_stream).unwrap();
    /// # drop(stream);
    /// ```
    pub fn from_std(stream: net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: Sock::new(stream)?,
        })
    }
}

impl TcpStream {
    /// Shuts down the read half, the write half (the peer reads end of
    /// file), or both.
    ///
    /// # Errors
    /// The OS error (`NotConnected`, ...).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let client = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut conn, _) = l.accept().unwrap();
    /// client.shutdown(Shutdown::Write).unwrap();
    /// assert_eq!(conn.read(&mut [0; 8]).unwrap(), 0); // end of file
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    /// Waits until data arrives, then reads it into a buffer the hub lends
    /// and calls `f` with the bytes read (an empty slice at end of file).
    /// Returns what `f` returns. Reads at most 16 KiB at a time.
    ///
    /// The way to write a per-connection loop that costs little while the
    /// connection is idle. A green thread parked in `read(&mut buf)` with
    /// `let mut buf = [0; 4096]` on its stack keeps the buffer's memory
    /// committed while it waits: the zeroed array and the frames below it
    /// span two 4 KiB stack pages (measured: 8.3 KB of server memory per
    /// idle connection with 10,000 connections). Here the green thread waits
    /// holding no buffer, so it costs the one stack page every parked green
    /// thread costs (measured: 4.2 KB per idle connection); the buffer is
    /// lent while `f` runs (also while `f` blocks, e.g. in `write_all`),
    /// then goes back to this OS thread's pool for the next reader. The
    /// bytes beyond those read are never shown to `f`. `f` runs on the
    /// calling green thread, so it may block. To drop the stack page too
    /// while the connection is idle, hand the stream on to the next round
    /// with [`spawn_when_readable`](TcpStream::spawn_when_readable)
    /// (measured: 240 B per idle connection).
    ///
    /// # Errors
    /// As `read`, including `TimedOut` after the read timeout; `f` is not
    /// called then.
    ///
    /// # Blocking
    /// Parks until data arrives (or end of file), then runs `f`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut client = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (conn, _) = l.accept().unwrap();
    /// let echo = greenhub::spawn(move || -> std::io::Result<()> {
    ///     loop {
    ///         // Write back each piece while the buffer is lent.
    ///         let n = conn.read_with(|data| (&conn).write_all(data).map(|()| data.len()))??;
    ///         if n == 0 {
    ///             return Ok(()); // end of file
    ///         }
    ///     }
    /// });
    /// client.write_all(b"ping").unwrap();
    /// let mut back = [0; 4];
    /// client.read_exact(&mut back).unwrap();
    /// assert_eq!(&back, b"ping");
    /// client.shutdown(std::net::Shutdown::Write).unwrap();
    /// echo.join().unwrap().unwrap();
    /// ```
    pub fn read_with<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> io::Result<R> {
        self.inner.read_with(f)
    }

    /// Spawns `f(self)` as a green thread that starts once the stream is
    /// readable: data, end of file or an error is there to read. Until
    /// then it is a parked green thread with no stack, about 200 bytes
    /// (its record, its function with the stream, and the stream's place
    /// in the hub's fd table), where one parked in a read holds at least
    /// its stack's top page (4 KiB) and, with a `[0; 4096]` buffer on its
    /// stack, a second one.
    ///
    /// This is how to write a connection loop whose idle connections cost
    /// no stack: handle what has arrived, then hand the stream to the next
    /// round with `spawn_when_readable` and return, so that the stack goes
    /// back to the pool while the connection waits. An idle connection
    /// held this way costs less memory than a parked goroutine or a tokio
    /// task with its buffer (`cargo bench --bench idle`).
    ///
    /// If the stream may be readable now (nothing showed it empty since the
    /// last readable event) one `poll` that does not wait says so, and the
    /// green thread is scheduled at once. The returned handle joins, kills
    /// or detaches it like any other: a kill before it starts drops `f`
    /// and the stream (closing it) without giving it a stack. Its run info
    /// reads `parked: fd N to be readable to start, no stack yet`.
    ///
    /// The new green thread is not the caller's: a [`StreamServer`]'s
    /// `stop` neither waits for nor kills it. To close such connections at
    /// shutdown, keep the handles, for instance in a
    /// [`Group`](crate::pool::Group) (see the `echo_server` example).
    ///
    /// [`StreamServer`]: crate::server::StreamServer
    ///
    /// # Panics
    /// If another green thread is parked reading this stream (a clone's
    /// read).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use greenhub::net::{TcpListener, TcpStream};
    ///
    /// /// Writes back what has arrived, then waits for more with no stack.
    /// fn echo(conn: TcpStream) {
    ///     match conn.read_with(|data| (&conn).write_all(data).map(|()| data.len())) {
    ///         Ok(Ok(n)) if n > 0 => drop(conn.spawn_when_readable(echo)),
    ///         _ => {} // end of file or an error: dropping `conn` closes it
    ///     }
    /// }
    ///
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (conn, _) = l.accept().unwrap();
    /// let first = conn.spawn_when_readable(echo);
    /// greenhub::sleep(std::time::Duration::from_millis(10));
    /// assert!(!first.is_finished()); // waiting, with no stack
    ///
    /// for word in [&b"ping"[..], b"pong"] {
    ///     client.write_all(word).unwrap();
    ///     let mut back = [0; 4];
    ///     client.read_exact(&mut back).unwrap();
    ///     assert_eq!(&back, word);
    /// }
    /// first.join().unwrap(); // it handed the stream on and ended
    /// ```
    #[track_caller]
    pub fn spawn_when_readable<T: 'static>(
        self,
        f: impl FnOnce(TcpStream) -> T + 'static,
    ) -> crate::JoinHandle<T> {
        super::sock::spawn_when_readable(self, |s| &s.inner, None, move |s, _| f(s))
    }

    /// [`spawn_when_readable`](TcpStream::spawn_when_readable) with an idle
    /// limit: the green thread starts once the stream is readable or
    /// `timeout` has passed, whichever comes first, and `f` is told which
    /// ([`Wake::Ready`] or [`Wake::TimedOut`]; data may have come since the
    /// timeout). The way to close connections that stay idle too long; the
    /// timer adds about 100 bytes while it waits.
    ///
    /// [`Wake::Ready`]: crate::hub::Wake::Ready
    /// [`Wake::TimedOut`]: crate::hub::Wake::TimedOut
    ///
    /// # Panics
    /// As [`spawn_when_readable`](TcpStream::spawn_when_readable).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use greenhub::hub::Wake;
    /// use greenhub::net::{TcpListener, TcpStream};
    ///
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (conn, _) = l.accept().unwrap();
    /// let idle = conn.spawn_when_readable_timeout(Duration::from_millis(20), |conn, why| {
    ///     if why == Wake::TimedOut {
    ///         drop(conn); // idle too long: close it
    ///     }
    ///     why
    /// });
    /// assert_eq!(idle.join().unwrap(), Wake::TimedOut);
    /// assert_eq!(client.read(&mut [0; 8]).unwrap(), 0); // closed
    /// ```
    #[track_caller]
    pub fn spawn_when_readable_timeout<T: 'static>(
        self,
        timeout: Duration,
        f: impl FnOnce(TcpStream, crate::hub::Wake) -> T + 'static,
    ) -> crate::JoinHandle<T> {
        super::sock::spawn_when_readable(self, |s| &s.inner, Some(timeout), f)
    }

    /// Reads without removing the data from the queue.
    ///
    /// # Errors
    /// As `read`, including `TimedOut` after the read timeout.
    ///
    /// # Blocking
    /// Parks until data arrives.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut client = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut conn, _) = l.accept().unwrap();
    /// client.write_all(b"abc").unwrap();
    /// let mut buf = [0; 3];
    /// assert_eq!(conn.peek(&mut buf).unwrap(), 3);
    /// conn.read_exact(&mut buf).unwrap(); // still there
    /// assert_eq!(&buf, b"abc");
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// stream.set_nodelay(true).unwrap();
    /// assert!(stream.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get().set_nodelay(nodelay)
    }

    /// The `TCP_NODELAY` option.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(!stream.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get().nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// stream.set_ttl(7).unwrap();
    /// assert_eq!(stream.ttl().unwrap(), 7);
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
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(stream.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    /// Sets `SO_LINGER`. `Some(Duration::ZERO)` makes dropping the stream
    /// reset the connection (the peer's read fails with `ConnectionReset`).
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// use std::time::Duration;
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// stream.set_linger(Some(Duration::ZERO)).unwrap();
    /// assert_eq!(stream.linger().unwrap(), Some(Duration::ZERO));
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.inner.sock_ref().set_linger(linger)
    }

    /// The `SO_LINGER` option.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let stream = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(stream.linger().unwrap(), None);
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.inner.sock_ref().linger()
    }
}
