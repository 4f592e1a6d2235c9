//! The handshake between a blocked channel operation and the goroutine (or thread) that
//! completes it: one word per blocked operation, shared by all the arms of a `select!`.
//!
//! | state            | meaning                                                            |
//! |------------------|--------------------------------------------------------------------|
//! | `WAITING`        | parked (or about to park) with an entry in each arm's channel      |
//! | `CLAIMED(arm)`   | a counterpart won the operation on `arm` and is moving the value   |
//! | `DONE(arm)`      | the value moved: the operation completed on `arm`                  |
//! | `CLOSED(arm)`    | `arm`'s channel was disconnected: no value moved                   |
//! | `CANCELLED`      | the owner gave up (deadline passed)                                |
//!
//! Invariants:
//! - only the owner leaves `WAITING` for `CANCELLED`, and only a counterpart for `CLAIMED`; the
//!   compare-exchange between them decides, so an operation completes at most once and a value
//!   is moved at most once;
//! - a counterpart that claimed touches the owner's slots, then publishes `DONE` or `CLOSED` with
//!   a release store, then wakes the owner; the owner reads its slots only after seeing one of
//!   them with an acquire load, and returns (ending the slots' lifetime) only after that or after
//!   its own cancel succeeded;
//! - the owner's waiter is read by the counterpart before it publishes completion, because the
//!   owner may return (and its frame end) as soon as it sees completion.

use crate::shim::atomic::{AtomicUsize, Ordering};

const WAITING: usize = 0;
const CANCELLED: usize = 1;
const CLAIMED: usize = 2;
const DONE: usize = 3;
const CLOSED: usize = 4;
const PHASE_BITS: u32 = 3;
const PHASE_MASK: usize = (1 << PHASE_BITS) - 1;

/// How a blocked operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The value moved on this arm.
    Done(usize),
    /// This arm's channel disconnected.
    Closed(usize),
    /// The owner's deadline passed first.
    Cancelled,
}

/// The shared word of one blocked operation.
#[derive(Debug)]
pub(crate) struct Operation {
    state: AtomicUsize,
}

impl Operation {
    pub(crate) fn new() -> Operation {
        Operation {
            state: AtomicUsize::new(WAITING),
        }
    }

    /// Counterpart: wins the operation for `arm`. On `true` the caller moves the value, then
    /// calls [`Operation::complete`].
    pub(crate) fn claim(&self, arm: usize) -> bool {
        #[cfg(all(loom, gort_loom_blind_claim))]
        {
            // Broken on purpose: look, then write, so a cancel in between is overwritten.
            if self.state.load(Ordering::Acquire) != WAITING {
                return false;
            }
            self.state
                .store(arm << PHASE_BITS | CLAIMED, Ordering::Relaxed);
            true
        }
        #[cfg(not(all(loom, gort_loom_blind_claim)))]
        self.state
            .compare_exchange(
                WAITING,
                arm << PHASE_BITS | CLAIMED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Counterpart, after a successful claim on `arm`: publishes that the value moved (`moved`)
    /// or that the channel disconnected.
    pub(crate) fn complete(&self, arm: usize, moved: bool) {
        let phase = if moved { DONE } else { CLOSED };
        self.state
            .store(arm << PHASE_BITS | phase, Ordering::Release);
    }

    /// Owner: how the operation ended, if it did.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        let state = self.state.load(Ordering::Acquire);
        match state & PHASE_MASK {
            DONE => Some(Outcome::Done(state >> PHASE_BITS)),
            CLOSED => Some(Outcome::Closed(state >> PHASE_BITS)),
            CANCELLED => Some(Outcome::Cancelled),
            _ => None,
        }
    }

    /// Owner: gives up; `false` if a counterpart claimed the operation first (then it completes
    /// soon, and the owner waits for that).
    pub(crate) fn cancel(&self) -> bool {
        self.state
            .compare_exchange(WAITING, CANCELLED, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! A receiver with a deadline waits for a value; a sender claims the receiver's operation
    //! and moves the value while the receiver's deadline passes. The value must arrive exactly
    //! once or not at all (and then stay with the sender), and the receiver must never read
    //! its slot before the value is there.
    //!
    //! Broken variant: `--cfg gort_loom_blind_claim` claims with a load and a store, so a cancel
    //! in between is overwritten: the sender thinks it delivered, the receiver thinks it timed
    //! out, and the value is lost.

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    struct Shared {
        operation: Operation,
        slot: UnsafeCell<Option<u32>>,
    }

    fn deliver_against_a_deadline() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let shared = Arc::new(Shared {
                operation: Operation::new(),
                slot: UnsafeCell::new(None),
            });
            let sender = {
                let shared = shared.clone();
                thread::spawn(move || {
                    if shared.operation.claim(0) {
                        // SAFETY: the claim gives the sender the receiver's slot.
                        shared.slot.with_mut(|slot| unsafe { *slot = Some(7) });
                        shared.operation.complete(0, true);
                        true
                    } else {
                        false
                    }
                })
            };
            // The receiver's deadline passes: it tries to give up.
            let received = if shared.operation.cancel() {
                None
            } else {
                loop {
                    if let Some(outcome) = shared.operation.outcome() {
                        assert_eq!(outcome, Outcome::Done(0));
                        break;
                    }
                    thread::yield_now();
                }
                // SAFETY: `DONE` was published after the sender's write.
                shared.slot.with(|slot| unsafe { *slot })
            };
            let delivered = sender.join().unwrap();
            assert_eq!(
                delivered,
                received == Some(7),
                "a value was lost or doubled"
            );
        });
    }

    #[cfg(not(gort_loom_blind_claim))]
    #[test]
    fn loom_a_value_moves_once_or_not_at_all() {
        deliver_against_a_deadline();
    }

    #[cfg(gort_loom_blind_claim)]
    #[test]
    fn loom_catches_a_blind_claim() {
        let caught = std::panic::catch_unwind(deliver_against_a_deadline);
        assert!(caught.is_err(), "the model must find the lost value");
    }
}
