//! [`RwLock`]: a goroutine-aware reader-writer lock with Go's `sync.RWMutex` algorithm.
//!
//! [`RawRwLock`] is a writer mutex, a count of readers, a count of readers a pending writer
//! still waits for, and two semaphores (readers wait on one, the writer on the other).
//!
//! Invariants:
//! - `readers` is the number of readers holding or waiting for the lock, minus
//!   [`MAX_READERS`] while a writer holds or is acquiring it: a reader that finds it negative
//!   waits; one that finds it non-negative holds the lock, with one atomic add;
//! - a writer first takes the writer mutex (writers queue there, one at a time), then subtracts
//!   `MAX_READERS`, which turns every later reader away, and waits for exactly the readers that
//!   were inside then: their number goes into `departing`, and the reader that takes `departing`
//!   to zero wakes the writer. So a writer waits for the readers ahead of it only, and readers
//!   arriving after a writer wait behind it: neither side starves;
//! - a writer's unlock adds `MAX_READERS` back and admits exactly the readers that queued
//!   behind it before it lets the next writer in.

use crate::sched::WaitReason;
use crate::shim::atomic::{AtomicI32, Ordering};
use crate::sync::mutex::RawMutex;
use crate::sync::sema::Sema;

/// More readers than can ever hold the lock at once.
const MAX_READERS: i32 = 1 << 30;

/// The raw lock under [`RwLock`]. Guards are `Send` for the same reason as [`RawMutex`]'s: the
/// lock records no owner thread, and a goroutine may resume on another thread.
///
/// # Examples
///
/// ```
/// use gort::sync::RawRwLock;
/// use lock_api::RawRwLock as _;
///
/// let raw = RawRwLock::INIT;
/// raw.lock_shared();
/// assert!(raw.try_lock_shared());
/// assert!(!raw.try_lock_exclusive());
/// // SAFETY: this thread holds both shared locks.
/// unsafe { raw.unlock_shared(); raw.unlock_shared() };
/// assert!(raw.try_lock_exclusive());
/// // SAFETY: this thread holds the exclusive lock.
/// unsafe { raw.unlock_exclusive() };
/// ```
#[derive(Debug)]
pub struct RawRwLock {
    writer: RawMutex,
    readers: AtomicI32,
    departing: AtomicI32,
    reader_sema: Sema,
    writer_sema: Sema,
}

impl RawRwLock {
    #[cold]
    fn unlock_shared_slow(&self, readers: i32) {
        assert!(
            readers + 1 != 0 && readers + 1 != -MAX_READERS,
            "gort: read unlock of an unlocked RwLock"
        );
        // A writer is waiting: the last reader it waits for wakes it.
        if self.departing.fetch_sub(1, Ordering::SeqCst) - 1 == 0 {
            self.writer_sema.release(false);
        }
    }
}

// SAFETY: readers hold the lock only while `readers` is non-negative for them, a writer only
// after the writer mutex and after every reader counted before its subtraction left (module
// invariants); all transitions are sequentially consistent read-modify-writes or semaphore
// hand-overs, which order the critical sections.
unsafe impl lock_api::RawRwLock for RawRwLock {
    const INIT: RawRwLock = RawRwLock {
        writer: <RawMutex as lock_api::RawMutex>::INIT,
        readers: AtomicI32::new(0),
        departing: AtomicI32::new(0),
        reader_sema: Sema::new(0),
        writer_sema: Sema::new(0),
    };

    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock_shared(&self) {
        if self.readers.fetch_add(1, Ordering::SeqCst) + 1 < 0 {
            // A writer holds it or is acquiring it: wait until it admits us.
            self.reader_sema.acquire(false, WaitReason::RwLockRead);
        }
    }

    #[inline]
    fn try_lock_shared(&self) -> bool {
        let mut readers = self.readers.load(Ordering::Relaxed);
        loop {
            if readers < 0 {
                return false;
            }
            match self.readers.compare_exchange_weak(
                readers,
                readers + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => readers = actual,
            }
        }
    }

    #[inline]
    unsafe fn unlock_shared(&self) {
        let readers = self.readers.fetch_sub(1, Ordering::SeqCst) - 1;
        if readers < 0 {
            self.unlock_shared_slow(readers);
        }
    }

    fn lock_exclusive(&self) {
        self.writer.lock_as(WaitReason::RwLockWrite);
        let inside = self.readers.fetch_sub(MAX_READERS, Ordering::SeqCst);
        if inside != 0 && self.departing.fetch_add(inside, Ordering::SeqCst) + inside != 0 {
            self.writer_sema.acquire(false, WaitReason::RwLockWrite);
        }
    }

    fn try_lock_exclusive(&self) -> bool {
        if !lock_api::RawMutex::try_lock(&self.writer) {
            return false;
        }
        if self
            .readers
            .compare_exchange(0, -MAX_READERS, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: taken just above.
            unsafe { lock_api::RawMutex::unlock(&self.writer) };
            return false;
        }
        true
    }

    unsafe fn unlock_exclusive(&self) {
        let waiting = self.readers.fetch_add(MAX_READERS, Ordering::SeqCst) + MAX_READERS;
        assert!(
            waiting < MAX_READERS,
            "gort: write unlock of an unlocked RwLock"
        );
        // Admit the readers that queued behind this writer.
        self.reader_sema.release_n(waiting as u32, false);
        // SAFETY: a writer holds the writer mutex from `lock_exclusive` to here.
        unsafe { lock_api::RawMutex::unlock(&self.writer) };
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.readers.load(Ordering::Relaxed) != 0
    }

    #[inline]
    fn is_locked_exclusive(&self) -> bool {
        self.readers.load(Ordering::Relaxed) < 0
    }
}

/// A reader-writer lock that parks goroutines, not OS threads (Go's `sync.RWMutex`).
///
/// Any number of readers hold it together; a writer holds it alone. A waiting writer keeps new
/// readers out, and readers that queued behind a writer go before the next writer, so neither
/// side starves. A reader must not lock it again for reading while it holds it: a writer that
/// queued in between would deadlock the two. No poisoning.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::RwLock;
///
/// let config = Arc::new(RwLock::new(String::from("v1")));
/// let readers: Vec<_> = (0..4)
///     .map(|_| {
///         let config = Arc::clone(&config);
///         gort::spawn(move || config.read().len())
///     })
///     .collect();
/// config.write().push_str("-patched");
/// for reader in readers {
///     let len = reader.join().unwrap();
///     assert!(len == 2 || len == 10);
/// }
/// assert_eq!(*config.read(), "v1-patched");
/// ```
pub type RwLock<T> = lock_api::RwLock<RawRwLock, T>;

/// The guard of a read-locked [`RwLock`].
///
/// # Examples
///
/// ```
/// let lock = gort::sync::RwLock::new(5);
/// let a: gort::sync::RwLockReadGuard<'_, i32> = lock.read();
/// let b = lock.read();
/// assert_eq!(*a + *b, 10);
/// ```
pub type RwLockReadGuard<'a, T> = lock_api::RwLockReadGuard<'a, RawRwLock, T>;

/// The guard of a write-locked [`RwLock`].
///
/// # Examples
///
/// ```
/// let lock = gort::sync::RwLock::new(5);
/// let mut w: gort::sync::RwLockWriteGuard<'_, i32> = lock.write();
/// *w += 1;
/// assert!(lock.try_read().is_none());
/// drop(w);
/// assert_eq!(*lock.read(), 6);
/// ```
pub type RwLockWriteGuard<'a, T> = lock_api::RwLockWriteGuard<'a, RawRwLock, T>;
