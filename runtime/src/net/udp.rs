//! UDP: [`UdpSocket`], std's type with blocking-style waits that park goroutines (see the
//! [module docs](super)).
//!
//! Invariant: every datagram operation is one system call per attempt, so a datagram is sent or
//! received whole or not at all, and a wait never splits one.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use super::pollable::{Direction, Pollable};
use super::{common_methods, each_addr, fd_conversions};

/// A UDP socket (std's [`std::net::UdpSocket`]).
///
/// # Examples
///
/// ```
/// use gort::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0")?;
/// let b = UdpSocket::bind("127.0.0.1:0")?;
/// a.send_to(b"hello", b.local_addr()?)?;
/// let mut buf = [0; 16];
/// let (n, from) = b.recv_from(&mut buf)?;
/// assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr()?));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    inner: Pollable<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds a socket to `addr` (resolved off the scheduler), trying each resolved address.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| {
            Ok(UdpSocket {
                inner: Pollable::new(std::net::UdpSocket::bind(addr)?)?,
            })
        })
    }

    /// Receives one datagram: its length (cut to `buf`'s) and its sender.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.send_to(b"self", socket.local_addr()?)?;
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.recv_from(&mut buf)?.0, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Like [`UdpSocket::recv_from`], leaving the datagram queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.send_to(b"twice", socket.local_addr()?)?;
    /// let mut buf = [0; 8];
    /// assert_eq!(socket.peek_from(&mut buf)?.0, 5);
    /// assert_eq!(socket.recv_from(&mut buf)?.0, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Direction::Read, |s| s.peek_from(buf))
    }

    /// Sends one datagram to `addr` (resolved off the scheduler; the first address is used).
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.send_to(b"abc", socket.local_addr()?)?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = crate::blocking(|| addr.to_socket_addrs())?
            .next()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
            })?;
        self.inner.io(Direction::Write, |s| s.send_to(buf, addr))
    }

    /// Sets the default peer: [`UdpSocket::send`] sends there, and only its datagrams are
    /// received.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// assert_eq!(a.peer_addr()?, b.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |addr| self.inner.get_ref().connect(addr))
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(a.local_addr()?)?;
    /// a.send(b"loop")?;
    /// let mut buf = [0; 8];
    /// assert_eq!(a.recv(&mut buf)?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.io(Direction::Write, |s| s.send(buf))
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(a.local_addr()?)?;
    /// a.send(b"x")?;
    /// assert_eq!(a.recv(&mut [0; 4])?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.recv(buf))
    }

    /// Like [`UdpSocket::recv`], leaving the datagram queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(a.local_addr()?)?;
    /// a.send(b"xy")?;
    /// assert_eq!(a.peek(&mut [0; 4])?, 2);
    /// assert_eq!(a.recv(&mut [0; 4])?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.peek(buf))
    }

    /// The address the socket is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The connected peer's address; see [`UdpSocket::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.peer_addr().is_err()); // not connected
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`).
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_broadcast(true)?;
    /// assert!(socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.inner.get_ref().set_broadcast(broadcast)
    }

    /// Whether sending to broadcast addresses is allowed.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(!socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.get_ref().broadcast()
    }

    /// Sets the time-to-live of sent packets (`IP_TTL`).
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_ttl(16)?;
    /// assert_eq!(socket.ttl()?, 16);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get_ref().set_ttl(ttl)
    }

    /// The time-to-live of sent packets.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get_ref().ttl()
    }
}

fd_conversions!(UdpSocket, std::net::UdpSocket);
common_methods!(
    UdpSocket,
    "let socket = gort::net::UdpSocket::bind(\"127.0.0.1:0\")?;",
    timeouts
);
