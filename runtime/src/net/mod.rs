//! Blocking-style networking for goroutines: `std::net` and `std::os::unix::net`, driven by a
//! netpoller (Go's `net`).
//!
//! The types mirror std's: write plain blocking code. In a goroutine, an operation that would
//! block parks the goroutine (its thread runs other goroutines) until the netpoller reports the
//! socket ready; on a plain OS thread, it blocks the thread. Read and write timeouts end a
//! blocked operation with [`ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut). Name resolution
//! blocks in the system resolver, so it runs through [`crate::blocking`].
//!
//! ```
//! use std::io::{Read, Write};
//!
//! use gort::net::{TcpListener, TcpStream};
//!
//! gort::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = gort::spawn(move || -> std::io::Result<()> {
//!         let (mut socket, _) = listener.accept()?;
//!         let mut buf = [0; 5];
//!         socket.read_exact(&mut buf)?;
//!         socket.write_all(&buf)
//!     });
//!     let mut client = TcpStream::connect(addr)?;
//!     client.write_all(b"hello")?;
//!     let mut echoed = String::new();
//!     client.read_to_string(&mut echoed)?;
//!     assert_eq!(echoed, "hello");
//!     server.join().unwrap()
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Differences from std: timeouts belong to the handle (a `try_clone` copies them, later
//! changes do not propagate), and a timed-out operation reports `TimedOut` rather than the
//! `WouldBlock` some platforms give.

mod pollable;
mod poller;
pub(crate) mod readiness;
mod tcp;
mod udp;
mod unix;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

pub(crate) use self::poller::{
    block as block_in_poller, has_waiters as network_waiters, interrupt as interrupt_poller,
    poll_if_stale, poll_now,
};
pub use self::tcp::{Incoming, TcpListener, TcpStream};
pub use self::udp::UdpSocket;
pub use self::unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// Resolves `addr` off the scheduler (the resolver blocks) and calls `f` with each address
/// until one succeeds; answers the last error.
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let addrs = crate::blocking(|| addr.to_socket_addrs())?;
    let mut last = None;
    for addr in addrs {
        match f(addr) {
            Ok(done) => return Ok(done),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// Raises a listening socket's backlog to the system's maximum (the kernel caps the request at
/// `net.core.somaxconn`), as Go listens; std listens with 128.
fn listen_with_system_backlog(listener: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    // A second `listen` on a listening socket only changes its backlog.
    // SAFETY: `listen` on an open socket that `listener` keeps open for the call.
    if unsafe { libc::listen(listener.as_raw_fd(), i32::MAX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Conversions between a gort socket and its std type and raw fds, and `Debug`.
macro_rules! fd_conversions {
    ($gort:ident, $std:ty) => {
        impl From<$std> for $gort {
            /// Takes a std socket (in any mode) for blocking-style use in goroutines.
            fn from(socket: $std) -> Self {
                Self {
                    inner: $crate::net::pollable::Pollable::from_std(socket),
                }
            }
        }

        impl From<$gort> for $std {
            /// Hands the socket back to std, in blocking mode.
            fn from(socket: $gort) -> Self {
                socket.inner.into_inner()
            }
        }

        impl std::os::fd::AsRawFd for $gort {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.get_ref().as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $gort {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.get_ref().as_fd()
            }
        }

        impl std::os::fd::IntoRawFd for $gort {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                <$std>::from(self).into_raw_fd()
            }
        }

        impl std::os::fd::FromRawFd for $gort {
            /// # Safety
            ///
            /// `fd` is an open socket of the right type that the caller owns and gives away.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
                // SAFETY: forwarded from the caller.
                Self::from(unsafe { <$std>::from_raw_fd(fd) })
            }
        }

        impl From<std::os::fd::OwnedFd> for $gort {
            fn from(fd: std::os::fd::OwnedFd) -> Self {
                Self::from(<$std>::from(fd))
            }
        }

        impl From<$gort> for std::os::fd::OwnedFd {
            fn from(socket: $gort) -> Self {
                Self::from(<$std>::from(socket))
            }
        }

        impl std::fmt::Debug for $gort {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.inner.get_ref().fmt(f)
            }
        }
    };
}

/// The methods every gort socket has: `try_clone`, `set_nonblocking` and `take_error`; with
/// `timeouts`, also the read and write timeouts. `$setup` is doc-test code that binds `socket`.
macro_rules! common_methods {
    ($gort:ident, $setup:literal) => {
        impl $gort {
            /// A new handle to the same socket (a duplicated fd), with this handle's timeouts.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// let copy = socket.try_clone()?;
            /// assert!(copy.take_error()?.is_none());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn try_clone(&self) -> std::io::Result<Self> {
                Ok(Self {
                    inner: self.inner.duplicate(|socket| socket.try_clone())?,
                })
            }

            /// With `true`, operations that would block return
            /// [`WouldBlock`](std::io::ErrorKind::WouldBlock) instead of waiting (std's
            /// non-blocking mode); `false` restores blocking-style waits.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// socket.set_nonblocking(true)?;
            /// socket.set_nonblocking(false)?;
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.inner.set_nonblocking(nonblocking);
                Ok(())
            }

            /// Takes the socket's pending error (`SO_ERROR`), if any.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// assert!(socket.take_error()?.is_none());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.inner.get_ref().take_error()
            }
        }
    };
    ($gort:ident, $setup:literal, timeouts) => {
        common_methods!($gort, $setup);

        impl $gort {
            /// Sets how long a read may wait; `None` waits forever. A read that waits longer
            /// fails with [`TimedOut`](std::io::ErrorKind::TimedOut). A zero duration is an
            /// `InvalidInput` error, as in std.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = $setup]
            /// socket.set_read_timeout(Some(Duration::from_secs(1)))?;
            /// assert_eq!(socket.read_timeout()?, Some(Duration::from_secs(1)));
            /// assert!(socket.set_read_timeout(Some(Duration::ZERO)).is_err());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn set_read_timeout(
                &self,
                timeout: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.inner
                    .set_timeout($crate::net::pollable::Direction::Read, timeout)
            }

            /// Sets how long a write may wait; see
            #[doc = concat!("[`", stringify!($gort), "::set_read_timeout`].")]
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = $setup]
            /// socket.set_write_timeout(Some(Duration::from_millis(250)))?;
            /// assert_eq!(socket.write_timeout()?, Some(Duration::from_millis(250)));
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn set_write_timeout(
                &self,
                timeout: Option<std::time::Duration>,
            ) -> std::io::Result<()> {
                self.inner
                    .set_timeout($crate::net::pollable::Direction::Write, timeout)
            }

            /// The read timeout; `None` if reads wait forever.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// assert_eq!(socket.read_timeout()?, None);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.inner.timeout($crate::net::pollable::Direction::Read))
            }

            /// The write timeout; `None` if writes wait forever.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// assert_eq!(socket.write_timeout()?, None);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.inner.timeout($crate::net::pollable::Direction::Write))
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for a shared reference to it.
macro_rules! stream_io {
    ($gort:ident) => {
        impl std::io::Read for &$gort {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self
                    .inner
                    .io($crate::net::pollable::Direction::Read, |mut s| s.read(buf))?;
                self.inner.read_drained(n, buf.len());
                Ok(n)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                let n = self
                    .inner
                    .io($crate::net::pollable::Direction::Read, |mut s| {
                        s.read_vectored(bufs)
                    })?;
                self.inner
                    .read_drained(n, bufs.iter().map(|buf| buf.len()).sum());
                Ok(n)
            }
        }

        impl std::io::Write for &$gort {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner
                    .io($crate::net::pollable::Direction::Write, |mut s| {
                        s.write(buf)
                    })
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.inner
                    .io($crate::net::pollable::Direction::Write, |mut s| {
                        s.write_vectored(bufs)
                    })
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $gort {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $gort {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

use {common_methods, fd_conversions, stream_io};
