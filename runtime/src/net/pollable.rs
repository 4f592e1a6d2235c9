//! A std socket in non-blocking mode whose operations block the way the caller expects: a
//! goroutine parks on the netpoller, a plain thread waits in `poll(2)`.
//!
//! Every operation is tried first; only `WouldBlock` waits, and after the wait it is tried
//! again, so that readiness is a hint and edge-triggered polling drains until `WouldBlock`.
//!
//! Invariants:
//! - the fd is in non-blocking mode for as long as this owns it, and back in blocking mode when
//!   it is handed out ([`Pollable::into_inner`]);
//! - it is registered with the poller on its first wait in a goroutine, and deregistered
//!   before the fd closes (on drop or hand-out), which wakes anyone still waiting with an error;
//! - a timeout applies to one whole operation: its deadline is set at the first `WouldBlock`
//!   (or the first wait) and never extended by retries;
//! - a read skips its first attempt only in a goroutine, after a short stream read left the
//!   socket empty, and only while the poller has not reported the peer's close: every edge
//!   after that read either sets `ready` or wakes the waiter, so the skip never loses data,
//!   and a close reported before it (which brings no new edge) is read rather than waited for.

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::poller::{self, Desc, NetWaiter};
use super::readiness::{Readiness, Wait};
use crate::sched::{WaitReason, current_g, park_releasing};
use crate::time::park_until;

/// Which way an operation moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// See the module docs.
pub(crate) struct Pollable<S: AsRawFd> {
    io: ManuallyDrop<S>,
    desc: OnceLock<Result<&'static Desc, io::ErrorKind>>,
    /// Nanoseconds; 0 is none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// The user asked for std's non-blocking mode: `WouldBlock` is returned, not waited out.
    nonblocking: AtomicBool,
    /// A stream read came back short, so the socket was empty then: the next read waits for
    /// readiness before trying (see [`Pollable::read_drained`]).
    drained: AtomicBool,
}

impl<S: AsRawFd> Pollable<S> {
    /// Takes `io` and puts its fd in non-blocking mode.
    pub(crate) fn new(io: S) -> io::Result<Self> {
        set_fd_nonblocking(io.as_raw_fd(), true)?;
        Ok(Self::wrap(io))
    }

    /// Takes `io` whose fd may be in any mode: a conversion that cannot fail. If the mode
    /// cannot be set, the fd is unusable and its first operation reports why.
    pub(crate) fn from_std(io: S) -> Self {
        let _ = set_fd_nonblocking(io.as_raw_fd(), true);
        Self::wrap(io)
    }

    fn wrap(io: S) -> Self {
        Self {
            io: ManuallyDrop::new(io),
            desc: OnceLock::new(),
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            nonblocking: AtomicBool::new(false),
            drained: AtomicBool::new(false),
        }
    }

    /// The std socket, in non-blocking mode.
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// A new handle to the same socket (from `try_clone` on the std socket), with this one's
    /// timeouts and mode.
    pub(crate) fn duplicate(&self, clone: impl FnOnce(&S) -> io::Result<S>) -> io::Result<Self> {
        let copy = Self::new(clone(&self.io)?)?;
        copy.set_timeout(Direction::Read, self.timeout(Direction::Read))?;
        copy.set_timeout(Direction::Write, self.timeout(Direction::Write))?;
        copy.nonblocking
            .store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(copy)
    }

    /// Hands the std socket out in blocking mode.
    pub(crate) fn into_inner(self) -> S {
        let mut this = ManuallyDrop::new(self);
        this.deregister();
        // SAFETY: `this` is never used or dropped again, so the socket is moved out once.
        let io = unsafe { ManuallyDrop::take(&mut this.io) };
        let _ = set_fd_nonblocking(io.as_raw_fd(), false);
        io
    }

    /// Runs `op` until it does not answer `WouldBlock`, waiting for readiness in `direction`
    /// between attempts (std's blocking semantics, with this socket's timeout).
    pub(crate) fn io<R>(
        &self,
        direction: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut deadline = None;
        let mut first_wait = true;
        if direction == Direction::Read
            && self.drained.load(Ordering::Relaxed)
            && self.drained.swap(false, Ordering::Relaxed)
            && !self.nonblocking.load(Ordering::Relaxed)
            && current_g().is_some()
            && self.peer_may_send()
        {
            // Known empty: wait first, and skip an attempt that would only fail.
            deadline = self.timeout(direction).map(|t| Instant::now() + t);
            first_wait = false;
            self.wait(direction, deadline)?;
        }
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        && !self.nonblocking.load(Ordering::Relaxed) => {}
                done => return done,
            }
            if first_wait {
                first_wait = false;
                deadline = self.timeout(direction).map(|t| Instant::now() + t);
            }
            self.wait(direction, deadline)?;
        }
    }

    /// Waits for a non-blocking connect started on this socket to complete (Go's
    /// `connect` then wait for writability): it has completed once the socket has a peer
    /// (`peer` answers `Ok`), and has failed once it has a pending error (`take_error`), which
    /// is checked after every write-readiness so that a refused connect fails at once.
    pub(crate) fn await_connect<A>(
        &self,
        deadline: Option<Instant>,
        take_error: impl Fn(&S) -> io::Result<Option<io::Error>>,
        peer: impl Fn(&S) -> io::Result<A>,
    ) -> io::Result<()> {
        loop {
            if let Some(error) = take_error(&self.io)? {
                return Err(error);
            }
            match peer(&self.io) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    self.wait(Direction::Write, deadline).map_err(|e| {
                        if e.kind() == io::ErrorKind::TimedOut {
                            io::Error::new(io::ErrorKind::TimedOut, "connect timed out")
                        } else {
                            e
                        }
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Records that a stream read of `len` bytes answered `n`: a short read (0 < n < len) left
    /// the socket empty at that moment, so any data that comes after it brings a new edge, and
    /// the next read can wait for that edge instead of trying first (one failed system call
    /// less per message). A stale hint costs nothing: the wait finds `ready` or the edge.
    pub(crate) fn read_drained(&self, n: usize, len: usize) {
        if n > 0 && n < len {
            self.drained.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the poller has not reported the peer's close (or an error): a close reported
    /// before a short read brings no further edge, so the end of stream must be read, not
    /// waited for.
    fn peer_may_send(&self) -> bool {
        match self.desc.get() {
            Some(Ok(desc)) => !desc.read_closed.load(Ordering::Acquire),
            _ => false,
        }
    }

    /// Waits once for readiness in `direction` until `deadline`: `Ok` means "try again".
    pub(crate) fn wait(&self, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out(direction));
        }
        let Some(g) = current_g() else {
            return wait_on_thread(self.io.as_raw_fd(), direction, deadline);
        };
        let desc = self.desc()?;
        let readiness: &Readiness<NetWaiter> = match direction {
            Direction::Read => &desc.read,
            Direction::Write => &desc.write,
        };
        let _waiting = poller::waiting();
        let outcome = match deadline {
            // SAFETY: `g` is the calling goroutine, and its waiter goes to `wait_parked`.
            None => readiness.wait_parked(unsafe { NetWaiter::parked(g) }, |held| {
                // SAFETY: descriptors are never freed, so the lock outlives the release.
                let release = unsafe { held.into_release() };
                // Until the release, the entry is behind the lock; after, `notify` or `close`
                // takes it off the list and readies `g`, once.
                // SAFETY: `g` is the calling goroutine, reachable only as just said.
                unsafe { park_releasing(g, WaitReason::IoWait, release) };
            }),
            Some(deadline) => readiness.wait(NetWaiter::woken, || {
                park_until(WaitReason::IoWait, deadline);
                Instant::now() < deadline
            }),
        };
        match outcome {
            Wait::Ready => Ok(()),
            Wait::TimedOut => Err(timed_out(direction)),
            Wait::Closed => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "use of a closed network connection",
            )),
        }
    }

    /// Makes goroutines waiting on this socket try again (after a shutdown, whose readiness
    /// the kernel may not report on every socket type).
    pub(crate) fn wake_waiters(&self) {
        if let Some(Ok(desc)) = self.desc.get() {
            desc.read.notify();
            desc.write.notify();
        }
    }

    pub(crate) fn set_timeout(
        &self,
        direction: Direction,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let nanos = match timeout {
            None => 0,
            Some(t) if t.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ));
            }
            Some(t) => u64::try_from(t.as_nanos()).unwrap_or(u64::MAX),
        };
        self.timeout_cell(direction).store(nanos, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn timeout(&self, direction: Direction) -> Option<Duration> {
        match self.timeout_cell(direction).load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    fn timeout_cell(&self, direction: Direction) -> &AtomicU64 {
        match direction {
            Direction::Read => &self.read_timeout,
            Direction::Write => &self.write_timeout,
        }
    }

    fn desc(&self) -> io::Result<&'static Desc> {
        let fd = self.io.as_raw_fd();
        let registered = self
            .desc
            .get_or_init(|| poller::register(fd).map_err(|e| e.kind()));
        registered.map_err(|kind| {
            io::Error::new(kind, "cannot register the socket with the gort netpoller")
        })
    }

    fn deregister(&mut self) {
        if let Some(Ok(desc)) = self.desc.take() {
            poller::deregister(self.io.as_raw_fd(), desc);
        }
    }
}

impl<S: AsRawFd> Drop for Pollable<S> {
    fn drop(&mut self) {
        self.deregister();
        // SAFETY: dropped once, here, after the fd left the poller.
        unsafe { ManuallyDrop::drop(&mut self.io) };
    }
}

fn timed_out(direction: Direction) -> io::Error {
    let what = match direction {
        Direction::Read => "read timed out",
        Direction::Write => "write timed out",
    };
    io::Error::new(io::ErrorKind::TimedOut, what)
}

/// A plain thread blocks in `poll(2)` on the one fd: the netpoller serves goroutines only.
fn wait_on_thread(fd: RawFd, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
    let events = match direction {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut poll_fd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out(direction));
                }
                // Rounded up, so the wait never ends before the deadline.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: `poll_fd` is one valid, writable pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&raw mut poll_fd, 1, timeout_ms) };
        match ready {
            1.. => return Ok(()),
            0 => continue, // the deadline check above decides
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// Sets or clears `O_NONBLOCK` on `fd`.
pub(crate) fn set_fd_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL reads the flags of an fd; an invalid fd is reported as an error.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL with flags read from the same fd changes only its O_NONBLOCK bit.
    if wanted != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
