//! A TCP server that accepts in a loop and runs a handler for each
//! connection in a green thread of its own (gevent's `StreamServer`), and
//! its UDP sibling, [`DatagramServer`], which runs one for each datagram on
//! the same loop, bound and stop.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use greenhub::net::TcpStream;
//! use greenhub::server::StreamServer;
//!
//! // An echo server: each connection gets a green thread running this closure.
//! let server = StreamServer::bind("127.0.0.1:0", |mut stream: TcpStream, _peer| {
//!     let mut buf = [0; 1024];
//!     while let Ok(n @ 1..) = stream.read(&mut buf) {
//!         if stream.write_all(&buf[..n]).is_err() {
//!             break;
//!         }
//!     }
//! })
//! .unwrap();
//! let addr = server.local_addr();
//! server.start().unwrap();
//!
//! let mut client = TcpStream::connect(addr).unwrap();
//! client.write_all(b"hello").unwrap();
//! let mut echo = [0; 5];
//! client.read_exact(&mut echo).unwrap();
//! assert_eq!(&echo, b"hello");
//!
//! drop(client);
//! server.stop(Duration::from_secs(1));
//! ```
//!
//! Accept errors never turn into a busy loop: when the process or system
//! runs out of file descriptors or buffers (`EMFILE`, `ENFILE`, `ENOBUFS`,
//! `ENOMEM`) the accept loop says so once on stderr and backs off, 5 ms
//! doubling up to 1 s, retrying early whenever a handler ends (which may
//! free an fd), and serves again as soon as accept succeeds. Errors that
//! belong to one aborted connection are skipped at once.

use std::cell::{Cell, RefCell};

use std::fmt;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::{park, Waker};
use crate::net::backoff;
use crate::net::{TcpListener, TcpStream, ToSocketAddrs};
use crate::pool::Group;
use crate::JoinHandle;

mod builder;
mod datagram;

pub use builder::ServerBuilder;
pub use datagram::{Datagram, DatagramServer};

/// The listen backlog [`StreamServer::bind`] uses (the kernel caps it at
/// `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: u32 = 1024;

/// What a server serves from: a listener (a connection at a time) or a
/// datagram socket (a datagram at a time). The accept loop, the bound on
/// handlers, the back-off and `stop` are the same for both.
pub(crate) trait Source: 'static {
    /// What each handler is given, with the peer's address.
    type Item: 'static;

    /// The server's type name, for `Debug`.
    const SERVER: &'static str;

    /// The call that takes the next item, for error messages.
    const CALL: &'static str;

    /// The next connection or datagram.
    ///
    /// # Blocking
    /// Parks until one comes.
    fn next(&self) -> io::Result<(Self::Item, SocketAddr)>;

    /// Errors that concern one peer only: skipped at once.
    fn is_transient(e: &io::Error) -> bool;
}

impl Source for TcpListener {
    type Item = TcpStream;
    const SERVER: &'static str = "StreamServer";
    const CALL: &'static str = "accept";

    fn next(&self) -> io::Result<(TcpStream, SocketAddr)> {
        // The accept loop backs off itself (waking early as handlers end).
        self.accept_without_backoff()
    }

    fn is_transient(e: &io::Error) -> bool {
        is_transient(e)
    }
}

type Handler<I> = dyn Fn(I, SocketAddr);

/// A TCP server: accepts connections in a loop (in a green thread of its
/// own) and spawns `handler(stream, peer_addr)` in a new green thread for
/// each.
///
/// Create it with [`bind`](StreamServer::bind) or
/// [`from_listener`](StreamServer::from_listener), or with
/// [`builder`](StreamServer::builder) to set the backlog or bound the
/// number of concurrent handlers. Run it with
/// [`serve_forever`](StreamServer::serve_forever) (parks until stopped) or
/// [`start`](StreamServer::start) (returns at once); end it with
/// [`stop`](StreamServer::stop), or from another green thread through a
/// [`Stopper`]. A handler that panics ends only its own green thread.
/// Dropping a started server does not stop it: the accept loop serves on
/// until `stop`.
///
/// ```
/// use std::time::Duration;
/// use greenhub::server::StreamServer;
///
/// let server = StreamServer::bind("127.0.0.1:0", |_stream, peer| println!("hello {peer}")).unwrap();
/// let stopper = server.stopper();
/// greenhub::spawn_later(Duration::from_millis(20), move || stopper.stop(Duration::from_secs(1)));
/// server.serve_forever().unwrap(); // returns once the green thread above has stopped it
/// ```
pub struct StreamServer {
    shared: Rc<Shared<TcpListener>>,
}

/// Stops a [`StreamServer`] from another green thread, as Ctrl+C would:
/// get one with [`StreamServer::stopper`] before parking in
/// [`serve_forever`](StreamServer::serve_forever).
///
/// ```
/// use std::time::Duration;
/// use greenhub::server::StreamServer;
///
/// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {}).unwrap();
/// let stopper = server.stopper();
/// greenhub::spawn(move || stopper.stop(Duration::ZERO));
/// server.serve_forever().unwrap();
/// assert!(server.stopper().is_stopped());
/// ```
#[derive(Clone)]
pub struct Stopper {
    shared: Rc<dyn Stop>,
}

/// What a [`Stopper`] needs of either kind of server.
trait Stop {
    fn stop(&self, grace: Duration);
    fn is_stopped(&self) -> bool;
    fn local_addr(&self) -> SocketAddr;
}

/// What the accept loop, the handlers and `stop` share.
struct Shared<S: Source> {
    local_addr: SocketAddr,
    handler: Rc<Handler<S::Item>>,
    max_handlers: Option<usize>,
    /// Until `start` moves it into the accept loop (or `stop` closes it).
    listener: RefCell<Option<S>>,
    /// The accept loop once started; `stop` takes it out to kill it.
    accept_loop: RefCell<Option<JoinHandle<()>>>,
    /// Why the accept loop gave up, for `serve_forever` to return.
    accept_error: RefCell<Option<io::Error>>,
    /// Running handlers; each leaves the group as it ends.
    handlers: Group,
    /// Handlers spawned and not yet ended.
    active: Cell<usize>,
    /// The accept loop, parked for a free handler slot or backing off after
    /// EMFILE: a handler's end may have freed what it waits for.
    accept_waiter: RefCell<Option<Waker>>,
    /// `stop` has begun.
    stopping: Cell<bool>,
    /// `stop` has finished, or the accept loop failed: `serve_forever` returns.
    done: Cell<bool>,
    /// Green threads in `serve_forever` or in a second `stop`.
    done_waiters: RefCell<Vec<Waker>>,
}

impl StreamServer {
    /// Binds a listener to `addr` (backlog [`DEFAULT_BACKLOG`]) and makes a
    /// server that runs `handler` for each connection. Nothing is accepted
    /// until [`start`](Self::start) or [`serve_forever`](Self::serve_forever).
    ///
    /// # Errors
    /// The errors of binding and listening (`AddrInUse`, ...).
    ///
    /// # Blocking
    /// May park while a host name in `addr` is resolved.
    ///
    /// ```
    /// use greenhub::server::StreamServer;
    /// let server = StreamServer::bind("127.0.0.1:0", |_stream, _peer| {}).unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<StreamServer>
    where
        A: ToSocketAddrs,
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        StreamServer::builder().bind(addr, handler)
    }

    /// A server on a listener the caller made (gevent accepts one too).
    ///
    /// # Errors
    /// When the listener's local address cannot be read.
    ///
    /// ```
    /// use greenhub::net::TcpListener;
    /// use greenhub::server::StreamServer;
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let server = StreamServer::from_listener(listener, |_stream, _peer| {}).unwrap();
    /// assert_eq!(server.local_addr(), addr);
    /// ```
    pub fn from_listener<F>(listener: TcpListener, handler: F) -> io::Result<StreamServer>
    where
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        StreamServer::builder().listener(listener, handler)
    }

    /// A [`ServerBuilder`] with the default backlog and no bound on handlers.
    ///
    /// ```
    /// let server = greenhub::server::StreamServer::builder()
    ///     .max_handlers(100)
    ///     .bind("127.0.0.1:0", |_stream, _peer| {})
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The address the listener is bound to (with the port the OS chose
    /// for port 0).
    ///
    /// ```
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// println!("listening on {}", server.local_addr());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Starts the accept loop in a green thread of its own and returns at
    /// once (gevent's `start`). Starting a started or stopped server does
    /// nothing.
    ///
    /// # Errors
    /// When the accept loop's green thread cannot get a stack.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// server.start().unwrap();
    /// let _client = greenhub::net::TcpStream::connect(server.local_addr()).unwrap();
    /// server.stop(Duration::from_secs(1));
    /// ```
    pub fn start(&self) -> io::Result<()> {
        self.shared.start()
    }

    /// Serves until stopped (by a [`Stopper`] from another green thread, or
    /// by a handler calling [`Stopper::stop`]): starts the accept loop if
    /// needed, then parks until [`stop`](Self::stop) has finished.
    ///
    /// # Errors
    /// The accept loop's error if accepting failed for good (anything but
    /// the transient and resource errors it rides out); the handlers still
    /// running then go on, and `stop` ends them.
    ///
    /// # Blocking
    /// Parks the caller until the server is stopped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// let stopper = server.stopper();
    /// greenhub::spawn_later(Duration::from_millis(10), move || stopper.stop(Duration::ZERO));
    /// server.serve_forever().unwrap();
    /// ```
    pub fn serve_forever(&self) -> io::Result<()> {
        self.shared.serve_forever()
    }

    /// Stops the server: closes the listener, waits up to `grace` for the
    /// running handlers to end, then kills the rest (their stacks unwind,
    /// closing their streams). A handler calling this is neither waited for
    /// nor killed. A second call waits for the first to finish.
    ///
    /// # Blocking
    /// Parks the caller for up to `grace`, plus the time the killed
    /// handlers take to unwind.
    ///
    /// # Panics
    /// Inside a hub callback, which must not block: stop from a green
    /// thread (a [`Stopper`] moved into one).
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// server.start().unwrap();
    /// server.stop(Duration::from_millis(100));
    /// assert!(greenhub::net::TcpStream::connect(server.local_addr()).is_err()); // closed
    /// ```
    pub fn stop(&self, grace: Duration) {
        self.shared.stop(grace);
    }

    /// A handle that stops this server from another green thread.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// let stopper = server.stopper();
    /// assert!(!stopper.is_stopped());
    /// stopper.stop(Duration::ZERO);
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
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// assert_eq!(server.handler_count(), 0);
    /// ```
    pub fn handler_count(&self) -> usize {
        self.shared.active.get()
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl Stopper {
    /// As [`StreamServer::stop`].
    ///
    /// # Blocking
    /// Parks the caller for up to `grace`, plus the time the killed
    /// handlers take to unwind.
    ///
    /// # Panics
    /// Inside a hub callback, as [`StreamServer::stop`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// server.stopper().stop(Duration::ZERO);
    /// ```
    pub fn stop(&self, grace: Duration) {
        self.shared.stop(grace);
    }

    /// Whether a stop has finished.
    ///
    /// ```
    /// let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |_s, _a| {}).unwrap();
    /// assert!(!server.stopper().is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.shared.is_stopped()
    }
}

impl fmt::Debug for Stopper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stopper")
            .field("local_addr", &self.shared.local_addr())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl<S: Source> Stop for Shared<S> {
    fn stop(&self, grace: Duration) {
        Shared::stop(self, grace);
    }

    fn is_stopped(&self) -> bool {
        self.stopping.get() && self.done.get()
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl<S: Source> Shared<S> {
    fn new(
        listener: S,
        local_addr: SocketAddr,
        handler: Rc<Handler<S::Item>>,
        max_handlers: Option<usize>,
    ) -> Shared<S> {
        Shared {
            local_addr,
            handler,
            max_handlers,
            listener: RefCell::new(Some(listener)),
            accept_loop: RefCell::new(None),
            accept_error: RefCell::new(None),
            handlers: Group::new(),
            active: Cell::new(0),
            accept_waiter: RefCell::new(None),
            stopping: Cell::new(false),
            done: Cell::new(false),
            done_waiters: RefCell::new(Vec::new()),
        }
    }

    /// Starts the accept loop in a green thread of its own, once.
    fn start(self: &Rc<Self>) -> io::Result<()> {
        let Some(listener) = self.listener.borrow_mut().take() else {
            return Ok(());
        };
        let shared = self.clone();
        let handle = crate::Builder::new()
            .name("greenhub::server accept loop")
            .spawn(move || accept_loop(&shared, &listener))?;
        *self.accept_loop.borrow_mut() = Some(handle);
        Ok(())
    }

    fn serve_forever(self: &Rc<Self>) -> io::Result<()> {
        self.start()?;
        self.wait_done();
        match self.accept_error.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stop(&self, grace: Duration) {
        if self.stopping.replace(true) {
            return self.wait_done();
        }
        let deadline = crate::hub::deadline_after(grace);
        drop(self.listener.borrow_mut().take());
        let accept_loop = self.accept_loop.borrow_mut().take();
        if let Some(h) = accept_loop {
            // Unwinds it out of `accept` (or a back-off) and closes the listener.
            h.kill();
        }
        // From a handler, these wait for and kill the other handlers.
        // Whether they all ended in time or not, the kill below ends the rest.
        let _ = self
            .handlers
            .join_timeout(deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now())));
        self.handlers.kill();
        self.finish();
    }

    /// Ends `serve_forever` and any second `stop`.
    fn finish(&self) {
        self.done.set(true);
        for w in mem::take(&mut *self.done_waiters.borrow_mut()) {
            w.wake();
        }
    }

    fn wait_done(&self) {
        while !self.done.get() {
            let why = park(None, |w| {
                let mut waiters = self.done_waiters.borrow_mut();
                waiters.retain(Waker::is_waiting);
                waiters.push(w.clone());
            });
            // Without a deadline, only an unwinding caller times out.
            if why == crate::hub::Wake::TimedOut {
                return;
            }
        }
    }

    /// Wakes the accept loop if it waits for a handler to end.
    fn wake_accept_loop(&self) {
        if let Some(w) = self.accept_waiter.borrow_mut().take() {
            w.wake();
        }
    }

    /// Parks the accept loop until a handler ends or `deadline` passes.
    fn wait_for_handler_end(&self, deadline: Option<Instant>) {
        park(deadline, |w| *self.accept_waiter.borrow_mut() = Some(w.clone()));
    }

    fn is_full(&self) -> bool {
        self.max_handlers.is_some_and(|max| self.active.get() >= max)
    }

    /// Runs `handler(stream, peer)` in a new green thread, tracked until it ends.
    fn spawn_handler(self: &Rc<Self>, stream: S::Item, peer: SocketAddr) {
        self.active.set(self.active.get() + 1);
        // Moved into the closure, so its drop also runs if the handler is
        // killed before it starts or never gets a stack.
        let slot = HandlerSlot { shared: self.clone() };
        let handler = self.handler.clone();
        self.handlers.spawn(move || {
            let _slot = slot;
            handler(stream, peer);
        });
    }
}

impl<S: Source> fmt::Debug for Shared<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(S::SERVER)
            .field("local_addr", &self.local_addr)
            .field("handlers", &self.active.get())
            .field("max_handlers", &self.max_handlers)
            .field("stopping", &self.stopping.get())
            .finish()
    }
}

/// A running handler's place in the count; released however it ends.
struct HandlerSlot<S: Source> {
    shared: Rc<Shared<S>>,
}

impl<S: Source> Drop for HandlerSlot<S> {
    fn drop(&mut self) {
        let s = &self.shared;
        s.active.set(s.active.get() - 1);
        s.wake_accept_loop();
    }
}

/// The accept loop's body: accepts until killed by `stop`, or until accept
/// fails for good (then `serve_forever` returns the error).
fn accept_loop<S: Source>(shared: &Rc<Shared<S>>, listener: &S) {
    let mut failures = 0u8;
    loop {
        while shared.is_full() {
            shared.wait_for_handler_end(None);
        }
        let accepted = listener.next();
        failures = backoff::next(failures, &accepted);
        match accepted {
            Ok((stream, peer)) => shared.spawn_handler(stream, peer),
            Err(e) if backoff::is_out_of_resources(&e) => {
                if failures == 1 {
                    eprintln!(
                        "greenhub::server: {} on {} failed: {e}; retrying with back-off \
                         (up to {:?}) until resources free up",
                        S::CALL,
                        shared.local_addr,
                        backoff::MAX
                    );
                }
                shared.wait_for_handler_end(crate::hub::deadline_after(backoff::delay(failures)));
            }
            Err(e) if S::is_transient(&e) => {}
            Err(e) => {
                *shared.accept_error.borrow_mut() = Some(e);
                shared.finish();
                return;
            }
        }
    }
}

/// Errors of one connection (aborted before accepted, or network errors
/// the kernel reports through accept, see accept(2)): the next accept may
/// well succeed.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    ) || matches!(
        e.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENOPROTOOPT
                | libc::EOPNOTSUPP
        )
    )
}
