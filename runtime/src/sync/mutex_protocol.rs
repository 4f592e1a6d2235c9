//! The state-word protocol of [`RawMutex`](super::RawMutex) (Go's `sync.Mutex`), written against
//! an abstract wait queue so that the loom model runs exactly this code.
//!
//! The state word holds `LOCKED`, `WOKEN` (a waiter is awake and about to compete, so unlock
//! need not wake another), `STARVING` (handoff mode) and, above those bits, the number of
//! parked waiters.
//!
//! Two modes:
//! - **normal**: an unlock wakes one waiter, which then competes with newly arriving lockers
//!   (who usually win: they are already running). Throughput is high, but a waiter can lose
//!   again and again;
//! - **starvation**: a waiter that has waited longer than the starvation threshold (1 ms) sets
//!   `STARVING` when it next fails. From then on an unlock hands the mutex directly to the first
//!   waiter: newcomers neither take it nor spin, they queue at the back. The last waiter, or one
//!   that did not wait long, switches back to normal mode.
//!
//! Invariants:
//! - the mutex is held exactly when `LOCKED` is set, except during a handoff: from the moment
//!   an unlock in starvation mode clears `LOCKED` until the woken waiter sets it again, the
//!   mutex belongs to that waiter, and nobody else may take it (`STARVING` stops them);
//! - the waiter count is changed only by compare-exchange against a known value (lock
//!   registering a waiter, unlock claiming one to wake) or by the handoff's atomic add, so no
//!   registration is lost and each wake-up is claimed once;
//! - at most one awake waiter holds `WOKEN`; the unlocker who sets it also releases the queue.

use crate::shim::atomic::{AtomicU32, Ordering};

pub(crate) const LOCKED: u32 = 1;
pub(crate) const WOKEN: u32 = 2;
pub(crate) const STARVING: u32 = 4;
pub(crate) const WAITER: u32 = 8;

/// Handoffs in starvation mode so far: lets unit tests see that the mode was entered.
#[cfg(all(test, not(loom)))]
pub(crate) static HANDOFFS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What the protocol parks on: a semaphore of wake-ups, a clock and a spin policy.
pub(crate) trait WaitQueue {
    /// A point in time, for the starvation threshold.
    type Instant: Copy;

    /// Now.
    fn now(&self) -> Self::Instant;
    /// Whether a waiter that started waiting at `since` has waited too long.
    fn starving(&self, since: Self::Instant) -> bool;
    /// Whether a locker may spin once more (`iteration` counts from 0).
    fn can_spin(&self, iteration: u32) -> bool;
    /// Waits for one wake-up unit (in front of the queue with `lifo`).
    fn acquire(&self, lifo: bool);
    /// Posts one wake-up unit; with `handoff`, straight to the first waiter.
    fn release(&self, handoff: bool);
}

/// The uncontended lock: one compare-exchange.
#[inline]
pub(crate) fn try_lock_fast(state: &AtomicU32) -> bool {
    state
        .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// `try_lock`: takes the mutex if it is free and not being handed off.
#[cfg_attr(loom, allow(dead_code))] // the models use the blocking lock only
#[inline]
pub(crate) fn try_lock(state: &AtomicU32) -> bool {
    let mut old = state.load(Ordering::Relaxed);
    loop {
        if old & (LOCKED | STARVING) != 0 {
            return false;
        }
        match state.compare_exchange_weak(old, old | LOCKED, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => old = actual,
        }
    }
}

/// The contended lock: spin a little, then queue and park; see the module docs.
#[cold]
pub(crate) fn lock_slow<Q: WaitQueue>(state: &AtomicU32, queue: &Q) {
    let mut wait_start: Option<Q::Instant> = None;
    let mut starving = false;
    let mut awoke = false;
    let mut iteration = 0;
    let mut old = state.load(Ordering::Relaxed);
    loop {
        // Spin only in normal mode while the mutex is held: in starvation mode it goes to a
        // waiter anyway.
        if old & (LOCKED | STARVING) == LOCKED && queue.can_spin(iteration) {
            // Tell unlock not to wake anybody: this locker is awake already.
            if !awoke
                && old & WOKEN == 0
                && old >= WAITER
                && state
                    .compare_exchange(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                awoke = true;
            }
            for _ in 0..30 {
                std::hint::spin_loop();
            }
            iteration += 1;
            old = state.load(Ordering::Relaxed);
            continue;
        }
        let mut new = old;
        if old & STARVING == 0 {
            new |= LOCKED; // newcomers do not take a starving mutex
        }
        if old & (LOCKED | STARVING) != 0 {
            new += WAITER;
        }
        if starving && old & LOCKED != 0 {
            new |= STARVING;
        }
        if awoke {
            debug_assert!(new & WOKEN != 0, "gort: inconsistent mutex state");
            new &= !WOKEN;
        }
        match state.compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => {
                if old & (LOCKED | STARVING) == 0 {
                    return; // took it
                }
                let lifo = wait_start.is_some();
                let since = *wait_start.get_or_insert_with(|| queue.now());
                queue.acquire(lifo);
                starving = starving || queue.starving(since);
                old = state.load(Ordering::Relaxed);
                if old & STARVING != 0 {
                    // Handed off to us: the mutex is ours, and we are no longer a waiter.
                    debug_assert!(
                        old & (LOCKED | WOKEN) == 0 && old >= WAITER,
                        "gort: inconsistent mutex state"
                    );
                    #[cfg(not(all(loom, gort_loom_handoff_unlocked)))]
                    let mut delta = LOCKED.wrapping_sub(WAITER);
                    #[cfg(all(loom, gort_loom_handoff_unlocked))]
                    let mut delta = 0u32.wrapping_sub(WAITER);
                    if !starving || old >> 3 == 1 {
                        // Leave starvation mode: the last waiter, or a waiter that did not
                        // really starve, lets newcomers compete again.
                        delta = delta.wrapping_sub(STARVING);
                    }
                    state.fetch_add(delta, Ordering::Acquire);
                    #[cfg(all(test, not(loom)))]
                    HANDOFFS.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                awoke = true;
                iteration = 0;
            }
            Err(actual) => old = actual,
        }
    }
}

/// The unlock: one release decrement; `Some(new state)` when waiters may need a wake-up.
#[inline]
pub(crate) fn unlock_fast(state: &AtomicU32) -> Option<u32> {
    let new = state
        .fetch_sub(LOCKED, Ordering::Release)
        .wrapping_sub(LOCKED);
    (new != 0).then_some(new)
}

/// The unlock's slow path: wake a waiter (normal mode) or hand the mutex to one (starvation).
#[cold]
pub(crate) fn unlock_slow<Q: WaitQueue>(state: &AtomicU32, new: u32, queue: &Q) {
    assert!(
        new.wrapping_add(LOCKED) & LOCKED != 0,
        "gort: unlock of an unlocked mutex"
    );
    if new & STARVING != 0 {
        queue.release(true);
        return;
    }
    let mut old = new;
    loop {
        // Nobody to wake, or somebody else already has the mutex, is awake, or it is being
        // handed off: nothing to do.
        if old < WAITER || old & (LOCKED | WOKEN | STARVING) != 0 {
            return;
        }
        let new = (old - WAITER) | WOKEN;
        match state.compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                queue.release(false);
                return;
            }
            Err(actual) => old = actual,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! Two lockers against the protocol above, with the wait queue modelled as a loom mutex
    //! around a count and a list of parked loom threads. A critical section is a non-atomic
    //! increment (a loom cell, so overlapping sections are reported) guarded by an occupancy
    //! check. The "starvation" model makes every waiter starve at once, so the second failed
    //! attempt switches the mutex to handoff mode and the next unlock hands it over; the
    //! "normal" model never starves.
    //!
    //! Broken variant: `--cfg gort_loom_handoff_unlocked` hands the mutex over without setting
    //! `LOCKED`, so a newcomer's fast path takes it while the waiter it was handed to runs.

    use std::collections::VecDeque;

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    use super::*;
    use crate::shim::Mutex;

    struct ModelQueue {
        starve: bool,
        inner: Mutex<(u32, VecDeque<thread::Thread>)>,
    }

    impl WaitQueue for ModelQueue {
        type Instant = ();
        fn now(&self) {}
        fn starving(&self, (): ()) -> bool {
            self.starve
        }
        fn can_spin(&self, _: u32) -> bool {
            false
        }
        fn acquire(&self, _lifo: bool) {
            loop {
                {
                    let mut inner = self.inner.lock();
                    if inner.0 > 0 {
                        inner.0 -= 1;
                        return;
                    }
                    inner.1.push_back(thread::current());
                }
                thread::park();
            }
        }
        fn release(&self, _handoff: bool) {
            let mut inner = self.inner.lock();
            inner.0 += 1;
            if let Some(waiter) = inner.1.pop_front() {
                waiter.unpark();
            }
        }
    }

    struct Shared {
        state: AtomicU32,
        queue: ModelQueue,
        inside: AtomicUsize,
        counter: UnsafeCell<u32>,
    }

    fn lock(shared: &Shared) {
        if !try_lock_fast(&shared.state) {
            lock_slow(&shared.state, &shared.queue);
        }
        assert_eq!(
            shared.inside.fetch_add(1, Ordering::Relaxed),
            0,
            "two lockers inside the mutex"
        );
        // SAFETY: the mutex gives this thread the counter (the assertion above checks it).
        shared.counter.with_mut(|counter| unsafe { *counter += 1 });
        shared.inside.fetch_sub(1, Ordering::Relaxed);
        if let Some(new) = unlock_fast(&shared.state) {
            unlock_slow(&shared.state, new, &shared.queue);
        }
    }

    fn two_lockers(starve: bool, rounds: [usize; 2]) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let shared = Arc::new(Shared {
                state: AtomicU32::new(0),
                queue: ModelQueue {
                    starve,
                    inner: Mutex::new((0, VecDeque::new())),
                },
                inside: AtomicUsize::new(0),
                counter: UnsafeCell::new(0),
            });
            let other = {
                let shared = shared.clone();
                thread::spawn(move || (0..rounds[1]).for_each(|_| lock(&shared)))
            };
            (0..rounds[0]).for_each(|_| lock(&shared));
            other.join().unwrap();
            // SAFETY: both lockers are done.
            let total = shared.counter.with(|counter| unsafe { *counter });
            assert_eq!(total as usize, rounds[0] + rounds[1]);
            assert_eq!(shared.state.load(Ordering::Relaxed), 0, "state left behind");
        });
    }

    #[cfg(not(gort_loom_handoff_unlocked))]
    #[test]
    fn loom_mutex_excludes_and_wakes_in_normal_mode() {
        two_lockers(false, [2, 2]);
    }

    #[cfg(not(gort_loom_handoff_unlocked))]
    #[test]
    fn loom_mutex_excludes_and_hands_off_in_starvation_mode() {
        two_lockers(true, [3, 1]);
    }

    #[cfg(gort_loom_handoff_unlocked)]
    #[test]
    fn loom_catches_a_handoff_that_leaves_the_mutex_unlocked() {
        let caught = std::panic::catch_unwind(|| two_lockers(true, [3, 1]));
        let payload = caught.expect_err("the model must find the broken handoff");
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        assert!(
            [
                "two lockers inside",
                "state left behind",
                "unlock of an unlocked",
                "Causality"
            ]
            .iter()
            .any(|reason| message.contains(reason)),
            "caught for another reason: {message}"
        );
    }
}
