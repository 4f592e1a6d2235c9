//! The protocol of [`RawMutex`](super::RawMutex) (Go's `sync.Mutex` algorithm over two words),
//! written against an abstract wait queue so that the loom model runs exactly this code.
//!
//! - the **lock word** is `FREE`, `HELD`, or `HANDED` (given by an unlock to a waiter it woke,
//!   which takes it as `HELD`): lock is one compare-exchange `FREE -> HELD`;
//! - the **waiters word** holds `STARVING` (handoff mode), `WOKEN` (a waiter is awake and about
//!   to compete, so unlock need not wake another) and, above those bits, the number of waiters
//!   registered to park.
//!
//! An unlock in normal mode is a release store of `FREE`, a light fence (`crate::fence`) and one
//! look at the waiters word: no read-modify-write, so an uncontended lock and unlock cost one
//! locked instruction. The other side of that handshake pays: a locker registers in the waiters
//! word, takes a heavy fence (a membarrier), and looks at the lock word before it parks. Either
//! the unlock sees the registration or the locker sees the mutex free; whoever sees the other
//! wakes a waiter (unless one is awake already or the mutex was taken again, whose holder's
//! unlock looks in turn). Registrations are rare next to unlocks (a contended locker spins
//! first), so the membarrier is paid where it is cheapest overall.
//!
//! Two modes:
//! - **normal**: an unlock wakes one waiter, which then competes with newly arriving lockers
//!   (who usually win: they are already running). Throughput is high, but a waiter can lose
//!   again and again;
//! - **starvation**: a waiter that has waited longer than the starvation threshold (1 ms) sets
//!   `STARVING` when it registers again. From then on an unlock hands the mutex directly to a
//!   waiter (the lock word goes `HELD -> HANDED`, never through `FREE`), so newcomers neither
//!   take it nor spin; they queue. The last waiter, or one that did not wait long, switches
//!   back to normal mode.
//!
//! Invariants:
//! - the mutex has one owner: the locker that moved the lock word to `HELD`, or between an
//!   unlock's `HANDED` and its taking, the wake-up unit released with it;
//! - every wake-up unit released to the queue was paid for by one registration, removed from
//!   the count by the read-modify-write that decided the wake-up, so units never outnumber
//!   registered waiters;
//! - a unit's taker first tries `HANDED -> HELD`; otherwise it holds `WOKEN`. At most one
//!   normal wake-up (it sets `WOKEN`) and one handoff (it sets `HANDED`, and only the owner
//!   hands off) are outstanding, so whichever of two takers gets `HANDED`, the other inherits
//!   `WOKEN`; whoever holds `WOKEN` clears it when it registers or takes the mutex;
//! - a registered waiter is never left parked with the mutex free and nobody awake: see the
//!   handshake above.

use crate::fence;
use crate::shim::atomic::{AtomicU32, Ordering};

/// Lock word: nobody holds the mutex.
const FREE: u32 = 0;
/// Lock word: a locker holds the mutex.
const HELD: u32 = 1;
/// Lock word: an unlock in starvation mode gave the mutex to the waiter it woke.
const HANDED: u32 = 2;

/// Waiters word: handoff mode.
const STARVING: u32 = 1;
/// Waiters word: a waiter is awake and competing.
const WOKEN: u32 = 2;
/// Waiters word: one registered waiter.
const WAITER: u32 = 4;

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

/// The two words of a mutex; see the module docs.
#[derive(Debug)]
pub(crate) struct State {
    lock: AtomicU32,
    waiters: AtomicU32,
}

impl State {
    /// An unlocked mutex.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> State {
        State {
            lock: AtomicU32::new(FREE),
            waiters: AtomicU32::new(0),
        }
    }

    /// An unlocked mutex (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub(crate) fn new() -> State {
        State {
            lock: AtomicU32::new(FREE),
            waiters: AtomicU32::new(0),
        }
    }

    /// Takes the mutex if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.lock
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether somebody holds the mutex (or it is being handed over).
    #[cfg_attr(loom, allow(dead_code))] // the models use lock and unlock only
    pub(crate) fn is_locked(&self) -> bool {
        self.lock.load(Ordering::Relaxed) != FREE
    }

    /// The number of registered waiters (tests watch it to know a locker is parking).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn waiting(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed) / WAITER
    }

    /// Locks: the fast path inline, the contended path out of line.
    #[inline]
    pub(crate) fn lock<Q: WaitQueue>(&self, queue: &Q) {
        if !self.try_lock() {
            self.lock_slow(queue);
        }
    }

    /// The contended lock: spin a little, then register and park; see the module docs.
    #[cold]
    fn lock_slow<Q: WaitQueue>(&self, queue: &Q) {
        let mut wait_start: Option<Q::Instant> = None;
        let mut starving = false;
        let mut awoke = false; // this locker holds `WOKEN`
        let mut iteration = 0;
        loop {
            if self.lock.load(Ordering::Relaxed) == FREE && self.try_lock() {
                if awoke {
                    self.waiters.fetch_and(!WOKEN, Ordering::Relaxed);
                }
                return;
            }
            let waiters = self.waiters.load(Ordering::Relaxed);
            // Spin only in normal mode: in starvation mode the mutex goes to a waiter anyway.
            if waiters & STARVING == 0 && queue.can_spin(iteration) {
                // Tell unlock not to wake anybody: this locker is awake already.
                if !awoke
                    && waiters & WOKEN == 0
                    && waiters >= WAITER
                    && self
                        .waiters
                        .compare_exchange(
                            waiters,
                            waiters | WOKEN,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    awoke = true;
                }
                for _ in 0..30 {
                    std::hint::spin_loop();
                }
                iteration += 1;
                continue;
            }
            self.register(waiters, awoke, starving);
            // The handshake with unlock: it may have released the mutex before it could see
            // the registration.
            fence::heavy();
            if self.lock.load(Ordering::Relaxed) == FREE {
                self.wake_one(queue);
            }
            let lifo = wait_start.is_some();
            let since = *wait_start.get_or_insert_with(|| queue.now());
            queue.acquire(lifo);
            starving = starving || queue.starving(since);
            if self
                .lock
                .compare_exchange(HANDED, HELD, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // Handed over: leave starvation mode as the last waiter, or as one that did
                // not really starve, so that newcomers compete again.
                if !starving || self.waiters.load(Ordering::Relaxed) < WAITER {
                    self.waiters.fetch_and(!STARVING, Ordering::Relaxed);
                }
                return;
            }
            awoke = true;
            iteration = 0;
        }
    }

    /// Registers one waiter (giving up `WOKEN` if `awoke`, asking for handoffs if `starving`).
    fn register(&self, mut old: u32, awoke: bool, starving: bool) {
        loop {
            let mut new = old + WAITER;
            if awoke {
                debug_assert!(old & WOKEN != 0, "gort: inconsistent mutex state");
                new &= !WOKEN;
            }
            if starving {
                new |= STARVING;
            }
            match self
                .waiters
                .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => old = actual,
            }
        }
    }

    /// Unlocks: a release store and one look at the waiters (see the module docs).
    #[inline]
    pub(crate) fn unlock<Q: WaitQueue>(&self, queue: &Q) {
        debug_assert!(self.is_locked(), "gort: unlock of an unlocked mutex");
        if self.waiters.load(Ordering::Relaxed) & STARVING != 0 {
            self.unlock_starving(queue);
        } else {
            self.release(queue);
        }
    }

    /// Gives the mutex up and wakes a waiter if one registered and nobody is awake.
    #[inline]
    fn release<Q: WaitQueue>(&self, queue: &Q) {
        // Broken on purpose: looking at the waiters before releasing misses a locker that
        // registers in between and then sees the mutex still held.
        #[cfg(all(loom, gort_loom_look_before_release))]
        let waiters = self.waiters.load(Ordering::Relaxed);
        self.lock.store(FREE, Ordering::Release);
        #[cfg(not(all(loom, gort_loom_look_before_release)))]
        let waiters = {
            fence::light();
            self.waiters.load(Ordering::Relaxed)
        };
        if waiters >= WAITER && waiters & WOKEN == 0 {
            self.wake_one(queue);
        }
    }

    /// Claims one registered waiter and posts its wake-up, unless nobody is registered,
    /// somebody is awake already, or the mutex is held again (its holder's unlock looks then).
    #[cold]
    fn wake_one<Q: WaitQueue>(&self, queue: &Q) {
        let mut old = self.waiters.load(Ordering::Relaxed);
        loop {
            if old < WAITER || old & WOKEN != 0 || self.lock.load(Ordering::Relaxed) != FREE {
                return;
            }
            match self.waiters.compare_exchange(
                old,
                (old - WAITER) | WOKEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    queue.release(false);
                    return;
                }
                Err(actual) => old = actual,
            }
        }
    }

    /// The unlock in starvation mode: hands the mutex to a waiter, or leaves the mode when
    /// nobody waits any more.
    #[cold]
    fn unlock_starving<Q: WaitQueue>(&self, queue: &Q) {
        let mut old = self.waiters.load(Ordering::Relaxed);
        loop {
            let (new, handoff) = if old < WAITER {
                (old & !STARVING, false)
            } else {
                (old - WAITER, true)
            };
            match self
                .waiters
                .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) if handoff => {
                    self.lock.store(HANDED, Ordering::Release);
                    queue.release(true);
                    #[cfg(all(test, not(loom)))]
                    HANDOFFS.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(_) => return self.release(queue),
                Err(actual) => old = actual,
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! Two lockers against the protocol above, with the wait queue modelled as a loom mutex
    //! around a count of wake-up units that a waiter yields on until one is there (so a lost
    //! wake-up shows as a waiter that never gets one). A critical section is a non-atomic
    //! increment (a loom cell, so overlapping sections are reported) guarded by an occupancy
    //! check. The "starvation" model makes every waiter starve at once, so the second failed
    //! attempt switches the mutex to handoff mode and the next unlock hands it over; the
    //! "normal" model never starves; the "spinning" model lets a locker spin once, taking
    //! `WOKEN` from the unlock.
    //!
    //! Broken variant: `--cfg gort_loom_look_before_release` makes unlock look at the waiters
    //! before it releases the mutex, so a locker that registers in between parks for ever.

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    use super::*;
    use crate::shim::Mutex;

    struct ModelQueue {
        starve: bool,
        spins: u32,
        units: Mutex<u32>,
    }

    impl WaitQueue for ModelQueue {
        type Instant = ();
        fn now(&self) {}
        fn starving(&self, (): ()) -> bool {
            self.starve
        }
        fn can_spin(&self, iteration: u32) -> bool {
            iteration < self.spins
        }
        fn acquire(&self, _lifo: bool) {
            loop {
                {
                    let mut units = self.units.lock();
                    if *units > 0 {
                        *units -= 1;
                        return;
                    }
                }
                thread::yield_now();
            }
        }
        fn release(&self, _handoff: bool) {
            *self.units.lock() += 1;
        }
    }

    struct Shared {
        state: State,
        queue: ModelQueue,
        inside: AtomicUsize,
        counter: UnsafeCell<u32>,
    }

    fn lock(shared: &Shared) {
        shared.state.lock(&shared.queue);
        assert_eq!(
            shared.inside.fetch_add(1, Ordering::Relaxed),
            0,
            "two lockers inside the mutex"
        );
        // SAFETY: the mutex gives this thread the counter (the assertion above checks it).
        shared.counter.with_mut(|counter| unsafe { *counter += 1 });
        shared.inside.fetch_sub(1, Ordering::Relaxed);
        shared.state.unlock(&shared.queue);
    }

    fn two_lockers(starve: bool, spins: u32, rounds: [usize; 2]) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let shared = Arc::new(Shared {
                state: State::new(),
                queue: ModelQueue {
                    starve,
                    spins,
                    units: Mutex::new(0),
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
            assert_eq!(
                shared.state.lock.load(Ordering::Relaxed),
                FREE,
                "left locked"
            );
            assert_eq!(
                shared.state.waiters.load(Ordering::Relaxed) & !STARVING,
                0,
                "waiters left behind"
            );
            assert_eq!(*shared.queue.units.lock(), 0, "a wake-up unit left behind");
        });
    }

    #[cfg(not(gort_loom_look_before_release))]
    #[test]
    fn loom_mutex_excludes_and_wakes_in_normal_mode() {
        two_lockers(false, 0, [2, 2]);
    }

    #[cfg(not(gort_loom_look_before_release))]
    #[test]
    fn loom_mutex_excludes_and_hands_off_in_starvation_mode() {
        two_lockers(true, 0, [3, 1]);
    }

    #[cfg(not(gort_loom_look_before_release))]
    #[test]
    fn loom_mutex_excludes_and_wakes_with_a_spinning_locker() {
        two_lockers(false, 1, [2, 1]);
    }

    #[cfg(gort_loom_look_before_release)]
    #[test]
    fn loom_catches_an_unlock_that_looks_before_it_releases() {
        let caught = std::panic::catch_unwind(|| two_lockers(false, 0, [2, 2]));
        assert!(caught.is_err(), "the model must find the lost wake-up");
    }
}
