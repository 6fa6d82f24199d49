//! Sockets with the same behaviour on every supported system: non-blocking
//! and close-on-exec from the start, and a write to a closed peer is
//! `EPIPE`, never a SIGPIPE that kills the process.
//!
//! Linux and FreeBSD have `SOCK_NONBLOCK | SOCK_CLOEXEC` (on `socket` and
//! `accept4`) and `MSG_NOSIGNAL`. macOS has neither: there a socket gets
//! `O_NONBLOCK` and `FD_CLOEXEC` by `fcntl` after `socket`/`accept`, and
//! `SO_NOSIGPIPE` as a socket option instead of a per-send flag.

use std::io;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

/// Flags for every `send`: `MSG_NOSIGNAL` where it exists; on macOS the
/// socket carries `SO_NOSIGPIPE` instead (every socket greenhub makes,
/// accepts or adopts gets it), so no flag.
#[cfg(not(target_os = "macos"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
/// Flags for every `send`: none on macOS, where `SO_NOSIGPIPE` is set on
/// each socket instead.
#[cfg(target_os = "macos")]
pub(crate) const SEND_FLAGS: libc::c_int = 0;

/// A new stream socket, non-blocking and close-on-exec.
pub(crate) fn stream_socket(domain: Domain, protocol: Option<Protocol>) -> io::Result<Socket> {
    #[cfg(not(target_os = "macos"))]
    {
        Socket::new(domain, Type::STREAM.nonblocking(), protocol)
    }
    #[cfg(target_os = "macos")]
    {
        // socket2 sets FD_CLOEXEC and SO_NOSIGPIPE on Apple systems.
        let socket = Socket::new(domain, Type::STREAM, protocol)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }
}

/// Accepts a connection on `listener` as a non-blocking, close-on-exec
/// socket (`WouldBlock` when none is waiting).
pub(crate) fn accept(listener: SockRef<'_>) -> io::Result<(Socket, SockAddr)> {
    #[cfg(not(target_os = "macos"))]
    {
        listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
    }
    #[cfg(target_os = "macos")]
    {
        let (socket, addr) = listener.accept_raw()?;
        socket.set_cloexec(true)?;
        socket.set_nonblocking(true)?;
        socket.set_nosigpipe(true)?;
        Ok((socket, addr))
    }
}

/// Prepares a socket made elsewhere (a std socket handed to greenhub):
/// non-blocking, and on macOS `SO_NOSIGPIPE`.
pub(crate) fn adopt_socket(socket: SockRef<'_>) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    #[cfg(target_os = "macos")]
    socket.set_nosigpipe(true)?;
    Ok(())
}

/// Lets several sockets bind one address and share its connections: Linux's
/// `SO_REUSEPORT` spreads connections among the listeners; FreeBSD's
/// `SO_REUSEPORT` does not (the last listener takes them all), its
/// `SO_REUSEPORT_LB` does. macOS has only `SO_REUSEPORT`, which shares the
/// port without any promise to spread connections.
pub(crate) fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    #[cfg(target_os = "freebsd")]
    {
        socket.set_reuse_port_lb(true)
    }
    #[cfg(not(target_os = "freebsd"))]
    {
        socket.set_reuse_port(true)
    }
}
