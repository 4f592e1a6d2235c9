//! [`Once`] and [`OnceLock`]: one-time initialisation that parks goroutines while another
//! initialises (Go's `sync.Once`).
//!
//! A `Once` is a `done` flag and a [`RawMutex`]: the fast path is one acquire load; callers
//! that find it not done lock the mutex (parking on it) and the first of them runs the closure.
//!
//! Invariants:
//! - `done` is set, with a release store, only after the closure returned, and only by the
//!   caller that ran it under the mutex; a caller that sees it set (acquire) sees everything the
//!   closure did;
//! - the closure runs at most once to completion; if it panics, `done` stays clear, the mutex
//!   is unlocked by the unwind, and the next caller runs its own closure;
//! - a [`OnceLock`]'s value is written once, inside its `Once`'s closure, and read only after
//!   `done` was seen set; it is dropped once, with the lock.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;

use lock_api::RawMutex as _;

use crate::sched::WaitReason;
use crate::shim::atomic::{AtomicBool, Ordering};
use crate::sync::mutex::RawMutex;

/// Runs a closure once, however many goroutines (or threads) race to run it; the others park
/// until it has finished.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use gort::sync::Once;
///
/// static INIT: Once = Once::new();
/// let runs = Arc::new(AtomicUsize::new(0));
/// let racers: Vec<_> = (0..8)
///     .map(|_| {
///         let runs = Arc::clone(&runs);
///         gort::spawn(move || INIT.call_once(|| { runs.fetch_add(1, Ordering::Relaxed); }))
///     })
///     .collect();
/// racers.into_iter().for_each(|r| r.join().unwrap());
/// assert_eq!(runs.load(Ordering::Relaxed), 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    done: AtomicBool,
    mutex: RawMutex,
}

impl Once {
    /// A `Once` that has not run.
    ///
    /// # Examples
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// assert!(!once.is_completed());
    /// ```
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            mutex: RawMutex::INIT,
        }
    }

    /// Runs `f` if no call has completed yet; otherwise waits for the call in progress (parking)
    /// or returns at once. When it returns, a closure has completed.
    ///
    /// If `f` panics, the panic propagates and the `Once` stays incomplete: the next call runs
    /// its own closure.
    ///
    /// # Examples
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// let mut runs = 0;
    /// once.call_once(|| runs += 1);
    /// once.call_once(|| runs += 1);
    /// assert_eq!(runs, 1);
    /// ```
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.done.load(Ordering::Acquire) {
            return;
        }
        self.call_once_slow(f);
    }

    #[cold]
    fn call_once_slow<F: FnOnce()>(&self, f: F) {
        self.mutex.lock_as(WaitReason::OnceWait);
        struct Unlock<'a>(&'a RawMutex);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                // SAFETY: locked just above by this call, and unlocked only here.
                unsafe { self.0.unlock() };
            }
        }
        let _unlock = Unlock(&self.mutex);
        if !self.done.load(Ordering::Relaxed) {
            f();
            self.done.store(true, Ordering::Release);
        }
    }

    /// Whether a closure has completed.
    ///
    /// # Examples
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// once.call_once(|| {});
    /// assert!(once.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish_non_exhaustive()
    }
}

/// A cell written once, by the first of racing initialisers; the others park until the value
/// is there (like `std::sync::OnceLock`, parking goroutines instead of threads).
///
/// # Examples
///
/// ```
/// use gort::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// let lengths: Vec<_> = (0..4)
///     .map(|_| gort::spawn(|| CONFIG.get_or_init(|| "loaded once".to_owned()).len()))
///     .collect();
/// assert!(lengths.into_iter().all(|l| l.join().unwrap() == 11));
/// assert_eq!(CONFIG.get().map(String::as_str), Some("loaded once"));
/// ```
pub struct OnceLock<T> {
    once: Once,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: shared access hands out `&T` (needs `T: Sync`) and lets any thread store a `T` that
// another thread later drops or takes (needs `T: Send`); the `Once` orders the write before
// every read (module invariants).
unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}
// SAFETY: sending the lock sends the `T` it may hold.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell: gort::sync::OnceLock<u8> = gort::sync::OnceLock::new();
    /// assert!(cell.get().is_none());
    /// ```
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            once: Once::new(),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if it is initialised (never waits).
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gort::sync::OnceLock::new();
    /// cell.set(3).unwrap();
    /// assert_eq!(cell.get(), Some(&3));
    /// ```
    pub fn get(&self) -> Option<&T> {
        if self.once.is_completed() {
            // SAFETY: completed, so the value was written and is never written again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, initialising it with `f` if nobody has; racing callers park until the one
    /// that runs its `f` finishes, and their own `f` does not run.
    ///
    /// If `f` panics, the panic propagates and the cell stays empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gort::sync::OnceLock::new();
    /// assert_eq!(*cell.get_or_init(|| 1), 1);
    /// assert_eq!(*cell.get_or_init(|| 2), 1);
    /// ```
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        self.once.call_once(|| {
            let value = f();
            // SAFETY: the `Once`'s closure is the only writer; nobody reads before `done` is set.
            unsafe { (*self.value.get()).write(value) };
        });
        self.get().expect("call_once returns completed")
    }

    /// Stores `value` if the cell is empty; otherwise gives it back.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gort::sync::OnceLock::new();
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("the initialiser runs once"));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value, if any, consuming the cell.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = gort::sync::OnceLock::new();
    /// cell.set(String::from("x")).unwrap();
    /// assert_eq!(cell.into_inner().as_deref(), Some("x"));
    /// ```
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }

    /// Takes the value out, leaving the cell empty (exclusive access makes this race-free).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cell = gort::sync::OnceLock::new();
    /// cell.set(5).unwrap();
    /// assert_eq!(cell.take(), Some(5));
    /// assert!(cell.get().is_none());
    /// ```
    pub fn take(&mut self) -> Option<T> {
        if !self.once.is_completed() {
            return None;
        }
        self.once = Once::new();
        // The `Once` was just reset, so the value will not be read or dropped again.
        // SAFETY: it was completed, so the value is initialised.
        Some(unsafe { self.value.get_mut().assume_init_read() })
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        cell
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(value) => f.debug_tuple("OnceLock").field(value).finish(),
            None => f.write_str("OnceLock(<uninit>)"),
        }
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if self.once.is_completed() {
            // SAFETY: completed, so the value is initialised, and this is its last use.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}
