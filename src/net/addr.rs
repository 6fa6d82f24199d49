//! Socket addresses: greenhub's [`ToSocketAddrs`], which resolves IP
//! literals inline and host names on the blocking pool, so `getaddrinfo`
//! never blocks the hub.

use std::io;
use std::net::{self, IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Values that name one or more socket addresses: the same types as std's
/// [`std::net::ToSocketAddrs`] (`SocketAddr`, `(IpAddr, u16)`, `"host:port"`,
/// `("host", port)`, `&[SocketAddr]`, references to these), so calls read as
/// they do with std.
///
/// IP literals are parsed in place; a host name is looked up with
/// `getaddrinfo` on the [blocking pool](crate::blocking), parking only the
/// calling green thread. The trait is sealed: greenhub resolves, users
/// don't implement it.
///
/// ```
/// use greenhub::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap(); // a literal: no lookup
/// let port = listener.local_addr().unwrap().port();
/// let _client = TcpStream::connect(("localhost", port)).unwrap(); // looked up off the hub
/// ```
pub trait ToSocketAddrs: sealed::Resolve {}

pub(crate) mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// The resolving half of [`ToSocketAddrs`](super::ToSocketAddrs),
    /// out of users' reach.
    pub trait Resolve {
        /// The addresses, in the order to try them.
        ///
        /// # Blocking
        /// Parks while a host name is looked up.
        fn resolve(&self) -> io::Result<Vec<SocketAddr>>;
    }
}

use sealed::Resolve;

impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).resolve()
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

/// Implements the traits for types that convert to `SocketAddr` directly.
macro_rules! literal_addrs {
    ($($t:ty),*) => {$(
        impl Resolve for $t {
            fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
                Ok(vec![SocketAddr::from(*self)])
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}

literal_addrs!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl Resolve for [SocketAddr] {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}
impl ToSocketAddrs for [SocketAddr] {}

impl Resolve for str {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Ok(vec![addr]),
            Err(_) => lookup(self.to_owned()),
        }
    }
}
impl ToSocketAddrs for str {}

impl Resolve for String {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().resolve()
    }
}
impl ToSocketAddrs for String {}

impl Resolve for (&str, u16) {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
            Err(_) => lookup((host.to_owned(), port)),
        }
    }
}
impl ToSocketAddrs for (&str, u16) {}

impl Resolve for (String, u16) {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).resolve()
    }
}
impl ToSocketAddrs for (String, u16) {}

/// The socket addresses `addr` names, in the order to try them (tokio's
/// `lookup_host`, gevent's `getaddrinfo`): IP literals are parsed in place,
/// host names looked up with `getaddrinfo` on the
/// [blocking pool](crate::blocking), parking only the calling green thread.
/// Errors read as std's `to_socket_addrs` do.
///
/// # Errors
/// The lookup's error (an unknown name, no network, ...).
///
/// # Blocking
/// Parks while a host name is looked up.
///
/// ```
/// let addrs = greenhub::net::lookup_host(("localhost", 80)).unwrap();
/// assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// assert_eq!(greenhub::net::lookup_host("10.0.0.1:53").unwrap(), ["10.0.0.1:53".parse().unwrap()]);
/// ```
#[doc(alias = "getaddrinfo")]
#[doc(alias = "gethostbyname")]
#[doc(alias = "resolve")]
pub fn lookup_host<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    addr.resolve()
}

/// A name lookup (std's, so errors read as std's do) on the blocking pool.
fn lookup<A: net::ToSocketAddrs + Send + 'static>(name: A) -> io::Result<Vec<SocketAddr>> {
    crate::blocking::run(move || name.to_socket_addrs().map(Iterator::collect))
}

/// Resolves `addr` and calls `f` with each address until one succeeds, as
/// std's `bind` and `connect` do; the last error otherwise.
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, R>(
    addr: &A,
    mut f: impl FnMut(SocketAddr) -> io::Result<R>,
) -> io::Result<R> {
    let mut last = None;
    for a in addr.resolve()? {
        match f(a) {
            Ok(r) => return Ok(r),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

/// The first address `addr` resolves to (std's rule for `send_to`).
pub(crate) fn first_addr<A: ToSocketAddrs + ?Sized>(addr: &A) -> io::Result<SocketAddr> {
    addr.resolve()?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}
