//! [`Mutex`]: a goroutine-aware mutual-exclusion lock with Go's `sync.Mutex` algorithm.
//!
//! The lock is a [`lock_api`] mutex over [`RawMutex`]: a state word driven by the protocol in
//! `mutex_protocol` (fast paths, spinning, normal and starvation modes) and a semaphore from
//! `sema` that contended lockers park on.
//!
//! Invariants:
//! - an uncontended lock is one acquire compare-exchange of the lock word, an unlock a release
//!   store and a look at the waiters word, with only a compiler fence between (the locker that
//!   registers to park pays a membarrier instead; see `mutex_protocol`);
//! - a locker that cannot get the lock parks its goroutine (or, on a plain thread, the thread):
//!   never its OS thread while in a goroutine;
//! - no waiter starves: one that waited over 1 ms turns on handoff mode (see `mutex_protocol`).

use std::time::{Duration, Instant};

use crate::sched::WaitReason;
use crate::sync::mutex_protocol::{State, WaitQueue};
use crate::sync::sema::Sema;

/// The raw lock under [`Mutex`]: a lock word, a waiters word and a wake-up semaphore, 12 bytes
/// in all.
///
/// Its guards are `Send` ([`lock_api::GuardSend`]): the lock records no owner thread, so an
/// unlock from another OS thread than the lock is sound. That is required here, because a
/// goroutine that holds a guard across a park point may resume, and unlock, on another thread.
///
/// # Examples
///
/// ```
/// use gort::sync::RawMutex;
/// use lock_api::RawMutex as _;
///
/// let raw = RawMutex::INIT;
/// raw.lock();
/// assert!(!raw.try_lock());
/// // SAFETY: this thread holds the lock.
/// unsafe { raw.unlock() };
/// ```
#[derive(Debug)]
pub struct RawMutex {
    state: State,
    sema: Sema,
}

/// How long a waiter may wait before the mutex switches to handoff mode.
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// The production wait queue of the mutex protocol: the semaphore table.
pub(crate) struct SemaQueue<'a> {
    pub(crate) sema: &'a Sema,
    pub(crate) reason: WaitReason,
}

impl WaitQueue for SemaQueue<'_> {
    type Instant = Instant;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn starving(&self, since: Instant) -> bool {
        since.elapsed() > STARVATION_THRESHOLD
    }

    fn can_spin(&self, iteration: u32) -> bool {
        // Spinning only pays when another core may be running the holder.
        iteration < 4 && multicore()
    }

    fn acquire(&self, lifo: bool) {
        self.sema.acquire(lifo, self.reason);
    }

    fn release(&self, handoff: bool) {
        self.sema.release(handoff);
    }
}

fn multicore() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static CORES: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 single, 2 several
    match CORES.load(Ordering::Relaxed) {
        0 => {
            let several = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
            CORES.store(if several { 2 } else { 1 }, Ordering::Relaxed);
            several
        }
        cores => cores == 2,
    }
}

impl RawMutex {
    /// Locks, parking with `reason` while contended.
    #[inline]
    pub(crate) fn lock_as(&self, reason: WaitReason) {
        self.state.lock(&SemaQueue {
            sema: &self.sema,
            reason,
        });
    }
}

// SAFETY: the protocol admits one holder at a time (`mutex_protocol` invariants): `lock` returns
// only with the mutex held, acquire orderings on taking it and a release on giving it up order
// the critical sections; unlock from any thread is fine, as the state records no owner.
unsafe impl lock_api::RawMutex for RawMutex {
    const INIT: RawMutex = RawMutex {
        state: State::new(),
        sema: Sema::new(0),
    };

    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        self.lock_as(WaitReason::MutexLock);
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.state.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.state.unlock(&SemaQueue {
            sema: &self.sema,
            reason: WaitReason::MutexLock,
        });
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.state.is_locked()
    }
}

/// A mutual-exclusion lock that parks goroutines, not OS threads (Go's `sync.Mutex`).
///
/// Contended lockers spin briefly, then park; a waiter that waited over 1 ms switches the mutex
/// to handoff mode, so nobody starves. On a plain thread it blocks the thread. There is no
/// poisoning: a panic while locked just unlocks.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::Mutex;
///
/// let total = gort::run(|| {
///     let counter = Arc::new(Mutex::new(0));
///     let workers: Vec<_> = (0..8)
///         .map(|_| {
///             let counter = Arc::clone(&counter);
///             gort::spawn(move || {
///                 for _ in 0..1000 {
///                     *counter.lock() += 1;
///                 }
///             })
///         })
///         .collect();
///     workers.into_iter().for_each(|w| w.join().unwrap());
///     *counter.lock()
/// });
/// assert_eq!(total, 8000);
/// ```
pub type Mutex<T> = lock_api::Mutex<RawMutex, T>;

/// The guard of a locked [`Mutex`]; unlocks on drop.
///
/// # Examples
///
/// ```
/// let mutex = gort::sync::Mutex::new(vec![1]);
/// let mut guard: gort::sync::MutexGuard<'_, Vec<i32>> = mutex.lock();
/// guard.push(2);
/// drop(guard);
/// assert_eq!(*mutex.lock(), [1, 2]);
/// ```
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawMutex, T>;

/// A [`MutexGuard`] narrowed to part of the data, from [`MutexGuard::map`].
///
/// # Examples
///
/// ```
/// use gort::sync::{MappedMutexGuard, Mutex, MutexGuard};
///
/// let mutex = Mutex::new((1, 2));
/// let mut second: MappedMutexGuard<'_, i32> = MutexGuard::map(mutex.lock(), |pair| &mut pair.1);
/// *second += 1;
/// drop(second);
/// assert_eq!(*mutex.lock(), (1, 3));
/// ```
pub type MappedMutexGuard<'a, T> = lock_api::MappedMutexGuard<'a, RawMutex, T>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::sync::mutex_protocol::HANDOFFS;

    /// A hog holds the mutex for 2 ms at a time and relocks at once; a waiter on another thread
    /// waits past the 1 ms threshold, loses the race for the mutex once more after its wake-up,
    /// and so switches the mutex to starvation mode: the hog's next unlock hands it over. (If
    /// the waiter ever wins that race outright, the session proves nothing and runs again.)
    #[test]
    fn a_starving_waiter_switches_the_mutex_to_handoff_mode() {
        let before = HANDOFFS.load(Ordering::Relaxed);
        for _session in 0..50 {
            let mutex = Arc::new(Mutex::new(()));
            let done = Arc::new(AtomicBool::new(false));
            let guard = mutex.lock();
            let waiter = std::thread::spawn({
                let (mutex, done) = (Arc::clone(&mutex), Arc::clone(&done));
                move || {
                    drop(mutex.lock());
                    done.store(true, Ordering::Release);
                }
            });
            // Wait until the waiter is parked on the mutex.
            // SAFETY: the raw lock is only read (its waiters word), never locked or unlocked.
            let raw = unsafe { mutex.raw() };
            while raw.state.waiting() == 0 {
                std::thread::yield_now();
            }
            drop(guard);
            while !done.load(Ordering::Acquire) {
                let _guard = mutex.lock();
                std::thread::sleep(Duration::from_millis(2));
            }
            waiter.join().unwrap();
            if HANDOFFS.load(Ordering::Relaxed) > before {
                return;
            }
        }
        panic!("the mutex never entered starvation mode");
    }
}
