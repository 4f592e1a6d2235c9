//! One direction (read or write) of a socket's readiness, between the netpoller that sees
//! edge-triggered events and the goroutines that wait for them (Go's `pollDesc.rg`/`wg`).
//!
//! A waiter tries its operation first and waits only after `WouldBlock`. An edge that arrives
//! between that failed attempt and the wait must not be lost, because edge-triggered polling
//! reports it once: so [`Readiness::notify`] either wakes every registered waiter or, with none
//! registered, leaves `ready` set for the next one, which then retries at once.
//!
//! Two kinds of waiters share the list:
//! - a waiter with a deadline ([`Readiness::wait`]) parks on its own park word and may return
//!   early (its deadline, or a spurious wake-up); it looks itself up on the list afterwards;
//! - a waiter without one ([`Readiness::wait_parked`]) parks *holding the lock*, which its park
//!   releases only once the waiter is recorded as parked (Go's `gopark` with an unlock
//!   function, as the channels do). Whoever takes its entry off the list therefore finds it
//!   parked and is the only party that can wake it: no park word, no reference count, and no
//!   second look at the list after the wake-up.
//!
//! Invariants (all under the one lock, but `closed` is also read without it):
//! - a waiter is registered, notified, or gone: `notify` and `close` take every registered
//!   waiter off the list before waking it, once; a waiter with a deadline that finds itself
//!   still on the list after its park has not been woken, so it either parks again or takes
//!   itself off; a parked waiter never takes itself off (it is woken only from the list);
//! - `ready` is set only while no waiter is registered, and the next waiter consumes it instead
//!   of parking; a spurious `ready` costs one extra attempt, never a lost wake-up;
//! - once `closed` (set under the lock, before the wake-ups), every waiter is woken and every
//!   later wait returns [`Wait::Closed`] at once.

use crate::shim::Mutex;
use crate::shim::MutexGuard;
use crate::shim::atomic::{AtomicBool, Ordering};

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Readiness arrived (or may have): retry the operation.
    Ready,
    /// The socket was closed while the caller waited.
    Closed,
    /// The caller's deadline passed first.
    TimedOut,
}

/// Whoever waits: woken once, by value.
pub(crate) trait Wake {
    fn wake(self);
}

/// The lock-protected part.
pub(crate) struct Waiters<W> {
    ready: bool,
    next_ticket: u64,
    /// Registered waiters with their tickets; the vector keeps its capacity, so a socket's
    /// steady state does not allocate.
    list: Vec<(u64, W)>,
}

/// The lock of a [`Readiness`], held for a waiter that parks under it
/// ([`Readiness::wait_parked`]).
pub(crate) struct Held<'a, W>(#[cfg_attr(loom, allow(dead_code))] MutexGuard<'a, Waiters<W>>);

#[cfg(not(loom))]
impl<W> Held<'_, W> {
    /// Gives up the guard without unlocking: the lock is released when the answered
    /// [`crate::sched::Release`] runs.
    ///
    /// # Safety
    ///
    /// The release runs once, while the `Readiness` is alive (a parked waiter's frame holds a
    /// reference to it, and descriptors are never freed anyway).
    pub(crate) unsafe fn into_release(self) -> crate::sched::Release {
        let mutex: *const Mutex<Waiters<W>> = MutexGuard::mutex(&self.0);
        std::mem::forget(self.0);
        /// Unlocks the mutex at `mutex`.
        ///
        /// # Safety
        ///
        /// `mutex` points to a live mutex held by a forgotten guard.
        unsafe fn unlock<W>(mutex: *const ()) {
            // SAFETY: the caller's contract: the guard that held it was forgotten.
            unsafe { (*mutex.cast::<Mutex<Waiters<W>>>()).force_unlock() }
        }
        // SAFETY: the mutex outlives the run (our contract) and stays held until it.
        unsafe { crate::sched::Release::new(unlock::<W>, mutex.cast()) }
    }
}

/// See the module docs.
pub(crate) struct Readiness<W> {
    waiters: Mutex<Waiters<W>>,
    closed: AtomicBool,
}

impl<W: Wake> Readiness<W> {
    pub(crate) fn new() -> Self {
        Self {
            waiters: Mutex::new(Waiters {
                ready: false,
                next_ticket: 0,
                list: Vec::new(),
            }),
            closed: AtomicBool::new(false),
        }
    }

    /// Readies it for a new socket (a descriptor is reused, see `poller`).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn reset(&self) {
        let mut waiters = self.waiters.lock();
        debug_assert!(
            waiters.list.is_empty(),
            "a reused descriptor has no waiters"
        );
        waiters.ready = false;
        self.closed.store(false, Ordering::Relaxed);
    }

    /// The poller saw this direction become ready (or the caller wants waiters to retry, as
    /// after a shutdown): wakes every waiter, or leaves `ready` for the next one.
    pub(crate) fn notify(&self) {
        let mut waiters = self.waiters.lock();
        if waiters.list.is_empty() {
            #[cfg(not(all(loom, gort_loom_lost_readiness)))]
            {
                waiters.ready = true;
            }
            return;
        }
        for (_, waiter) in waiters.list.drain(..) {
            waiter.wake();
        }
    }

    /// The socket is closing: wakes every waiter with [`Wait::Closed`], and so every later wait.
    pub(crate) fn close(&self) {
        let mut waiters = self.waiters.lock();
        self.closed.store(true, Ordering::Release);
        for (_, waiter) in waiters.list.drain(..) {
            waiter.wake();
        }
    }

    /// Takes the lock for a waiter: `Err` with how the wait ends at once (closed, or readiness
    /// left by an edge), `Ok` with the held lock and the caller's ticket otherwise.
    fn register(
        &self,
        waiter: impl FnOnce() -> W,
    ) -> Result<(MutexGuard<'_, Waiters<W>>, u64), Wait> {
        let mut waiters = self.waiters.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(Wait::Closed);
        }
        if waiters.ready {
            waiters.ready = false;
            return Err(Wait::Ready);
        }
        let ticket = waiters.next_ticket;
        waiters.next_ticket += 1;
        waiters.list.push((ticket, waiter()));
        Ok((waiters, ticket))
    }

    /// How a wait ended for a waiter taken off the list.
    fn woken(&self) -> Wait {
        if self.closed.load(Ordering::Acquire) {
            Wait::Closed
        } else {
            Wait::Ready
        }
    }

    /// Waits for readiness after an attempt that would block, with a deadline. `waiter` names
    /// the caller; `park` parks it until a wake-up or its deadline and answers `false` once the
    /// deadline has passed (it may return spuriously; a parked caller is woken at most once per
    /// registration).
    pub(crate) fn wait(&self, waiter: impl FnOnce() -> W, mut park: impl FnMut() -> bool) -> Wait {
        let ticket = match self.register(waiter) {
            Ok((_, ticket)) => ticket,
            Err(now) => return now,
        };
        loop {
            let in_time = park();
            let mut waiters = self.waiters.lock();
            let Some(at) = waiters.list.iter().position(|(t, _)| *t == ticket) else {
                // Taken off the list: notified or closed.
                return self.woken();
            };
            if !in_time {
                waiters.list.swap_remove(at);
                return Wait::TimedOut;
            }
        }
    }

    /// Waits for readiness after an attempt that would block, without a deadline, parked under
    /// the lock. `waiter` names the caller; `park` parks it holding the lock, releases the lock
    /// only once the caller is recorded as parked, and returns when [`Wake::wake`] was called
    /// on the waiter (which `notify` or `close` does after taking it off the list): it must not
    /// return on anything else.
    pub(crate) fn wait_parked(&self, waiter: W, park: impl FnOnce(Held<'_, W>)) -> Wait {
        match self.register(|| waiter) {
            Ok((held, _)) => {
                park(Held(held));
                self.woken()
            }
            Err(now) => now,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! A reader tries a read that finds no data, then waits; meanwhile the "kernel" makes data
    //! arrive and the poller reports the edge once. The reader must end with the data, never
    //! parked for good (loom reports a model that cannot finish). A second model closes the
    //! socket under a parked reader, which must return `Closed`. Both run with each kind of
    //! waiter: one parked on its own token ([`Readiness::wait`]), and one parked under the lock
    //! ([`Readiness::wait_parked`]: the model's "M" releases the lock, then the reader waits for
    //! its token, which only a wake-up from the list sets).
    //!
    //! Broken variant: `--cfg gort_loom_lost_readiness` drops an edge that finds no waiter
    //! registered, so a reader that registers after the edge parks for good.

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;

    use super::*;

    /// A park token with `std::thread::park` semantics, as in the other models.
    #[derive(Clone)]
    struct Token(Arc<AtomicBool>);

    impl Wake for Token {
        fn wake(self) {
            self.0.store(true, Ordering::Release);
        }
    }

    impl Token {
        fn park(&self) -> bool {
            // A compare-exchange, not a swap: loom 0.7's `swap` can read a value older than
            // one that happens before it (a false alarm seen while writing this model).
            while self
                .0
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                thread::yield_now();
            }
            true
        }
    }

    /// One wait of the reader holding `token`.
    type WaitWith = fn(&Readiness<Token>, &Token) -> Wait;

    fn wait_on_token(readiness: &Readiness<Token>, token: &Token) -> Wait {
        readiness.wait(|| token.clone(), || token.park())
    }

    fn wait_under_lock(readiness: &Readiness<Token>, token: &Token) -> Wait {
        readiness.wait_parked(token.clone(), |held| {
            drop(held);
            token.park();
        })
    }

    fn model() -> loom::model::Builder {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.max_branches = 10_000;
        builder
    }

    fn edge_against_a_reader(wait: WaitWith) {
        model().check(move || {
            let readiness = Arc::new(Readiness::new());
            let data = Arc::new(AtomicBool::new(false));
            let poller = {
                let (readiness, data) = (readiness.clone(), data.clone());
                thread::spawn(move || {
                    data.store(true, Ordering::Release);
                    readiness.notify();
                })
            };
            let token = Token(Arc::new(AtomicBool::new(false)));
            loop {
                if data
                    .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    break;
                }
                assert_eq!(wait(&readiness, &token), Wait::Ready);
            }
            poller.join().unwrap();
        });
    }

    fn close_against_a_reader(wait: WaitWith) {
        model().check(move || {
            let readiness = Arc::new(Readiness::new());
            let closer = {
                let readiness = readiness.clone();
                thread::spawn(move || readiness.close())
            };
            let token = Token(Arc::new(AtomicBool::new(false)));
            loop {
                match wait(&readiness, &token) {
                    Wait::Closed => break,
                    Wait::Ready => continue,
                    Wait::TimedOut => unreachable!("no deadline"),
                }
            }
            closer.join().unwrap();
        });
    }

    #[cfg(not(gort_loom_lost_readiness))]
    #[test]
    fn loom_an_edge_is_never_lost() {
        edge_against_a_reader(wait_on_token);
    }

    #[cfg(not(gort_loom_lost_readiness))]
    #[test]
    fn loom_an_edge_is_never_lost_by_a_reader_parked_under_the_lock() {
        edge_against_a_reader(wait_under_lock);
    }

    #[cfg(not(gort_loom_lost_readiness))]
    #[test]
    fn loom_close_wakes_a_parked_reader() {
        close_against_a_reader(wait_on_token);
    }

    #[cfg(not(gort_loom_lost_readiness))]
    #[test]
    fn loom_close_wakes_a_reader_parked_under_the_lock() {
        close_against_a_reader(wait_under_lock);
    }

    #[cfg(gort_loom_lost_readiness)]
    #[test]
    fn loom_catches_a_lost_edge() {
        for (kind, wait) in [
            ("on its token", wait_on_token as WaitWith),
            ("under the lock", wait_under_lock),
        ] {
            let caught = std::panic::catch_unwind(|| edge_against_a_reader(wait));
            assert!(
                caught.is_err(),
                "the model must find the reader parked {kind} for good"
            );
        }
    }
}
