//! Unix domain stream sockets: [`UnixListener`] and [`UnixStream`].

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr};

use super::sock::Sock;
use super::tcp::DEFAULT_BACKLOG;

/// A Unix domain socket server (std's `UnixListener`, on the hub).
///
/// ```
/// use greenhub::net::{UnixListener, UnixStream};
/// let dir = std::env::temp_dir().join(format!("greenhub-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("listener.sock");
/// # let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let _client = UnixStream::connect(&path).unwrap();
/// let (_conn, _addr) = listener.accept().unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    inner: Sock<net::UnixListener>,
}

/// A Unix domain stream connection (std's `UnixStream`, on the hub).
///
/// ```
/// use std::io::{Read, Write};
/// let (mut a, mut b) = greenhub::net::UnixStream::pair().unwrap();
/// a.write_all(b"hi").unwrap();
/// let mut buf = [0; 2];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// ```
pub struct UnixStream {
    inner: Sock<net::UnixStream>,
}

socket_common!(UnixListener, net::UnixListener);
socket_common!(UnixStream, net::UnixStream);
stream_io!(UnixStream);
common_methods!(
    UnixListener,
    net::UnixListener,
    SocketAddr,
    "let path = std::env::temp_dir().join(format!(\"greenhub-doc-{}.sock\", std::process::id()));
let _ = std::fs::remove_file(&path);
let s = greenhub::net::UnixListener::bind(&path).unwrap();
std::fs::remove_file(&path).unwrap();"
);
common_methods!(
    UnixStream,
    net::UnixStream,
    SocketAddr,
    "let (s, _peer) = greenhub::net::UnixStream::pair().unwrap();"
);
io_methods!(
    UnixStream,
    SocketAddr,
    "let (s, _peer) = greenhub::net::UnixStream::pair().unwrap();"
);

impl UnixListener {
    /// Creates a socket file at `path` and listens on it.
    ///
    /// # Errors
    /// The OS error (`AddrInUse` if the file exists, ...).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenhub-doc-bind-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = greenhub::net::UnixListener::bind(&path).unwrap();
    /// assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let socket = crate::sys::stream_socket(Domain::UNIX, None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        socket.listen(DEFAULT_BACKLOG as i32)?;
        Ok(UnixListener {
            inner: Sock::registered(net::UnixListener::from(socket))?,
        })
    }

    /// Wraps a std listener: switches it to non-blocking mode and registers
    /// it with this thread's hub.
    ///
    /// # Errors
    /// If the fd cannot be switched or registered.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenhub-doc-from-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let listener = greenhub::net::UnixListener::from_std(std_listener).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_std(listener: net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: Sock::new(listener)?,
        })
    }

    /// Accepts a new connection, parking until one arrives.
    ///
    /// # Errors
    /// The OS error (`EMFILE`, ...).
    ///
    /// # Blocking
    /// Parks until a client connects.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("greenhub-doc-acc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = greenhub::net::UnixListener::bind(&path).unwrap();
    /// let _client = greenhub::net::UnixStream::connect(&path).unwrap();
    /// let (_conn, _addr) = listener.accept().unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
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
    /// # let path = std::env::temp_dir().join(format!("greenhub-doc-acct-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = greenhub::net::UnixListener::bind(&path).unwrap();
    /// let err = listener.accept_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(UnixStream, SocketAddr)> {
        self.accept_until(crate::hub::deadline_after(timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.inner.accept(deadline, net::UnixListener::accept)?;
        Ok((UnixStream::from_std(stream)?, addr))
    }

    /// An endless iterator of accepted connections.
    ///
    /// # Blocking
    /// Each `next` parks until a client connects.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("greenhub-doc-inc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = greenhub::net::UnixListener::bind(&path).unwrap();
    /// let _client = greenhub::net::UnixStream::connect(&path).unwrap();
    /// let conn = listener.incoming().next().unwrap().unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }
}

/// The iterator of [`UnixListener::incoming`]; never returns `None`.
///
/// ```
/// use greenhub::net::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("greenhub-incoming-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path).unwrap();
/// let p = path.clone();
/// greenhub::spawn(move || { let _ = UnixStream::connect(&p); });
/// assert!(listener.incoming().next().unwrap().is_ok());
/// std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// Longest pause between retries of a Unix `connect` to a full backlog.
const MAX_CONNECT_RETRY: Duration = Duration::from_millis(64);

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// A Unix `connect` completes at once or fails with `EAGAIN` when the
    /// listener's backlog is full; the kernel gives the connecting socket no
    /// readiness event for that, so greenhub retries after a growing pause
    /// (1 ms up to 64 ms), parking the green thread between tries.
    ///
    /// # Errors
    /// The OS error (`NotFound`, `ConnectionRefused`, ...).
    ///
    /// # Blocking
    /// Parks only while the listener's backlog is full.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("greenhub-doc-co-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = greenhub::net::UnixListener::bind(&path).unwrap();
    /// let stream = greenhub::net::UnixStream::connect(&path).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        let socket = crate::sys::stream_socket(Domain::UNIX, None)?;
        let mut pause = Duration::from_millis(1);
        loop {
            match socket.connect(&addr) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(pause);
                    pause = (pause * 2).min(MAX_CONNECT_RETRY);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => break done?,
            }
        }
        Ok(UnixStream {
            inner: Sock::registered(net::UnixStream::from(socket))?,
        })
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    /// The OS error (`EMFILE`, ...).
    ///
    /// ```
    /// let (a, b) = greenhub::net::UnixStream::pair().unwrap();
    /// # drop((a, b));
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Spawns `f(self)` as a green thread that starts once the stream is
    /// readable, holding no stack until then: as
    /// [`TcpStream::spawn_when_readable`](super::TcpStream::spawn_when_readable).
    ///
    /// # Panics
    /// If another green thread is parked reading this stream.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut a, b) = greenhub::net::UnixStream::pair().unwrap();
    /// let reader = b.spawn_when_readable(|mut b| {
    ///     let mut word = [0; 5];
    ///     b.read_exact(&mut word).map(|()| word)
    /// });
    /// a.write_all(b"hello").unwrap();
    /// assert_eq!(&reader.join().unwrap().unwrap(), b"hello");
    /// ```
    #[track_caller]
    pub fn spawn_when_readable<T: 'static>(
        self,
        f: impl FnOnce(UnixStream) -> T + 'static,
    ) -> crate::JoinHandle<T> {
        super::sock::spawn_when_readable(self, |s| &s.inner, None, move |s, _| f(s))
    }

    /// [`spawn_when_readable`](UnixStream::spawn_when_readable) with an idle
    /// limit: as
    /// [`TcpStream::spawn_when_readable_timeout`](super::TcpStream::spawn_when_readable_timeout).
    ///
    /// # Panics
    /// If another green thread is parked reading this stream.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::hub::Wake;
    /// let (_a, b) = greenhub::net::UnixStream::pair().unwrap();
    /// let h = b.spawn_when_readable_timeout(Duration::from_millis(5), |_, why| why);
    /// assert_eq!(h.join().unwrap(), Wake::TimedOut);
    /// ```
    #[track_caller]
    pub fn spawn_when_readable_timeout<T: 'static>(
        self,
        timeout: std::time::Duration,
        f: impl FnOnce(UnixStream, crate::hub::Wake) -> T + 'static,
    ) -> crate::JoinHandle<T> {
        super::sock::spawn_when_readable(self, |s| &s.inner, Some(timeout), f)
    }

    /// Wraps a std stream: switches it to non-blocking mode and registers it
    /// with this thread's hub.
    ///
    /// # Errors
    /// If the fd cannot be switched or registered.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let stream = greenhub::net::UnixStream::from_std(a).unwrap();
    /// # drop(stream);
    /// ```
    pub fn from_std(stream: net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: Sock::new(stream)?,
        })
    }

    /// Shuts down the read half, the write half (the peer reads end of
    /// file), or both.
    ///
    /// # Errors
    /// The OS error.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, mut b) = greenhub::net::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0; 4]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }
}
