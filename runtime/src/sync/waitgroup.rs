//! [`WaitGroup`]: waits for a collection of goroutines to finish (Go's `sync.WaitGroup`).
//!
//! One 64-bit state word holds the counter (high half) and the number of waiters (low half),
//! and waiters park on a semaphore.
//!
//! Invariants:
//! - a waiter registers with a compare-exchange against a state whose counter is non-zero, so
//!   it cannot register after the counter reached zero;
//! - the `add` that takes the counter to zero finds every registered waiter in the same word,
//!   resets the word to zero, and releases exactly that many semaphore units;
//! - the counter never goes negative (that panics), and `add` with a positive delta while
//!   waiters are parked on a zero counter is a misuse that panics.

use std::fmt;

use crate::sched::WaitReason;
use crate::shim::atomic::{AtomicU64, Ordering};
use crate::sync::sema::Sema;

/// Waits until a counter of outstanding tasks drops to zero (Go's `sync.WaitGroup`).
///
/// [`add`](WaitGroup::add) before starting work, [`done`](WaitGroup::done) when a task is
/// finished, [`wait`](WaitGroup::wait) to park until the counter is zero. Share it through an
/// `Arc` (or a `'static`). Works from goroutines and plain threads alike.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::WaitGroup;
///
/// let wg = Arc::new(WaitGroup::new());
/// for _ in 0..10 {
///     wg.add(1);
///     let wg = Arc::clone(&wg);
///     gort::spawn(move || wg.done());
/// }
/// wg.wait();
/// assert_eq!(wg.count(), 0);
/// ```
pub struct WaitGroup {
    state: AtomicU64,
    sema: Sema,
}

impl WaitGroup {
    /// A wait group with a zero counter.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.wait(); // zero already: returns at once
    /// ```
    pub const fn new() -> WaitGroup {
        WaitGroup {
            state: AtomicU64::new(0),
            sema: Sema::new(0),
        }
    }

    /// Adds `delta` (which may be negative) to the counter; at zero, wakes every waiter.
    ///
    /// # Panics
    ///
    /// If the counter would go negative, or if it is raised from zero while waiters are still
    /// being woken (an `add` racing `wait`, as Go forbids).
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.add(3);
    /// wg.add(-2);
    /// assert_eq!(wg.count(), 1);
    /// wg.done();
    /// wg.wait();
    /// ```
    pub fn add(&self, delta: i32) {
        let shifted = (i64::from(delta) << 32) as u64;
        let state = self
            .state
            .fetch_add(shifted, Ordering::SeqCst)
            .wrapping_add(shifted);
        let counter = (state >> 32) as i32;
        let waiters = state as u32;
        assert!(counter >= 0, "gort: negative WaitGroup counter");
        assert!(
            !(waiters != 0 && delta > 0 && counter == delta),
            "gort: WaitGroup misuse: add called concurrently with wait"
        );
        if counter > 0 || waiters == 0 {
            return;
        }
        // The counter is zero with waiters registered: nobody else can change the word now but
        // a misuse, which the check below reports.
        assert_eq!(
            self.state.swap(0, Ordering::SeqCst),
            state,
            "gort: WaitGroup misuse: add called concurrently with wait"
        );
        self.sema.release_n(waiters, false);
    }

    /// Subtracts one from the counter: a task is finished.
    ///
    /// # Panics
    ///
    /// If the counter was already zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn done(&self) {
        self.add(-1);
    }

    /// Parks the calling goroutine (or thread) until the counter is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let wg = Arc::new(gort::sync::WaitGroup::new());
    /// let finished = Arc::new(AtomicUsize::new(0));
    /// wg.add(4);
    /// for _ in 0..4 {
    ///     let (wg, finished) = (Arc::clone(&wg), Arc::clone(&finished));
    ///     std::thread::spawn(move || {
    ///         finished.fetch_add(1, Ordering::Relaxed);
    ///         wg.done();
    ///     });
    /// }
    /// wg.wait();
    /// assert_eq!(finished.load(Ordering::Relaxed), 4);
    /// ```
    pub fn wait(&self) {
        let mut state = self.state.load(Ordering::SeqCst);
        loop {
            if state >> 32 == 0 {
                return;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    self.sema.acquire(false, WaitReason::WaitGroupWait);
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// The counter now (a snapshot, for diagnostics).
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// # wg.add(-2);
    /// ```
    pub fn count(&self) -> u32 {
        (self.state.load(Ordering::SeqCst) >> 32) as u32
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}
