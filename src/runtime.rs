//! One hub per core: [`Runtime`] runs N hubs on N OS threads, and
//! [`SharedPort`] lets a TCP server listen on all of them at once.
//!
//! Green threads never migrate between hubs. A green thread's stack holds
//! `!Send` values freely (`Rc`, `RefCell`, the hub's own types), and
//! `thread_local!` values stay put under it; moving it to another OS thread
//! would make both unsound, as work-stealing schedulers of stackful
//! coroutines find out. So each hub keeps what it spawned, `spawn` accepts
//! closures that are not `Send`, and work crosses between hubs only
//! explicitly, through a [`HubHandle`] (the closure handed over must be
//! `Send`; what it spawns there stays there).
//!
//! To use every core, run the same server on every hub: each hub listens on
//! its own socket bound to one address with `SO_REUSEPORT`, and the kernel
//! spreads incoming connections among them (see
//! `examples/multicore_echo.rs`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Socket, Type};

use crate::net::TcpListener;
use crate::thread::{spawn_hub, HubHandle, RemoteJoinHandle, Stopped};
use crate::JoinError;

/// N hubs on N OS threads ("one event loop per core"), stopped together.
///
/// ```
/// let rt = greenhub::Runtime::new(2).unwrap();
/// let names = rt.run_on_each(|i| (i, std::thread::current().name().map(str::to_owned))).unwrap();
/// assert_eq!(names.len(), 2);
/// assert_eq!(names[1].as_ref().unwrap().0, 1);
/// rt.stop();
/// ```
pub struct Runtime {
    hubs: Vec<HubHandle>,
}

impl Runtime {
    /// Starts `n` hubs (at least one), each on an OS thread of its own named
    /// `greenhub-hub-I`, each running until [`stop`](Runtime::stop).
    ///
    /// # Errors
    /// If an OS thread cannot be started (those already started are
    /// stopped).
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(3).unwrap();
    /// assert_eq!(rt.handles().len(), 3);
    /// ```
    pub fn new(n: usize) -> io::Result<Runtime> {
        let mut rt = Runtime { hubs: Vec::new() };
        for i in 0..n.max(1) {
            // On error `rt`'s drop stops the hubs started so far.
            rt.hubs.push(spawn_hub(format!("greenhub-hub-{i}"))?);
        }
        Ok(rt)
    }

    /// One hub per core: as many as [`std::thread::available_parallelism`]
    /// says (one if it cannot tell).
    ///
    /// # Errors
    /// As [`new`](Runtime::new).
    ///
    /// ```
    /// let rt = greenhub::Runtime::per_core().unwrap();
    /// assert!(!rt.handles().is_empty());
    /// ```
    pub fn per_core() -> io::Result<Runtime> {
        Runtime::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// The hubs' handles, in order: hand work to one of them.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// let h = rt.handles()[1].spawn(|| 40 + 2).unwrap();
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn handles(&self) -> &[HubHandle] {
        &self.hubs
    }

    /// Spawns a green thread running `f(i)` on every hub `i`: the way to run
    /// the same server on every core. The closure is shared, so it must be
    /// `Sync`; what it creates inside (listeners, `Rc`s) stays on its hub.
    ///
    /// # Errors
    /// [`Stopped`] if the runtime has been stopped.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// let handles = rt.spawn_on_each(|i| i * 10).unwrap();
    /// let got: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(got, [0, 10]);
    /// ```
    pub fn spawn_on_each<T: Send + 'static>(
        &self,
        f: impl Fn(usize) -> T + Send + Sync + 'static,
    ) -> Result<Vec<RemoteJoinHandle<T>>, Stopped> {
        let f = Arc::new(f);
        self.hubs
            .iter()
            .enumerate()
            .map(|(i, hub)| {
                let f = f.clone();
                hub.spawn(move || f(i))
            })
            .collect()
    }

    /// [`spawn_on_each`](Runtime::spawn_on_each), then waits for every
    /// result, in hub order.
    ///
    /// # Errors
    /// [`Stopped`] if the runtime has been stopped; each green thread's own
    /// outcome (a panic, a kill) is in its entry.
    ///
    /// # Blocking
    /// Parks the calling green thread (or blocks a plain OS thread) until
    /// every hub has finished.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// let ids = rt.run_on_each(|i| i).unwrap();
    /// assert_eq!(ids.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [0, 1]);
    /// ```
    pub fn run_on_each<T: Send + 'static>(
        &self,
        f: impl Fn(usize) -> T + Send + Sync + 'static,
    ) -> Result<Vec<Result<T, JoinError>>, Stopped> {
        Ok(self
            .spawn_on_each(f)?
            .into_iter()
            .map(RemoteJoinHandle::join)
            .collect())
    }

    /// Stops every hub and waits until each has stopped taking work (see
    /// [`HubHandle::stop`]). Dropping the runtime does the same.
    ///
    /// # Blocking
    /// Parks the calling green thread (or blocks a plain OS thread) until
    /// every hub has stopped.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// rt.stop();
    /// assert!(rt.handles().iter().all(|h| h.is_stopped()));
    /// ```
    pub fn stop(&self) {
        for hub in &self.hubs {
            hub.stop();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("hubs", &self.hubs.len()).finish()
    }
}

/// A TCP address held for listeners on several hubs: each hub calls
/// [`listen`](SharedPort::listen) and gets its own listener on the same
/// address (`SO_REUSEPORT`), and the kernel spreads incoming connections
/// among those listeners. `Send + Sync`: share it with an `Arc`.
///
/// It holds the address with a bound socket that does not listen itself,
/// so port 0 picks one port for all, and the port stays taken until every
/// hub has its listener; it never receives connections.
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
///
/// let rt = greenhub::Runtime::new(2).unwrap();
/// let port = Arc::new(greenhub::runtime::SharedPort::bind("127.0.0.1:0".parse().unwrap()).unwrap());
/// let addr = port.local_addr();
/// let (tx, rx) = std::sync::mpsc::channel();
/// let tx = std::sync::Mutex::new(tx);
/// rt.spawn_on_each(move |_| {
///     let listener = port.listen().unwrap();
///     tx.lock().unwrap().send(()).unwrap();
///     let (mut conn, _) = listener.accept().unwrap();
///     let mut b = [0; 2];
///     conn.read_exact(&mut b).unwrap();
///     conn.write_all(&b).unwrap();
/// })
/// .unwrap();
/// rx.recv().unwrap();
/// rx.recv().unwrap(); // both hubs listen
/// let mut c = std::net::TcpStream::connect(addr).unwrap();
/// c.write_all(b"hi").unwrap();
/// let mut b = [0; 2];
/// c.read_exact(&mut b).unwrap();
/// assert_eq!(&b, b"hi");
/// rt.stop();
/// ```
pub struct SharedPort {
    /// Bound, not listening: holds the port without taking connections.
    holder: Socket,
    addr: SocketAddr,
}

/// The listen backlog of each hub's listener (the kernel caps it at
/// `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

fn reuseport_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    crate::sys::set_reuse_port(&socket)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

impl SharedPort {
    /// Takes `addr` (port 0: the OS picks one) for listeners on several
    /// hubs.
    ///
    /// # Errors
    /// The OS error, for instance `AddrInUse` if a socket without
    /// `SO_REUSEPORT` has the port.
    ///
    /// ```
    /// let port = greenhub::runtime::SharedPort::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_ne!(port.local_addr().port(), 0);
    /// ```
    pub fn bind(addr: SocketAddr) -> io::Result<SharedPort> {
        let holder = reuseport_socket(addr)?;
        let addr = holder
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("greenhub: bound a TCP socket without an IP address"))?;
        Ok(SharedPort { holder, addr })
    }

    /// The address every listener gets (with the port the OS picked).
    ///
    /// ```
    /// let port = greenhub::runtime::SharedPort::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert!(port.local_addr().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A listener on the shared address, registered with the current hub:
    /// call it on each hub that should serve.
    ///
    /// # Errors
    /// The OS error of binding or listening.
    ///
    /// ```
    /// let port = greenhub::runtime::SharedPort::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let a = port.listen().unwrap();
    /// let b = port.listen().unwrap(); // the same address twice
    /// assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn listen(&self) -> io::Result<TcpListener> {
        let socket = reuseport_socket(self.addr)?;
        socket.listen(BACKLOG)?;
        TcpListener::from_std(socket.into())
    }
}

impl fmt::Debug for SharedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPort")
            .field("addr", &self.addr)
            .field("holder", &self.holder)
            .finish()
    }
}
