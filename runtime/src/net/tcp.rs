//! TCP: [`TcpListener`] and [`TcpStream`], std's types with blocking-style waits that park
//! goroutines (see the [module docs](super)).
//!
//! Invariant: every stream gort accepts or connects has `TCP_NODELAY` on, as in Go (a connect
//! completes as `Pollable::await_connect` says).

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::pollable::{Direction, Pollable};
use super::{common_methods, each_addr, fd_conversions, stream_io};

/// A TCP socket server, listening for connections (std's [`std::net::TcpListener`]).
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// use gort::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// gort::go!(TcpStream::connect(addr).unwrap().write_all(b"hi").unwrap());
/// let (socket, peer) = listener.accept()?;
/// assert_eq!(socket.peer_addr()?, peer);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    inner: Pollable<std::net::TcpListener>,
}

/// A TCP connection (std's [`std::net::TcpStream`]); reads and writes through `&TcpStream` too,
/// so one goroutine may read while another writes.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// use gort::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut client = TcpStream::connect(listener.local_addr()?)?;
/// let (mut server, _) = listener.accept()?;
/// client.write_all(b"ping")?;
/// let mut buf = [0; 4];
/// server.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    inner: Pollable<std::net::TcpStream>,
}

/// An endless iterator over a listener's connections; see [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpListener {
    /// Binds a listener to `addr` (resolved off the scheduler), trying each resolved address in
    /// turn. Like Go (and unlike std's 128), it queues as many pending connections as the
    /// system allows (`net.core.somaxconn`), so a burst of connects is not dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = gort::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| {
            let listener = std::net::TcpListener::bind(addr)?;
            super::listen_with_system_backlog(&listener)?;
            Ok(TcpListener {
                inner: Pollable::new(listener)?,
            })
        })
    }

    /// Waits for a connection: answers the connected socket and its peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (_server, peer) = listener.accept()?;
    /// assert_eq!(peer, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, peer) = self.inner.io(Direction::Read, |l| l.accept())?;
        Ok((TcpStream::connected(socket)?, peer))
    }

    /// An iterator that accepts connections forever, yielding each accept's result.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let first = listener.incoming().next().unwrap()?;
    /// assert!(first.peer_addr().is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = gort::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Sets the time-to-live of sent packets (`IP_TTL`).
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = gort::net::TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_ttl(64)?;
    /// assert_eq!(listener.ttl()?, 64);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get_ref().set_ttl(ttl)
    }

    /// The time-to-live of sent packets; see [`TcpListener::set_ttl`].
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = gort::net::TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get_ref().ttl()
    }
}

impl<'a> Iterator for Incoming<'a> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(socket, _)| socket))
    }
}

impl TcpStream {
    /// Connects to `addr` (resolved off the scheduler), trying each resolved address in turn.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |addr| TcpStream::connect_until(&addr, None))
    }

    /// Connects to one address, giving up after `timeout` with
    /// [`TimedOut`](io::ErrorKind::TimedOut). A zero timeout is an `InvalidInput` error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect_timeout(&listener.local_addr()?, Duration::from_secs(5))?;
    /// assert!(stream.peer_addr().is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_until(addr, Some(Instant::now() + timeout))
    }

    /// Takes an accepted connection, with `TCP_NODELAY` on (see [`TcpStream::set_nodelay`]).
    fn connected(socket: std::net::TcpStream) -> io::Result<TcpStream> {
        socket.set_nodelay(true)?;
        Ok(TcpStream {
            inner: Pollable::new(socket)?,
        })
    }

    fn connect_until(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let started = mio::net::TcpStream::connect(*addr)?;
        let socket = std::net::TcpStream::from(OwnedFd::from(started));
        let inner = Pollable::new(socket)?;
        inner.await_connect(deadline, |s| s.take_error(), |s| s.peer_addr())?;
        inner.get_ref().set_nodelay(true)?;
        Ok(TcpStream { inner })
    }

    /// The address of the remote end.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The address of the local end.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half or both. Goroutines waiting on this socket
    /// wake and see the shutdown (a read answers 0, a write an error).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    ///
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// client.shutdown(Shutdown::Write)?;
    /// assert_eq!(server.read(&mut [0; 8])?, 0); // end of stream
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)?;
        self.inner.wake_waiters();
        Ok(())
    }

    /// Reads without removing what it read from the socket's queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// client.write_all(b"abc")?;
    /// let mut buf = [0; 3];
    /// assert_eq!(server.peek(&mut buf)?, 3);
    /// server.read_exact(&mut buf)?; // still there
    /// assert_eq!(&buf, b"abc");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY`: small writes go out at once instead of waiting for the previous
    /// one's acknowledgement (Nagle's algorithm). Like Go, gort turns it on for every
    /// connection it accepts or connects; `set_nodelay(false)` turns Nagle's algorithm back on.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.nodelay()?); // gort's default, as Go's
    /// stream.set_nodelay(false)?;
    /// assert!(!stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set; see [`TcpStream::set_nodelay`].
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let (accepted, _) = listener.accept()?;
    /// assert!(accepted.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get_ref().nodelay()
    }

    /// Sets the time-to-live of sent packets (`IP_TTL`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_ttl(32)?;
    /// assert_eq!(stream.ttl()?, 32);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get_ref().set_ttl(ttl)
    }

    /// The time-to-live of sent packets; see [`TcpStream::set_ttl`].
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.ttl()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get_ref().ttl()
    }
}

fd_conversions!(TcpListener, std::net::TcpListener);
fd_conversions!(TcpStream, std::net::TcpStream);
common_methods!(
    TcpListener,
    "let socket = gort::net::TcpListener::bind(\"127.0.0.1:0\")?;"
);
common_methods!(
    TcpStream,
    "let listener = gort::net::TcpListener::bind(\"127.0.0.1:0\")?;\nlet socket = gort::net::TcpStream::connect(listener.local_addr()?)?;",
    timeouts
);
stream_io!(TcpStream);
