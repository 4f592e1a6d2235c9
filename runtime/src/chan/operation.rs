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
//! | `EXCLUSIVE`      | waiting, and only one counterpart can ever reach it (see below)    |
//!
//! Invariants:
//! - only the owner leaves `WAITING` for `CANCELLED`, and only a counterpart for `CLAIMED`; the
//!   compare-exchange between them decides, so an operation completes at most once and a value
//!   is moved at most once;
//! - a counterpart that claimed touches the owner's slots, then publishes `DONE` or `CLOSED` with
//!   a release store, then wakes the owner; the owner reads its slots only after seeing one of
//!   them with an acquire load, and returns (ending the slots' lifetime) only after that or after
//!   its own cancel succeeded;
//! - the counterpart wakes the owner before it publishes completion, and the owner does not
//!   leave a claimed operation before completion: so the owner's frame, and the owner itself,
//!   outlive the wake-up, which needs no reference of its own;
//! - the owner decides from one look at the word whether to park: it parks only on `WAITING`
//!   (or `EXCLUSIVE`), so any wake-up comes after the look (a counterpart wakes only after it
//!   claimed);
//! - an `EXCLUSIVE` operation has one arm and no deadline: its owner never cancels it, and its
//!   one queue entry is taken by exactly one counterpart (under its channel's lock), so that
//!   counterpart claims it with a plain store instead of a compare-exchange. The store still
//!   comes before the wake-up, whose read-modify-writes order it before the owner's next look:
//!   an owner woken early never parks again on a claimed operation. (A goroutine owner of an
//!   exclusive operation does not wait on this word at all: it parks under its channel's lock
//!   and is readied only after completion; see `channel`.)

use crate::shim::atomic::{AtomicUsize, Ordering};

const WAITING: usize = 0;
const CANCELLED: usize = 1;
const CLAIMED: usize = 2;
const DONE: usize = 3;
const CLOSED: usize = 4;
const EXCLUSIVE: usize = 5;
const PHASE_BITS: u32 = 3;
const PHASE_MASK: usize = (1 << PHASE_BITS) - 1;

/// Where a blocked operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Nobody has won it.
    Waiting,
    /// A counterpart won it and is moving the value.
    Claimed,
    /// It ended.
    Ended(Outcome),
}

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

/// How the operation whose word holds `state` ended, if it did. Decided with plain branches,
/// which predict better right after a switch than the jump table a `match` compiles to.
#[inline]
fn outcome(state: usize) -> Option<Outcome> {
    let (phase, arm) = (state & PHASE_MASK, state >> PHASE_BITS);
    if phase == DONE {
        Some(Outcome::Done(arm))
    } else if phase == CLOSED {
        Some(Outcome::Closed(arm))
    } else if phase == CANCELLED {
        Some(Outcome::Cancelled)
    } else {
        None
    }
}

/// The shared word of one blocked operation.
#[derive(Debug)]
pub(crate) struct Operation {
    state: AtomicUsize,
}

impl Operation {
    #[inline]
    pub(crate) fn new() -> Operation {
        Operation {
            state: AtomicUsize::new(WAITING),
        }
    }

    /// An operation with one arm that its owner never cancels (see the module docs).
    #[inline]
    pub(crate) fn exclusive() -> Operation {
        Operation {
            state: AtomicUsize::new(EXCLUSIVE),
        }
    }

    /// Counterpart: wins the operation for `arm`. On `true` the caller moves the value, then
    /// calls [`Operation::complete`].
    #[inline]
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
        {
            // The one counterpart that can reach an exclusive operation wins it unopposed: a
            // plain store, which the owner still sees once woken (so it does not park again).
            let claimed = arm << PHASE_BITS | CLAIMED;
            if self.state.load(Ordering::Relaxed) == EXCLUSIVE {
                // Broken on purpose: winning without a write leaves the owner nothing to see.
                #[cfg(not(all(loom, gort_loom_silent_claim)))]
                self.state.store(claimed, Ordering::Relaxed);
                return true;
            }
            self.state
                .compare_exchange(WAITING, claimed, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }
    }

    /// Counterpart, after a successful claim on `arm`: publishes that the value moved (`moved`)
    /// or that the channel disconnected.
    #[inline]
    pub(crate) fn complete(&self, arm: usize, moved: bool) {
        let phase = if moved { DONE } else { CLOSED };
        self.state
            .store(arm << PHASE_BITS | phase, Ordering::Release);
    }

    /// Owner: where the operation stands, from one look at its word (deciding from two looks
    /// could see it claimed, then not claimed because it just ended, and park after the
    /// wake-up already came).
    #[inline]
    pub(crate) fn poll(&self) -> Poll {
        let state = self.state.load(Ordering::Acquire);
        match outcome(state) {
            Some(outcome) => Poll::Ended(outcome),
            None if state & PHASE_MASK == CLAIMED => Poll::Claimed,
            None => Poll::Waiting,
        }
    }

    /// Owner of an operation that ended before it could look (a goroutine readied only after
    /// completion): how it ended, or `None` if it has not.
    #[inline]
    pub(crate) fn ended(&self) -> Option<Outcome> {
        outcome(self.state.load(Ordering::Acquire))
    }

    /// Owner: waits for the operation to end. While nobody has won it, parks (`park` may return
    /// early) or, once `expired()`, gives up; while a counterpart moves the value, which it has
    /// woken the owner for already, pauses without parking.
    pub(crate) fn wait_with(
        &self,
        mut expired: impl FnMut() -> bool,
        mut park: impl FnMut(),
        mut pause: impl FnMut(),
    ) -> Outcome {
        loop {
            #[cfg(all(loom, gort_loom_two_looks))]
            let poll = {
                // Broken on purpose: one look for "ended", another for "claimed"; the operation
                // can end in between, and the owner then parks after its wake-up came.
                match self.poll() {
                    Poll::Ended(outcome) => Poll::Ended(outcome),
                    _ if self.state.load(Ordering::Acquire) & PHASE_MASK == CLAIMED => {
                        Poll::Claimed
                    }
                    _ => Poll::Waiting,
                }
            };
            #[cfg(not(all(loom, gort_loom_two_looks)))]
            let poll = self.poll();
            match poll {
                Poll::Ended(outcome) => return outcome,
                Poll::Claimed => pause(),
                Poll::Waiting if expired() => {
                    if self.cancel() {
                        return Outcome::Cancelled;
                    }
                }
                Poll::Waiting => park(),
            }
        }
    }

    /// Owner: gives up; `false` if a counterpart claimed the operation first (then it completes
    /// soon, and the owner waits for that).
    pub(crate) fn cancel(&self) -> bool {
        debug_assert_ne!(
            self.state.load(Ordering::Relaxed),
            EXCLUSIVE,
            "gort: an exclusive channel operation was cancelled"
        );
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
    //!
    //! A second model: the receiver parks, and the sender wakes it before publishing completion;
    //! it runs for a select-style operation and for an exclusive one. Broken variants:
    //! `--cfg gort_loom_two_looks` makes the receiver decide whether to park from two looks at
    //! the word, so it can park after its wake-up came; `--cfg gort_loom_silent_claim` claims an
    //! exclusive operation without writing, so a receiver woken before completion parks again.

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
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
                let outcome =
                    shared
                        .operation
                        .wait_with(|| true, thread::yield_now, thread::yield_now);
                assert_eq!(outcome, Outcome::Done(0));
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

    /// A receiver parks with no deadline; a sender claims it, moves the value, wakes it, and
    /// only then publishes completion. The receiver must end with the value, never parked for
    /// good (loom reports a deadlock).
    fn wake_before_completion(operation: fn() -> Operation) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.max_branches = 10_000;
        builder.check(move || {
            let shared = Arc::new(Shared {
                operation: operation(),
                slot: UnsafeCell::new(None),
            });
            // The receiver's park token, with `std::thread::park` semantics: a wake-up before
            // the park is kept; parking waits (yielding to the model) until one arrives, so an
            // owner parked for good shows as a model that cannot finish.
            let token = Arc::new(AtomicBool::new(false));
            let sender = {
                let (shared, token) = (shared.clone(), token.clone());
                thread::spawn(move || {
                    assert!(shared.operation.claim(0));
                    // SAFETY: the claim gives the sender the receiver's slot.
                    shared.slot.with_mut(|slot| unsafe { *slot = Some(7) });
                    token.store(true, Ordering::Release);
                    shared.operation.complete(0, true);
                })
            };
            let park = || {
                while !(token.load(Ordering::Acquire) && token.swap(false, Ordering::AcqRel)) {
                    thread::yield_now();
                }
            };
            let outcome = shared
                .operation
                .wait_with(|| false, park, thread::yield_now);
            assert_eq!(outcome, Outcome::Done(0));
            // SAFETY: `DONE` was published after the sender's write.
            assert_eq!(shared.slot.with(|slot| unsafe { *slot }), Some(7));
            sender.join().unwrap();
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

    #[cfg(not(gort_loom_two_looks))]
    #[test]
    fn loom_a_wake_before_completion_is_never_lost() {
        wake_before_completion(Operation::new);
    }

    #[cfg(not(any(gort_loom_two_looks, gort_loom_silent_claim)))]
    #[test]
    fn loom_a_wake_before_completion_of_an_exclusive_operation_is_never_lost() {
        wake_before_completion(Operation::exclusive);
    }

    #[cfg(gort_loom_silent_claim)]
    #[test]
    fn loom_catches_an_exclusive_claim_that_writes_nothing() {
        let caught = std::panic::catch_unwind(|| wake_before_completion(Operation::exclusive));
        assert!(
            caught.is_err(),
            "the model must find the owner parked for good"
        );
    }

    #[cfg(gort_loom_two_looks)]
    #[test]
    fn loom_catches_a_wait_that_looks_twice() {
        let caught = std::panic::catch_unwind(|| wake_before_completion(Operation::new));
        assert!(
            caught.is_err(),
            "the model must find the owner parked for good"
        );
    }
}
