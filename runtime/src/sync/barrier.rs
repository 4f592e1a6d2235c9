//! [`Barrier`]: lets a fixed number of goroutines wait for each other.
//!
//! A count and a generation number under a [`Mutex`](super::Mutex), and a
//! [`Condvar`](super::Condvar).
//!
//! Invariants:
//! - each generation admits exactly `n` arrivals; the `n`-th is the leader: it resets the count,
//!   advances the generation and notifies everyone, under the mutex;
//! - a waiter waits until the generation differs from the one it arrived in, so a late wake-up
//!   never confuses it with a later generation and no wake-up is lost.

use std::fmt;

use crate::sched::WaitReason;
use crate::sync::condvar::Condvar;
use crate::sync::mutex::Mutex;

/// Makes `n` goroutines (or threads) wait until all of them have arrived, then releases them
/// together; reusable.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::Barrier;
///
/// let barrier = Arc::new(Barrier::new(5));
/// let party: Vec<_> = (0..5)
///     .map(|_| {
///         let barrier = Arc::clone(&barrier);
///         gort::spawn(move || barrier.wait().is_leader())
///     })
///     .collect();
/// let leaders = party.into_iter().filter_map(|p| p.join().unwrap().then_some(())).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    n: usize,
    state: Mutex<BarrierState>,
    arrived: Condvar,
}

struct BarrierState {
    count: usize,
    generation: u64,
}

impl Barrier {
    /// A barrier for `n` parties (`0` and `1` never wait).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = gort::sync::Barrier::new(1);
    /// assert!(barrier.wait().is_leader());
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            state: Mutex::new(BarrierState {
                count: 0,
                generation: 0,
            }),
            arrived: Condvar::new(),
        }
    }

    /// Parks until `n` parties have called `wait` in this round; exactly one of them (the last
    /// to arrive) is the leader.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let barrier = Arc::new(gort::sync::Barrier::new(2));
    /// let other = std::thread::spawn({
    ///     let barrier = Arc::clone(&barrier);
    ///     move || barrier.wait().is_leader()
    /// });
    /// let me = barrier.wait().is_leader();
    /// assert!(me ^ other.join().unwrap());
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        let mut state = self.state.lock();
        state.count += 1;
        if state.count < self.n {
            let generation = state.generation;
            while state.generation == generation {
                self.arrived.wait_as(&mut state, WaitReason::BarrierWait);
            }
            BarrierWaitResult(false)
        } else {
            state.count = 0;
            state.generation = state.generation.wrapping_add(1);
            self.arrived.notify_all();
            BarrierWaitResult(true)
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// What [`Barrier::wait`] returns: whether this party was the leader.
///
/// # Examples
///
/// ```
/// let result: gort::sync::BarrierWaitResult = gort::sync::Barrier::new(0).wait();
/// assert!(result.is_leader());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this party was the last to arrive (exactly one per round is).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::sync::Barrier::new(1).wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}
