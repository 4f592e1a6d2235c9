//! One direction (read or write) of a socket's readiness, between the netpoller that sees
//! edge-triggered events and the goroutines that wait for them (Go's `pollDesc.rg`/`wg`).
//!
//! A waiter tries its operation first and waits only after `WouldBlock`. An edge that arrives
//! between that failed attempt and the wait must not be lost, because edge-triggered polling
//! reports it once: so [`Readiness::notify`] either wakes every registered waiter or, with none
//! registered, leaves `ready` set for the next one, which then retries at once.
//!
//! Invariants (all under the one lock):
//! - a waiter is registered, notified, or gone: `notify` and `close` take every registered
//!   waiter off the list before waking it, and a waiter that finds itself still on the list
//!   after its park has not been woken (a spurious return or its deadline), so it either parks
//!   again or takes itself off;
//! - `ready` is set only while no waiter is registered, and the next waiter consumes it instead
//!   of parking; a spurious `ready` costs one extra attempt, never a lost wake-up;
//! - once `closed`, every waiter is woken and every later wait returns [`Wait::Closed`] at once.

use crate::shim::Mutex;

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

struct Waiters<W> {
    ready: bool,
    closed: bool,
    next_ticket: u64,
    /// Registered waiters with their tickets; the vector keeps its capacity, so a socket's
    /// steady state does not allocate.
    list: Vec<(u64, W)>,
}

/// See the module docs.
pub(crate) struct Readiness<W> {
    waiters: Mutex<Waiters<W>>,
}

impl<W: Wake> Readiness<W> {
    pub(crate) fn new() -> Self {
        Self {
            waiters: Mutex::new(Waiters {
                ready: false,
                closed: false,
                next_ticket: 0,
                list: Vec::new(),
            }),
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
        waiters.closed = false;
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
        waiters.closed = true;
        for (_, waiter) in waiters.list.drain(..) {
            waiter.wake();
        }
    }

    /// Waits for readiness after an attempt that would block. `waiter` names the caller;
    /// `park` parks it until a wake-up or its deadline and answers `false` once the deadline
    /// has passed (it may return spuriously; a parked caller is woken at most once per
    /// registration).
    pub(crate) fn wait(&self, waiter: impl FnOnce() -> W, mut park: impl FnMut() -> bool) -> Wait {
        let ticket = {
            let mut waiters = self.waiters.lock();
            if waiters.closed {
                return Wait::Closed;
            }
            if waiters.ready {
                waiters.ready = false;
                return Wait::Ready;
            }
            let ticket = waiters.next_ticket;
            waiters.next_ticket += 1;
            waiters.list.push((ticket, waiter()));
            ticket
        };
        loop {
            let in_time = park();
            let mut waiters = self.waiters.lock();
            let Some(at) = waiters.list.iter().position(|(t, _)| *t == ticket) else {
                // Taken off the list: notified or closed.
                return if waiters.closed {
                    Wait::Closed
                } else {
                    Wait::Ready
                };
            };
            if !in_time {
                waiters.list.swap_remove(at);
                return Wait::TimedOut;
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! A reader tries a read that finds no data, then waits; meanwhile the "kernel" makes data
    //! arrive and the poller reports the edge once. The reader must end with the data, never
    //! parked for good (loom reports a model that cannot finish). A second model closes the
    //! socket under a parked reader, which must return `Closed`.
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

    fn model() -> loom::model::Builder {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.max_branches = 10_000;
        builder
    }

    fn edge_against_a_reader() {
        model().check(|| {
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
                let outcome = readiness.wait(|| token.clone(), || token.park());
                assert_eq!(outcome, Wait::Ready);
            }
            poller.join().unwrap();
        });
    }

    #[cfg(not(gort_loom_lost_readiness))]
    #[test]
    fn loom_an_edge_is_never_lost() {
        edge_against_a_reader();
    }

    #[cfg(not(gort_loom_lost_readiness))]
    #[test]
    fn loom_close_wakes_a_parked_reader() {
        model().check(|| {
            let readiness = Arc::new(Readiness::new());
            let closer = {
                let readiness = readiness.clone();
                thread::spawn(move || readiness.close())
            };
            let token = Token(Arc::new(AtomicBool::new(false)));
            loop {
                match readiness.wait(|| token.clone(), || token.park()) {
                    Wait::Closed => break,
                    Wait::Ready => continue,
                    Wait::TimedOut => unreachable!("no deadline"),
                }
            }
            closer.join().unwrap();
        });
    }

    #[cfg(gort_loom_lost_readiness)]
    #[test]
    fn loom_catches_a_lost_edge() {
        let caught = std::panic::catch_unwind(edge_against_a_reader);
        assert!(
            caught.is_err(),
            "the model must find the reader parked for good"
        );
    }
}
