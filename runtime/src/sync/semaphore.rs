//! [`Semaphore`]: a counting semaphore whose waiters park goroutines.
//!
//! It is a semaphore word of the wait-queue table (`sema`): the count is the number of free
//! permits.
//!
//! Invariants:
//! - a permit is taken by one decrement of a positive count and returned by one increment; a
//!   [`SemaphorePermit`] returns its permit exactly once, on drop (unless forgotten);
//! - a release wakes the longest waiter, which then takes a permit (or queues again if another
//!   acquirer took it first).

use std::fmt;

use crate::sched::WaitReason;
use crate::sync::sema::Sema;

/// A counting semaphore: at most `permits` holders at once.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::Semaphore;
///
/// let pool = Arc::new(Semaphore::new(2));
/// let workers: Vec<_> = (0..6)
///     .map(|i| {
///         let pool = Arc::clone(&pool);
///         gort::spawn(move || {
///             let _permit = pool.acquire(); // at most two run this at once
///             i * 2
///         })
///     })
///     .collect();
/// let sum: i32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
/// assert_eq!(sum, 30);
/// assert_eq!(pool.available_permits(), 2);
/// ```
pub struct Semaphore {
    sema: Sema,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = gort::sync::Semaphore::new(3);
    /// assert_eq!(semaphore.available_permits(), 3);
    /// ```
    pub const fn new(permits: u32) -> Semaphore {
        Semaphore {
            sema: Sema::new(permits),
        }
    }

    /// Takes a permit, parking the calling goroutine (or thread) until one is free.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = gort::sync::Semaphore::new(1);
    /// let permit = semaphore.acquire();
    /// assert!(semaphore.try_acquire().is_none());
    /// drop(permit);
    /// assert!(semaphore.try_acquire().is_some());
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.sema.acquire(false, WaitReason::Semacquire);
        SemaphorePermit { semaphore: self }
    }

    /// Takes a permit if one is free now.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = gort::sync::Semaphore::new(0);
    /// assert!(semaphore.try_acquire().is_none());
    /// semaphore.add_permits(1);
    /// assert!(semaphore.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.sema
            .try_acquire()
            .then_some(SemaphorePermit { semaphore: self })
    }

    /// Adds `n` permits (waking up to `n` waiters): also how a permit given up with
    /// [`SemaphorePermit::forget`] is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = gort::sync::Semaphore::new(0);
    /// semaphore.add_permits(2);
    /// assert_eq!(semaphore.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: u32) {
        self.sema.release_n(n, false);
    }

    /// The permits free now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = gort::sync::Semaphore::new(2);
    /// let _permit = semaphore.acquire();
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> u32 {
        self.sema.available()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish()
    }
}

/// A permit of a [`Semaphore`], returned when dropped.
///
/// # Examples
///
/// ```
/// let semaphore = gort::sync::Semaphore::new(1);
/// {
///     let _permit: gort::sync::SemaphorePermit<'_> = semaphore.acquire();
///     assert_eq!(semaphore.available_permits(), 0);
/// }
/// assert_eq!(semaphore.available_permits(), 1);
/// ```
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken: the semaphore has one permit fewer until
    /// [`Semaphore::add_permits`].
    ///
    /// # Examples
    ///
    /// ```
    /// let semaphore = gort::sync::Semaphore::new(1);
    /// semaphore.acquire().forget();
    /// assert_eq!(semaphore.available_permits(), 0);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.sema.release(false);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
