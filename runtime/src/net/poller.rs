//! The netpoller: one `mio::Poll` shared by the scheduler's Ms, integrated the way Go integrates
//! netpoll.
//!
//! - Every socket is registered once, edge-triggered for reading and writing, with a token that
//!   is the address of its [`Desc`]: the readiness of its two directions.
//! - An M that finds its queues and the global queue empty polls without blocking before it
//!   steals ([`poll_now`]); wake-ups land on its own P.
//! - When an M finds nothing to run anywhere and goroutines wait for the network, it blocks in
//!   the poller ([`block`]); one M at most does so. Timers have their own thread (see `time`),
//!   so the poll needs no timeout. Work queued meanwhile wakes it through a `mio::Waker` when
//!   no idle M is left to run it ([`interrupt`]), and so does the last network waiter leaving,
//!   so that an M never sleeps in the poller for nobody (the deadlock check needs the Ms idle).
//! - When every M runs goroutines and none has looked at the network for 10 ms, sysmon polls
//!   ([`poll_if_stale`]), as Go's sysmon does.
//!
//! Invariants:
//! - descriptors are type-stable: never freed, only reused through a free list, so a token from
//!   an event that raced a socket's close still points at a `Desc`. Such a stale event can only
//!   mark the reused descriptor ready, which costs its next waiter one extra attempt, or mark it
//!   read-closed, which costs its reads the skipped first attempt (see `pollable`) for good;
//! - `BLOCKED` is set only by the M that then blocks in the poll, under the poll lock, after it
//!   re-checked the waiter count; a waiter that leaves last reads it after its decrement (both
//!   sequentially consistent), so one of the two sees the other;
//! - the poll lock covers the kernel call only, so the wake-ups of two polls may run at once,
//!   each for its own events. Readiness is a hint: a direction notified twice, in any order,
//!   costs its next waiter one extra attempt at most.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use parking_lot::Mutex;

use super::readiness::{Readiness, Wake};
use crate::sched::{G, Waiter, ready_parked};

/// Events taken from the kernel per poll.
const EVENTS: usize = 256;
/// The waker's token; descriptors' tokens are their (non-null, aligned) addresses.
const WAKER: Token = Token(0);

/// A goroutine waiting on a socket's readiness.
pub(crate) struct NetWaiter(Kind);

enum Kind {
    /// With a deadline: parked on its park word ([`Readiness::wait`]).
    Woken(Waiter),
    /// Without one: parked under the readiness lock ([`Readiness::wait_parked`]).
    Parked(*const G),
}

// SAFETY: a `Parked` goroutine is reached only through the readiness list it is on, by the one
// party that takes it off (see `Readiness`), from whatever thread that party runs on.
unsafe impl Send for NetWaiter {}

impl NetWaiter {
    /// The calling goroutine, waiting with a deadline.
    pub(crate) fn woken() -> NetWaiter {
        NetWaiter(Kind::Woken(Waiter::current()))
    }

    /// Goroutine `g`, waiting without a deadline.
    ///
    /// # Safety
    ///
    /// `g` is the calling goroutine, and the waiter goes to [`Readiness::wait_parked`]: it is
    /// woken once, by whoever takes it off the list, while `g` is parked.
    pub(crate) unsafe fn parked(g: &G) -> NetWaiter {
        NetWaiter(Kind::Parked(g))
    }
}

impl Wake for NetWaiter {
    fn wake(self) {
        match self.0 {
            Kind::Woken(waiter) => waiter.wake(),
            // The waiter took this entry off the list, so it is the one party that can reach
            // the goroutine, which stays parked (its record live) until readied.
            // SAFETY: the contract of `NetWaiter::parked`, as just said.
            Kind::Parked(g) => unsafe { ready_parked(&*g) },
        }
    }
}

/// A registered socket's readiness, one per direction.
pub(crate) struct Desc {
    pub(crate) read: Readiness<NetWaiter>,
    pub(crate) write: Readiness<NetWaiter>,
    /// The peer closed its side or the socket failed: set before the read direction is
    /// notified of it, so a reader that sees it clear has not consumed that notification yet.
    pub(crate) read_closed: AtomicBool,
}

struct Poller {
    /// Held only for the poll itself: the events go into the polling thread's own buffer, and
    /// their goroutines are woken after the lock is let go, so that an M about to block in the
    /// poll does not wait for another M's wake-ups.
    poll: Mutex<Poll>,
    registry: Registry,
    waker: Waker,
    free: Mutex<Vec<&'static Desc>>,
}

static POLLER: OnceLock<Result<Poller, io::ErrorKind>> = OnceLock::new();
/// Goroutines waiting for readiness (registered or about to be).
static WAITERS: AtomicUsize = AtomicUsize::new(0);
/// An M blocks in the poll, or is about to.
static BLOCKED: AtomicBool = AtomicBool::new(false);
/// When the poller last looked at the kernel's events, in milliseconds since `EPOCH`.
static LAST_POLL_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ms() -> u64 {
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

fn poller() -> io::Result<&'static Poller> {
    let poller = POLLER.get_or_init(|| {
        let poll = Poll::new().map_err(|e| e.kind())?;
        let registry = poll.registry().try_clone().map_err(|e| e.kind())?;
        let waker = Waker::new(&registry, WAKER).map_err(|e| e.kind())?;
        Ok(Poller {
            poll: Mutex::new(poll),
            registry,
            waker,
            free: Mutex::new(Vec::new()),
        })
    });
    poller
        .as_ref()
        .map_err(|&kind| io::Error::new(kind, "cannot start the gort netpoller"))
}

/// Registers `fd` for edge-triggered readiness in both directions.
pub(crate) fn register(fd: RawFd) -> io::Result<&'static Desc> {
    let poller = poller()?;
    let desc = match poller.free.lock().pop() {
        Some(desc) => {
            desc.read.reset();
            desc.write.reset();
            desc.read_closed.store(false, Ordering::Relaxed);
            desc
        }
        None => Box::leak(Box::new(Desc {
            read: Readiness::new(),
            write: Readiness::new(),
            read_closed: AtomicBool::new(false),
        })),
    };
    let token = Token(std::ptr::from_ref(desc) as usize);
    if let Err(e) = poller.registry.register(
        &mut SourceFd(&fd),
        token,
        Interest::READABLE | Interest::WRITABLE,
    ) {
        poller.free.lock().push(desc);
        return Err(e);
    }
    Ok(desc)
}

/// Undoes [`register`] before `fd` is closed: wakes anyone still waiting with `Closed`, and
/// keeps the descriptor for reuse.
pub(crate) fn deregister(fd: RawFd, desc: &'static Desc) {
    let poller = poller().expect("a registered socket implies a running poller");
    // A failure means the fd is not registered any more (closed behind our back): nothing to
    // undo in the kernel.
    let _ = poller.registry.deregister(&mut SourceFd(&fd));
    desc.read.close();
    desc.write.close();
    poller.free.lock().push(desc);
}

/// Whether goroutines wait for the network (the deadlock check: the network may wake them).
pub(crate) fn has_waiters() -> bool {
    WAITERS.load(Ordering::SeqCst) != 0
}

/// Counts the calling goroutine as waiting for readiness until the guard drops.
pub(crate) fn waiting() -> WaitingGuard {
    WAITERS.fetch_add(1, Ordering::SeqCst);
    WaitingGuard(())
}

/// See [`waiting`].
pub(crate) struct WaitingGuard(());

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        if WAITERS.fetch_sub(1, Ordering::SeqCst) == 1 && BLOCKED.load(Ordering::SeqCst) {
            interrupt();
        }
    }
}

/// Polls without blocking if goroutines wait for the network and no M blocks in the poller;
/// wakes the goroutines whose sockets are ready. `true` if any event came.
pub(crate) fn poll_now() -> bool {
    if WAITERS.load(Ordering::Relaxed) == 0 || BLOCKED.load(Ordering::Relaxed) {
        return false;
    }
    let Some(Ok(poller)) = POLLER.get() else {
        return false;
    };
    let Some(mut poll) = poller.poll.try_lock() else {
        return false;
    };
    LAST_POLL_MS.store(now_ms(), Ordering::Relaxed);
    with_events(|events| {
        let polled = poll.poll(events, Some(Duration::ZERO));
        drop(poll);
        polled.is_ok() && dispatch(events)
    })
}

/// Polls without blocking if nobody did for `after` (sysmon's net poll, for when every M is
/// busy running goroutines and none looks at the network).
pub(crate) fn poll_if_stale(after: Duration) {
    let after = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
    if now_ms().saturating_sub(LAST_POLL_MS.load(Ordering::Relaxed)) >= after {
        poll_now();
    }
}

/// Blocks in the poller if goroutines wait for the network and no other M does; calls `woken`
/// when the poll returns, before waking the goroutines whose sockets are ready (so that the M
/// can take a P for them first). `false` if it did not block.
pub(crate) fn block(woken: impl FnOnce()) -> bool {
    if WAITERS.load(Ordering::SeqCst) == 0 || BLOCKED.swap(true, Ordering::SeqCst) {
        return false;
    }
    let Some(Ok(poller)) = POLLER.get() else {
        BLOCKED.store(false, Ordering::SeqCst);
        return false;
    };
    let mut poll = poller.poll.lock();
    // Re-checked after `BLOCKED` is set: see the module's invariant.
    if WAITERS.load(Ordering::SeqCst) == 0 {
        BLOCKED.store(false, Ordering::SeqCst);
        return false;
    }
    with_events(|events| {
        let polled = loop {
            match poll.poll(events, None) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                polled => break polled,
            }
        };
        drop(poll);
        BLOCKED.store(false, Ordering::SeqCst);
        LAST_POLL_MS.store(now_ms(), Ordering::Relaxed);
        woken();
        if polled.is_ok() {
            dispatch(events);
        }
    });
    true
}

/// Runs `f` with the calling thread's event buffer (each M, and sysmon, has its own). Nothing
/// that waking goroutines calls polls again, so the buffer is never borrowed twice.
fn with_events<R>(f: impl FnOnce(&mut Events) -> R) -> R {
    thread_local! {
        static BUFFER: RefCell<Events> = RefCell::new(Events::with_capacity(EVENTS));
    }
    BUFFER.with(|events| f(&mut events.borrow_mut()))
}

/// Wakes the M blocked in the poller, if one is: `true` if one was.
pub(crate) fn interrupt() -> bool {
    if !BLOCKED.load(Ordering::SeqCst) {
        return false;
    }
    let Some(Ok(poller)) = POLLER.get() else {
        return false;
    };
    // A failed wake means the eventfd's counter is full: a wake-up is pending anyway.
    let _ = poller.waker.wake();
    true
}

/// Wakes the waiters of every ready direction in `events`; `true` if there was any event.
fn dispatch(events: &Events) -> bool {
    let mut any = false;
    for event in events {
        any = true;
        if event.token() == WAKER {
            continue;
        }
        // Descriptors are never freed (see the module's invariant).
        // SAFETY: every token but the waker's is the address of a live `Desc`.
        let desc = unsafe { &*(event.token().0 as *const Desc) };
        if event.is_read_closed() || event.is_error() {
            desc.read_closed.store(true, Ordering::Release);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            desc.read.notify();
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            desc.write.notify();
        }
    }
    any
}
