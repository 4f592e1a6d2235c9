//! The park/unpark protocol of a goroutine: a wake-up token that can be neither lost nor doubled.
//!
//! A goroutine's `park` word has three states:
//!
//! | state      | meaning                                                                        |
//! |------------|--------------------------------------------------------------------------------|
//! | `EMPTY`    | running, runnable, or switching away to park; no token                         |
//! | `NOTIFIED` | a wake-up arrived while it was not parked: its next park returns at once        |
//! | `PARKED`   | parked: the next wake-up makes it runnable                                     |
//!
//! A goroutine that parks first takes a token if one is there ([`take_token`]); otherwise it
//! switches to its M, which commits the park ([`commit_park`]) with one compare-exchange. A
//! wake-up that lands while the goroutine switches leaves a token, which the commit finds: the
//! M then makes the goroutine runnable again instead of parking it.
//!
//! Invariants:
//! - exactly one party makes a parked goroutine runnable again: the waker that moves the word
//!   from `PARKED` to `EMPTY`, or the M whose commit finds `NOTIFIED` (a wake-up that raced the
//!   switch);
//! - a wake-up that finds `NOTIFIED` is a duplicate and does nothing;
//! - every access that decides something is a read-modify-write, including consuming a token
//!   and finding one already there: a wake-up that finds the token of an earlier one and adds
//!   nothing must still be ordered before the consumer's re-check of its condition. With a plain
//!   load there, the waker could see a token the goroutine was consuming, while the goroutine's
//!   re-check (after a plain store) missed the waker's condition: a lost wake-up. (The one plain
//!   load, in [`take_token`], only skips a switch; a token it misses is found by the commit.)
//! - park may return without a matching wake-up (a token left by an earlier one), so callers
//!   re-check their condition in a loop, as with `std::thread::park`.

use crate::shim::atomic::{AtomicU8, Ordering};

pub(crate) const EMPTY: u8 = 0;
pub(crate) const NOTIFIED: u8 = 1;
pub(crate) const PARKED: u8 = 2;

/// Goroutine side, before switching away to park: `true` if a token was there and is now
/// consumed (the park is over), `false` if it must switch to its M to park.
pub(crate) fn take_token(word: &AtomicU8) -> bool {
    word.load(Ordering::Relaxed) == NOTIFIED && word.swap(EMPTY, Ordering::AcqRel) == NOTIFIED
}

/// M side, after the goroutine switched away to park: `true` if it is parked, `false` if a
/// wake-up raced the switch (its token is consumed) and the M must make it runnable again.
pub(crate) fn commit_park(word: &AtomicU8) -> bool {
    #[cfg(all(loom, gort_loom_blind_park))]
    {
        word.store(PARKED, Ordering::Release);
        true
    }
    #[cfg(not(all(loom, gort_loom_blind_park)))]
    match word.compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => true,
        Err(_) => {
            // Only a token can be there: consume it (see the invariant on read-modify-writes).
            word.swap(EMPTY, Ordering::AcqRel);
            false
        }
    }
}

/// Waker side: `true` if the caller must make the goroutine runnable (it was parked).
pub(crate) fn unpark(word: &AtomicU8) -> bool {
    let mut state = word.load(Ordering::Acquire);
    loop {
        let (next, ready) = match state {
            NOTIFIED => (NOTIFIED, false), // a duplicate: it only has to be ordered
            PARKED => (EMPTY, true),
            _ => (NOTIFIED, false), // EMPTY: leave a token
        };
        match word.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return ready,
            Err(actual) => state = actual,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! The park protocol against a racing wake-up. The goroutine and its M are one model thread
    //! (the M commits right after the switch); the waker is another. The goroutine parks until a
    //! flag is set; the waker sets it and wakes the goroutine. Nothing may be lost (the
    //! goroutine finishes) or doubled (it is made runnable at most once per park). The model
    //! runs twice: from an empty word, and from a stale token left by an earlier wake-up (a
    //! joiner that found its goroutine finished before parking leaves one), which the goroutine
    //! consumes while the waker finds it.
    //!
    //! Broken variant: `--cfg gort_loom_blind_park` commits the park without checking for a
    //! racing wake-up.

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::thread;

    use super::*;

    fn park_against_a_wake_up(initial: u8) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.max_branches = 10_000;
        builder.check(move || {
            let word = Arc::new(AtomicU8::new(initial));
            let flag = Arc::new(AtomicBool::new(false));
            let readied = Arc::new(AtomicUsize::new(0));

            let waker = {
                let (word, flag, readied) = (word.clone(), flag.clone(), readied.clone());
                thread::spawn(move || {
                    flag.store(true, Ordering::Release);
                    if unpark(&word) {
                        readied.fetch_add(1, Ordering::AcqRel);
                    }
                })
            };

            let mut parks = 0;
            while !flag.load(Ordering::Acquire) {
                if !take_token(&word) && commit_park(&word) {
                    parks += 1;
                    // Parked: only a wake-up brings it back.
                    while readied.load(Ordering::Acquire) < parks {
                        thread::yield_now();
                    }
                }
            }
            waker.join().unwrap();
            assert!(
                readied.load(Ordering::Acquire) <= parks,
                "a wake-up readied the goroutine twice"
            );
        });
    }

    #[cfg(not(gort_loom_blind_park))]
    #[test]
    fn loom_park_never_loses_a_wake_up() {
        park_against_a_wake_up(EMPTY);
    }

    #[cfg(not(gort_loom_blind_park))]
    #[test]
    fn loom_park_never_loses_a_wake_up_behind_a_stale_token() {
        park_against_a_wake_up(NOTIFIED);
    }

    #[cfg(gort_loom_blind_park)]
    #[test]
    fn loom_catches_a_blind_park_commit() {
        let caught = std::panic::catch_unwind(|| park_against_a_wake_up(EMPTY));
        assert!(caught.is_err(), "the model must find the lost wake-up");
    }
}
