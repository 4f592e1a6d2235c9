//! [`Condvar`]: a condition variable for [`Mutex`](super::Mutex) that parks goroutines.
//!
//! Waiters queue FIFO in the condvar's own list (a `parking_lot` mutex around intrusive nodes
//! on their stacks) and park until a notification releases their node.
//!
//! Invariants:
//! - a waiter links its node while it still holds the user's mutex, and unlocks the mutex only
//!   after that; so a notifier that changed the condition under the mutex finds the node, and
//!   no wake-up is lost between the unlock and the park;
//! - each notification releases (unlinks, then marks woken) a node once, in FIFO order, under
//!   the list lock; a woken waiter locks the mutex again before it returns;
//! - a waiter whose deadline passed settles under the list lock: a node not released yet is
//!   still linked, and its owner unlinks it and times out; a released one was notified. So a
//!   timed-out waiter never swallows a notification meant for another;
//! - `wait` may return without the condition being true (another waiter may have got there
//!   first), so callers re-check it, or use [`Condvar::wait_while`].

use std::fmt;
use std::time::{Duration, Instant};

use crate::sched::WaitReason;
use crate::sync::mutex::MutexGuard;
use crate::sync::waitlist::{List, Node};

/// A condition variable: goroutines wait on it for a condition guarded by a
/// [`Mutex`](super::Mutex), and are woken by [`notify_one`](Condvar::notify_one) or
/// [`notify_all`](Condvar::notify_all) (Go's `sync.Cond`). On a plain thread, waiting blocks the
/// thread.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let waiter = gort::spawn({
///     let pair = Arc::clone(&pair);
///     move || {
///         let (ready, condvar) = &*pair;
///         let mut ready = ready.lock();
///         while !*ready {
///             condvar.wait(&mut ready);
///         }
///     }
/// });
/// *pair.0.lock() = true;
/// pair.1.notify_one();
/// waiter.join().unwrap();
/// ```
pub struct Condvar {
    waiters: parking_lot::Mutex<List>,
}

impl Condvar {
    /// A condition variable with no waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// static READY: gort::sync::Condvar = gort::sync::Condvar::new();
    /// READY.notify_all(); // nobody waits: does nothing
    /// ```
    pub const fn new() -> Condvar {
        Condvar {
            waiters: parking_lot::const_mutex(List::new()),
        }
    }

    /// Unlocks the guard's mutex, parks until notified, and locks it again.
    ///
    /// It may return while the condition is still false: check it in a loop, or use
    /// [`wait_while`](Condvar::wait_while).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let state = Arc::new((Mutex::new(0), Condvar::new()));
    /// let producer = gort::spawn({
    ///     let state = Arc::clone(&state);
    ///     move || {
    ///         *state.0.lock() = 42;
    ///         state.1.notify_all();
    ///     }
    /// });
    /// let mut value = state.0.lock();
    /// while *value == 0 {
    ///     state.1.wait(&mut value);
    /// }
    /// assert_eq!(*value, 42);
    /// drop(value);
    /// producer.join().unwrap();
    /// ```
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        self.wait_as(guard, WaitReason::CondvarWait);
    }

    pub(crate) fn wait_as<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>, reason: WaitReason) {
        self.park(guard, reason, None);
    }

    /// Queues the caller, unlocks the guard's mutex, parks until notified or `deadline`, and
    /// locks the mutex again; `true` if it timed out.
    fn park<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        reason: WaitReason,
        deadline: Option<Instant>,
    ) -> bool {
        let mut node = Node::new(0);
        let node: *mut Node = &mut node;
        // SAFETY: the node lives in this frame until it is released or removed below.
        unsafe { self.waiters.lock().push(node, false) };
        MutexGuard::unlocked(guard, || {
            let Some(deadline) = deadline else {
                // SAFETY: the node is ours and linked; a notification will release it.
                unsafe { Node::wait(node, reason) };
                return false;
            };
            // SAFETY: the node is ours and linked until released or removed.
            if unsafe { Node::wait_until(node, reason, deadline) } {
                return false;
            }
            let mut waiters = self.waiters.lock();
            // Releases happen under this lock, so an unreleased node is still linked here.
            // SAFETY: the node is alive, and if unreleased it is ours to remove.
            unsafe {
                if Node::is_released(node) {
                    return false;
                }
                waiters.remove(node);
            }
            true
        })
    }

    /// Waits while `condition` holds, and returns the guard with it false.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let queue = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    /// let consumer = gort::spawn({
    ///     let queue = Arc::clone(&queue);
    ///     move || {
    ///         let mut items = queue.0.lock();
    ///         queue.1.wait_while(&mut items, |items| items.len() < 3);
    ///         items.iter().sum::<i32>()
    ///     }
    /// });
    /// for item in 1..=3 {
    ///     queue.0.lock().push(item);
    ///     queue.1.notify_one();
    /// }
    /// assert_eq!(consumer.join().unwrap(), 6);
    /// ```
    pub fn wait_while<T: ?Sized, F>(&self, guard: &mut MutexGuard<'_, T>, mut condition: F)
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            self.wait(guard);
        }
    }

    /// Like [`wait`](Condvar::wait), but gives up once `timeout` has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let (mutex, condvar) = (Mutex::new(()), Condvar::new());
    /// let mut guard = mutex.lock();
    /// // Nobody notifies: the wait times out, and the mutex is locked again.
    /// assert!(condvar.wait_for(&mut guard, Duration::from_millis(2)).timed_out());
    /// ```
    pub fn wait_for<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_until(guard, deadline),
            None => {
                self.wait(guard);
                WaitTimeoutResult(false)
            }
        }
    }

    /// Like [`wait`](Condvar::wait), but gives up once `deadline` has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let state = Arc::new((Mutex::new(false), Condvar::new()));
    /// let notifier = gort::spawn({
    ///     let state = Arc::clone(&state);
    ///     move || {
    ///         *state.0.lock() = true;
    ///         state.1.notify_one();
    ///     }
    /// });
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// let mut ready = state.0.lock();
    /// while !*ready {
    ///     assert!(!state.1.wait_until(&mut ready, deadline).timed_out());
    /// }
    /// drop(ready);
    /// notifier.join().unwrap();
    /// ```
    pub fn wait_until<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        WaitTimeoutResult(self.park(guard, WaitReason::CondvarWait, Some(deadline)))
    }

    /// Waits while `condition` holds, giving up once `timeout` has passed; the guard comes back
    /// locked either way, and the result tells whether the wait timed out with the condition
    /// still true.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let (count, condvar) = (Mutex::new(0), Condvar::new());
    /// let mut count = count.lock();
    /// let result = condvar.wait_while_for(&mut count, |count| *count < 3, Duration::from_millis(2));
    /// assert!(result.timed_out());
    /// assert_eq!(*count, 0);
    /// ```
    pub fn wait_while_for<T: ?Sized, F>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        condition: F,
        timeout: Duration,
    ) -> WaitTimeoutResult
    where
        F: FnMut(&mut T) -> bool,
    {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_while_until(guard, condition, deadline),
            None => {
                self.wait_while(guard, condition);
                WaitTimeoutResult(false)
            }
        }
    }

    /// Waits while `condition` holds, giving up once `deadline` has passed (see
    /// [`wait_while_for`](Condvar::wait_while_for)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let queue = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    /// let producer = gort::spawn({
    ///     let queue = Arc::clone(&queue);
    ///     move || {
    ///         queue.0.lock().push(1);
    ///         queue.1.notify_all();
    ///     }
    /// });
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// let mut items = queue.0.lock();
    /// let result = queue.1.wait_while_until(&mut items, |items| items.is_empty(), deadline);
    /// assert!(!result.timed_out());
    /// assert_eq!(*items, [1]);
    /// drop(items);
    /// producer.join().unwrap();
    /// ```
    pub fn wait_while_until<T: ?Sized, F>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        mut condition: F,
        deadline: Instant,
    ) -> WaitTimeoutResult
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            if self.wait_until(guard, deadline).timed_out() {
                return WaitTimeoutResult(condition(&mut *guard));
            }
        }
        WaitTimeoutResult(false)
    }

    /// Wakes the longest-waiting waiter, if any; returns whether it woke one.
    ///
    /// # Examples
    ///
    /// ```
    /// let condvar = gort::sync::Condvar::new();
    /// assert!(!condvar.notify_one());
    /// ```
    pub fn notify_one(&self) -> bool {
        let waiter = {
            let mut waiters = self.waiters.lock();
            let node = waiters.pop_front();
            if node.is_null() {
                return false;
            }
            // SAFETY: unlinked just now, under the list lock.
            unsafe { Node::release(node, false) }
        };
        waiter.wake();
        true
    }

    /// Wakes every waiter; returns how many it woke.
    ///
    /// # Examples
    ///
    /// ```
    /// let condvar = gort::sync::Condvar::new();
    /// assert_eq!(condvar.notify_all(), 0);
    /// ```
    pub fn notify_all(&self) -> usize {
        let mut waiters = self.waiters.lock();
        let mut woken = 0;
        loop {
            let node = waiters.pop_front();
            if node.is_null() {
                return woken;
            }
            // SAFETY: unlinked just now, under the list lock.
            unsafe { Node::release(node, false) }.wake();
            woken += 1;
        }
    }
}

/// Whether a timed [`Condvar`] wait gave up because its time ran out.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use gort::sync::{Condvar, Mutex, WaitTimeoutResult};
///
/// let (mutex, condvar) = (Mutex::new(()), Condvar::new());
/// let result: WaitTimeoutResult = condvar.wait_for(&mut mutex.lock(), Duration::ZERO);
/// assert!(result.timed_out());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait timed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (mutex, condvar) = (gort::sync::Mutex::new(()), gort::sync::Condvar::new());
    /// assert!(condvar.wait_for(&mut mutex.lock(), Duration::ZERO).timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
