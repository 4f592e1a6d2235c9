//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], std's types with
//! blocking-style waits that park goroutines (see the [module docs](super)).
//!
//! Invariant: a datagram moves whole in one system call (a connect completes as
//! `Pollable::await_connect` says).

use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::pollable::{Direction, Pollable};
use super::{common_methods, fd_conversions, stream_io};

/// A Unix domain socket server (std's [`std::os::unix::net::UnixListener`]).
///
/// # Examples
///
/// ```
/// use gort::net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("gort-doc-listener-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// let listener = UnixListener::bind(&dir)?;
/// let _client = UnixStream::connect(&dir)?;
/// let (_server, _) = listener.accept()?;
/// std::fs::remove_file(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    inner: Pollable<std::os::unix::net::UnixListener>,
}

/// A Unix domain stream socket (std's [`std::os::unix::net::UnixStream`]); reads and writes
/// through `&UnixStream` too.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// let (mut a, mut b) = gort::net::UnixStream::pair()?;
/// a.write_all(b"hi")?;
/// let mut buf = [0; 2];
/// b.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hi");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    inner: Pollable<std::os::unix::net::UnixStream>,
}

/// A Unix domain datagram socket (std's [`std::os::unix::net::UnixDatagram`]).
///
/// # Examples
///
/// ```
/// let (a, b) = gort::net::UnixDatagram::pair()?;
/// a.send(b"one")?;
/// assert_eq!(b.recv(&mut [0; 8])?, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    inner: Pollable<std::os::unix::net::UnixDatagram>,
}

/// An endless iterator over a Unix listener's connections; see [`UnixListener::incoming`].
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl UnixListener {
    /// Binds a listener to the socket file at `path` (which must not exist), queueing as many
    /// pending connections as the system allows, like [`super::TcpListener::bind`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-bind-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = gort::net::UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        super::listen_with_system_backlog(&listener)?;
        Ok(UnixListener {
            inner: Pollable::new(listener)?,
        })
    }

    /// Waits for a connection: answers the connected socket and its peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{UnixListener, UnixStream};
    ///
    /// let path = std::env::temp_dir().join(format!("gort-doc-accept-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let client = UnixStream::connect(&path)?;
    /// let (server, _) = listener.accept()?;
    /// assert_eq!(client.peer_addr()?.as_pathname(), server.local_addr()?.as_pathname());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (socket, peer) = self.inner.io(Direction::Read, |l| l.accept())?;
        Ok((
            UnixStream {
                inner: Pollable::new(socket)?,
            },
            peer,
        ))
    }

    /// An iterator that accepts connections forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::net::{UnixListener, UnixStream};
    ///
    /// let path = std::env::temp_dir().join(format!("gort-doc-incoming-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let _client = UnixStream::connect(&path)?;
    /// assert!(listener.incoming().next().unwrap().is_ok());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-laddr-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = gort::net::UnixListener::bind(&path)?;
    /// assert!(listener.local_addr()?.as_pathname().is_some());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }
}

impl<'a> Iterator for UnixIncoming<'a> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(socket, _)| socket))
    }
}

impl UnixStream {
    /// Connects to the socket file at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-connect-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let _listener = gort::net::UnixListener::bind(&path)?;
    /// let stream = gort::net::UnixStream::connect(&path)?;
    /// assert_eq!(stream.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let started = mio::net::UnixStream::connect(path)?;
        let inner = Pollable::new(std::os::unix::net::UnixStream::from(OwnedFd::from(started)))?;
        inner.await_connect(None, |s| s.take_error(), |s| s.peer_addr())?;
        Ok(UnixStream { inner })
    }

    /// A pair of connected sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// let (mut a, mut b) = gort::net::UnixStream::pair()?;
    /// b.write_all(b"back")?;
    /// let mut buf = [0; 4];
    /// a.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"back");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((
            UnixStream {
                inner: Pollable::new(a)?,
            },
            UnixStream {
                inner: Pollable::new(b)?,
            },
        ))
    }

    /// Shuts down the read half, the write half or both; goroutines waiting on this socket
    /// wake and see the shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    ///
    /// let (a, mut b) = gort::net::UnixStream::pair()?;
    /// a.shutdown(Shutdown::Write)?;
    /// assert_eq!(b.read(&mut [0; 4])?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)?;
        self.inner.wake_waiters();
        Ok(())
    }
}

impl UnixDatagram {
    /// A socket bound to the socket file at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-dgram-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let socket = gort::net::UnixDatagram::bind(&path)?;
    /// assert_eq!(socket.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Pollable::new(std::os::unix::net::UnixDatagram::bind(path)?)?,
        })
    }

    /// A socket bound to no address.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = gort::net::UnixDatagram::unbound()?;
    /// assert!(socket.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Pollable::new(std::os::unix::net::UnixDatagram::unbound()?)?,
        })
    }

    /// A pair of connected sockets.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = gort::net::UnixDatagram::pair()?;
    /// b.send(b"pong")?;
    /// assert_eq!(a.recv(&mut [0; 8])?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((
            UnixDatagram {
                inner: Pollable::new(a)?,
            },
            UnixDatagram {
                inner: Pollable::new(b)?,
            },
        ))
    }

    /// Sets the default peer to the socket at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-dconn-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let server = gort::net::UnixDatagram::bind(&path)?;
    /// let client = gort::net::UnixDatagram::unbound()?;
    /// client.connect(&path)?;
    /// client.send(b"hi")?;
    /// assert_eq!(server.recv(&mut [0; 4])?, 2);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.get_ref().connect(path)
    }

    /// Sends one datagram to the socket at `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-sendto-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let server = gort::net::UnixDatagram::bind(&path)?;
    /// gort::net::UnixDatagram::unbound()?.send_to(b"abc", &path)?;
    /// assert_eq!(server.recv_from(&mut [0; 4])?.0, 3);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner.io(Direction::Write, |s| s.send_to(buf, path))
    }

    /// Receives one datagram: its length (cut to `buf`'s) and its sender.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = gort::net::UnixDatagram::pair()?;
    /// a.send(b"xyz")?;
    /// let (n, _from) = b.recv_from(&mut [0; 8])?;
    /// assert_eq!(n, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = gort::net::UnixDatagram::pair()?;
    /// assert_eq!(a.send(b"12345")?, 5);
    /// assert_eq!(b.recv(&mut [0; 8])?, 5);
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
    /// let (a, b) = gort::net::UnixDatagram::pair()?;
    /// b.send(b"ok")?;
    /// assert_eq!(a.recv(&mut [0; 8])?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.io(Direction::Read, |s| s.recv(buf))
    }

    /// Shuts down the read half, the write half or both; goroutines waiting on this socket
    /// wake and see the shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    ///
    /// let (a, _b) = gort::net::UnixDatagram::pair()?;
    /// a.shutdown(Shutdown::Both)?;
    /// assert!(a.send(b"late").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)?;
        self.inner.wake_waiters();
        Ok(())
    }
}

/// `local_addr` and `peer_addr` of a Unix socket type that has `pair()`.
macro_rules! unix_addresses {
    ($gort:ident) => {
        impl $gort {
            /// The address of the local end.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, _b) = gort::net::", stringify!($gort), "::pair()?;")]
            /// assert!(a.local_addr()?.is_unnamed());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.inner.get_ref().local_addr()
            }

            /// The address of the remote end.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let (a, _b) = gort::net::", stringify!($gort), "::pair()?;")]
            /// assert!(a.peer_addr()?.is_unnamed());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn peer_addr(&self) -> io::Result<SocketAddr> {
                self.inner.get_ref().peer_addr()
            }
        }
    };
}

unix_addresses!(UnixStream);
unix_addresses!(UnixDatagram);
fd_conversions!(UnixListener, std::os::unix::net::UnixListener);
fd_conversions!(UnixStream, std::os::unix::net::UnixStream);
fd_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);
common_methods!(
    UnixListener,
    "let path = std::env::temp_dir().join(format!(\"gort-doc-common-{}-{}\", std::process::id(), line!()));\nlet _ = std::fs::remove_file(&path);\nlet socket = gort::net::UnixListener::bind(&path)?;\nstd::fs::remove_file(&path)?;"
);
common_methods!(
    UnixStream,
    "let (socket, _peer) = gort::net::UnixStream::pair()?;",
    timeouts
);
common_methods!(
    UnixDatagram,
    "let (socket, _peer) = gort::net::UnixDatagram::pair()?;",
    timeouts
);
stream_io!(UnixStream);
