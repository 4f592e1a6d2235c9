//! The completion protocol between a goroutine and its join handle: one atomic word says who
//! owns the result slot and the waiter slot, so finishing and joining cost one atomic operation
//! each and no lock.
//!
//! | state      | meaning                                                                    |
//! |------------|----------------------------------------------------------------------------|
//! | `PENDING`  | running (or not started); the handle may register a waiter                 |
//! | `WAITING`  | the handle registered a waiter: the goroutine wakes it when it finishes    |
//! | `DONE`     | the result is stored: the handle owns it                                   |
//! | `DETACHED` | the handle was dropped first: the goroutine drops its own result           |
//!
//! Invariants:
//! - the waiter slot is written by the handle only in `PENDING` (before its `PENDING ->
//!   WAITING` exchange publishes it) and read by the goroutine only after its exchange to
//!   `DONE` found `WAITING`;
//! - the result slot is written by the goroutine before its exchange to `DONE` and read by the
//!   handle only after it saw `DONE`, or by the goroutine itself if the exchange found
//!   `DETACHED`;
//! - every state is left at most once, so a waiter is woken at most once and a result is
//!   dropped exactly once.

use crate::shim::atomic::{AtomicU8, Ordering};

pub(crate) const PENDING: u8 = 0;
pub(crate) const WAITING: u8 = 1;
pub(crate) const DONE: u8 = 2;
pub(crate) const DETACHED: u8 = 3;

/// What the goroutine must do after storing its result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Finished {
    /// Nobody waits yet: the handle finds the result when it looks.
    Stored,
    /// Wake the registered waiter.
    Wake,
    /// The handle is gone: drop the result.
    Unclaimed,
}

/// Goroutine side, after storing its result in the slot.
pub(crate) fn finish(word: &AtomicU8) -> Finished {
    #[cfg(all(loom, gort_loom_lost_join))]
    let previous = {
        // Broken on purpose: a non-atomic read-then-write misses a waiter registered between.
        let previous = word.load(Ordering::Acquire);
        word.store(DONE, Ordering::Release);
        previous
    };
    #[cfg(not(all(loom, gort_loom_lost_join)))]
    let previous = word.swap(DONE, Ordering::AcqRel);
    match previous {
        WAITING => Finished::Wake,
        DETACHED => Finished::Unclaimed,
        _ => Finished::Stored,
    }
}

/// Handle side: whether the result is there.
pub(crate) fn is_done(word: &AtomicU8) -> bool {
    word.load(Ordering::Acquire) == DONE
}

/// Handle side, after writing its waiter in the waiter slot: `true` if the goroutine will wake
/// it, `false` if the goroutine finished first (the waiter slot is the handle's again).
pub(crate) fn register_waiter(word: &AtomicU8) -> bool {
    word.compare_exchange(PENDING, WAITING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// Handle side, when it is dropped unjoined: `true` if the result is there and the caller
/// drops it, `false` if the goroutine will.
pub(crate) fn detach(word: &AtomicU8) -> bool {
    word.compare_exchange(PENDING, DETACHED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
}

#[cfg(all(test, loom))]
mod loom_model {
    //! The goroutine finishes while its handle registers a waiter and waits: the waiter must be
    //! woken exactly once, or the handle must see the result without waiting, and the result
    //! must reach the handle intact.
    //!
    //! Broken variant: `--cfg gort_loom_lost_join` finishes with a load and a store instead of
    //! one exchange, so a waiter registered between them is never woken.

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    use super::*;

    struct Shared {
        word: AtomicU8,
        result: UnsafeCell<u32>,
        waiter: UnsafeCell<bool>,
        wakes: AtomicUsize,
    }

    fn join_against_finish() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let shared = Arc::new(Shared {
                word: AtomicU8::new(PENDING),
                result: UnsafeCell::new(0),
                waiter: UnsafeCell::new(false),
                wakes: AtomicUsize::new(0),
            });
            let goroutine = {
                let shared = shared.clone();
                thread::spawn(move || {
                    // SAFETY: the goroutine owns the result slot until it finishes.
                    shared.result.with_mut(|result| unsafe { *result = 42 });
                    if finish(&shared.word) == Finished::Wake {
                        // SAFETY: finishing found `WAITING`: the waiter slot is the goroutine's.
                        let registered = shared.waiter.with(|waiter| unsafe { *waiter });
                        assert!(registered, "woke a waiter that was never registered");
                        shared.wakes.fetch_add(1, Ordering::Release);
                    }
                })
            };
            if !is_done(&shared.word) {
                // SAFETY: the handle owns the waiter slot until it registers.
                shared.waiter.with_mut(|waiter| unsafe { *waiter = true });
                if register_waiter(&shared.word) {
                    // Parked: only the goroutine's wake-up brings the handle back.
                    while shared.wakes.load(Ordering::Acquire) == 0 {
                        thread::yield_now();
                    }
                }
            }
            assert!(is_done(&shared.word));
            // SAFETY: the handle saw `DONE`: the result slot is its own.
            assert_eq!(shared.result.with(|result| unsafe { *result }), 42);
            goroutine.join().unwrap();
            assert!(shared.wakes.load(Ordering::Acquire) <= 1);
        });
    }

    #[cfg(not(gort_loom_lost_join))]
    #[test]
    fn loom_join_never_loses_its_wake_up() {
        join_against_finish();
    }

    #[cfg(gort_loom_lost_join)]
    #[test]
    fn loom_catches_a_lost_join_wake_up() {
        let caught = std::panic::catch_unwind(join_against_finish);
        assert!(caught.is_err(), "the model must find the lost wake-up");
    }
}
