//! Goroutine-aware synchronisation: [`Mutex`], [`RwLock`], [`Condvar`], [`WaitGroup`],
//! [`Semaphore`], [`Once`], [`OnceLock`] and [`Barrier`].
//!
//! Everything here parks the waiting goroutine, never its OS thread, so a blocked goroutine
//! costs its processor nothing; called from a plain OS thread, the same types block the thread.
//! The locks are [`lock_api`] types over gort's raw locks ([`RawMutex`], [`RawRwLock`]), with
//! Go's algorithms: spinning briefly, then parking; a starvation mode in which the mutex is
//! handed to the longest waiter; writers that keep new readers out.
//!
//! Invariants shared by all the types:
//! - waiters park in FIFO queues of nodes on their own stacks (goroutine stacks never move), so
//!   waiting allocates nothing; the queues of the semaphore-based types live in a fixed table
//!   of buckets keyed by address (Go's `sema.go`), the condition variable has its own;
//! - the uncontended paths are atomics on the object itself, with no lock and no allocation;
//! - a node is woken exactly once, by whoever unlinked it, and its owner leaves only after
//!   seeing that; parking may return spuriously, so every wait re-checks in a loop;
//! - the protocol of the mutex's state word is model-checked with loom, with a broken variant
//!   the model must catch.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use gort::sync::{Mutex, WaitGroup};
//!
//! let hits = Arc::new(Mutex::new(0u32));
//! let wg = Arc::new(WaitGroup::new());
//! for _ in 0..100 {
//!     wg.add(1);
//!     let (hits, wg) = (Arc::clone(&hits), Arc::clone(&wg));
//!     gort::spawn(move || {
//!         *hits.lock() += 1;
//!         wg.done();
//!     });
//! }
//! wg.wait();
//! assert_eq!(*hits.lock(), 100);
//! ```

pub(crate) mod mutex_protocol;

#[cfg(not(loom))]
mod barrier;
#[cfg(not(loom))]
mod condvar;
#[cfg(not(loom))]
mod mutex;
#[cfg(not(loom))]
mod once;
#[cfg(not(loom))]
mod rwlock;
#[cfg(not(loom))]
mod sema;
#[cfg(not(loom))]
mod semaphore;
#[cfg(not(loom))]
mod waitgroup;
#[cfg(not(loom))]
mod waitlist;

#[cfg(not(loom))]
pub use self::barrier::{Barrier, BarrierWaitResult};
#[cfg(not(loom))]
pub use self::condvar::{Condvar, WaitTimeoutResult};
#[cfg(not(loom))]
pub use self::mutex::{MappedMutexGuard, Mutex, MutexGuard, RawMutex};
#[cfg(not(loom))]
pub use self::once::{Once, OnceLock};
#[cfg(not(loom))]
pub use self::rwlock::{RawRwLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(loom))]
pub use self::semaphore::{Semaphore, SemaphorePermit};
#[cfg(not(loom))]
pub use self::waitgroup::WaitGroup;
