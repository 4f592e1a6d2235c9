//! Pending timers: min-heaps in shards, and one timer thread that sleeps until the earliest
//! deadline and fires what is due (wakes a parked goroutine, or sends on a timer's channel).
//!
//! Adding a timer locks one shard (chosen per thread, so threads rarely share one) and wakes the
//! timer thread only when the new deadline is the earliest. Firing never runs on an M, so a
//! goroutine's wake-up goes through the global queue like any wake-up from outside (the
//! runtime's own goroutines through the system queue).
//!
//! Invariants:
//! - an entry fires at most once per arming: the timer thread moves it `PENDING -> FIRING`, and
//!   whoever cancels moves it to `CANCELLED` from any state, which the timer thread checks
//!   before it fires and before it re-arms a ticker;
//! - `next` is never later than the earliest pending deadline when the timer thread goes to
//!   sleep: the thread resets it to "none" before scanning, so an add racing the scan lowers it
//!   and wakes the thread, and the thread lowers it to what its scan found after;
//! - `pending` counts heap entries, `cancelled` those of them cancelled before firing; an entry
//!   leaves both counts when it surfaces or is purged.

use std::cell::Cell;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::sched::Waiter;

const PENDING: u8 = 0;
const FIRING: u8 = 1;
const FIRED: u8 = 2;
const CANCELLED: u8 = 3;

/// Heaps of pending timers; a power of two.
const SHARDS: usize = 16;

/// What a timer does when it fires.
pub(crate) enum Action {
    /// Wakes a parked goroutine or thread.
    Wake(Waiter),
    /// Called with the firing time; answers the next deadline to fire again at (a ticker), or
    /// `None` when done.
    Fire(Box<dyn FnMut(Instant) -> Option<Instant> + Send>),
    /// Nothing any more: the timer was cancelled (what it held is released at once, not when
    /// its deadline surfaces).
    Nothing,
}

/// One armed timer.
pub(crate) struct Entry {
    state: AtomicU8,
    /// Run only by the timer thread; the mutex is never contended.
    action: Mutex<Action>,
}

impl Entry {
    pub(crate) fn new(action: Action) -> Arc<Entry> {
        Arc::new(Entry {
            state: AtomicU8::new(PENDING),
            action: Mutex::new(action),
        })
    }

    /// Disarms the entry; `true` if it had not fired (or started firing) yet. If it is firing
    /// now, waits for that to finish, so nothing it does happens after this returns.
    pub(crate) fn cancel(&self) -> bool {
        // The common case, a sleep woken by its own timer: nothing to undo, no shared counter
        // to touch. (`FIRED` is final.)
        if self.state.load(Ordering::Acquire) == FIRED {
            return false;
        }
        // Counted before the swap, so the count never falls below the cancelled entries still
        // in the heaps (the timer thread takes them off when they surface).
        let timers = TIMERS.get();
        let count = |delta: isize| {
            if let Some(timers) = timers {
                if delta > 0 {
                    timers.cancelled.fetch_add(1, Ordering::SeqCst);
                } else {
                    timers.cancelled.fetch_sub(1, Ordering::SeqCst);
                }
            }
        };
        count(1);
        match self.state.swap(CANCELLED, Ordering::AcqRel) {
            PENDING => {
                // The timer thread will not run it: release what it holds now.
                *self.action.lock() = Action::Nothing;
                true
            }
            FIRING => {
                count(-1);
                // The timer thread holds the action while it runs it.
                drop(self.action.lock());
                false
            }
            _ => {
                count(-1);
                false
            }
        }
    }
}

struct Pending {
    deadline: Instant,
    seq: u64,
    entry: Arc<Entry>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest deadline first, and among
    /// equal deadlines the first armed.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

struct Shard {
    heap: BinaryHeap<Pending>,
    seq: u64,
}

struct Timers {
    shards: [Mutex<Shard>; SHARDS],
    /// The earliest deadline the timer thread sleeps until, in nanoseconds since `epoch`, or
    /// `NONE`.
    next: AtomicU64,
    pending: AtomicUsize,
    /// Heap entries cancelled before they fired (they leave the heap when they surface, or in a
    /// purge once they are half of it).
    cancelled: AtomicUsize,
    epoch: Instant,
    thread: Thread,
}

const NONE: u64 = u64::MAX;

static TIMERS: OnceLock<Timers> = OnceLock::new();

fn timers() -> &'static Timers {
    TIMERS.get_or_init(|| {
        // Counted before it exists, so the deadlock check never mistakes it for a user's thread.
        crate::sched::count_service_thread();
        let thread = thread::Builder::new()
            .name("gort-timers".into())
            .spawn(run)
            .expect("cannot start the gort timer thread");
        Timers {
            shards: [const {
                Mutex::new(Shard {
                    heap: BinaryHeap::new(),
                    seq: 0,
                })
            }; SHARDS],
            next: AtomicU64::new(NONE),
            pending: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            epoch: Instant::now(),
            thread: thread.thread().clone(),
        }
    })
}

thread_local! {
    /// The shard this thread adds to.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// The calling thread's shard. Never inlined: a goroutine may move between threads, and a
/// thread-local address must not be kept across a switch.
#[inline(never)]
fn shard_index() -> usize {
    SHARD
        .try_with(|shard| {
            if shard.get() == usize::MAX {
                shard.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
            }
            shard.get()
        })
        .unwrap_or(0)
}

impl Timers {
    fn nanos(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(NONE - 1).min(NONE - 1)
    }

    fn add(&self, deadline: Instant, entry: Arc<Entry>) {
        {
            let mut shard = self.shards[shard_index()].lock();
            shard.seq += 1;
            let seq = shard.seq;
            shard.heap.push(Pending {
                deadline,
                seq,
                entry,
            });
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        let nanos = self.nanos(deadline);
        if nanos < self.next.fetch_min(nanos, Ordering::SeqCst) {
            self.thread.unpark();
        }
    }
}

/// Arms `entry` to fire at `deadline`.
pub(crate) fn add(deadline: Instant, entry: Arc<Entry>) {
    timers().add(deadline, entry);
}

/// Timers in the heaps, cancelled ones included until they surface or are purged (a program
/// with pending timers is not deadlocked; counting cancelled ones only delays a report).
pub(crate) fn pending() -> usize {
    TIMERS
        .get()
        .map_or(0, |timers| timers.pending.load(Ordering::SeqCst))
}

/// Cancelled entries below which the heaps are not purged.
const PURGE_AT_LEAST: usize = 1024;

impl Timers {
    /// Drops cancelled entries from the heaps once they are half of all entries, so that
    /// timeouts that never fire (a receive that completes first) do not pile up until their
    /// deadlines.
    fn purge_if_worth_it(&self) {
        let cancelled = self.cancelled.load(Ordering::SeqCst);
        if cancelled < PURGE_AT_LEAST || cancelled * 2 < self.pending.load(Ordering::SeqCst) {
            return;
        }
        for shard in &self.shards {
            let mut shard = shard.lock();
            let before = shard.heap.len();
            shard
                .heap
                .retain(|pending| pending.entry.state.load(Ordering::Acquire) != CANCELLED);
            let removed = before - shard.heap.len();
            self.pending.fetch_sub(removed, Ordering::SeqCst);
            // Never below zero: every removed entry was counted when it was cancelled.
            self.cancelled.fetch_sub(removed, Ordering::SeqCst);
        }
    }
}

/// The timer thread.
fn run() {
    let timers = timers();
    let mut due = Vec::new();
    loop {
        timers.purge_if_worth_it();
        timers.next.store(NONE, Ordering::SeqCst);
        let now = Instant::now();
        let mut earliest = NONE;
        for shard in &timers.shards {
            let mut shard = shard.lock();
            while let Some(top) = shard.heap.peek() {
                if top.deadline > now {
                    earliest = earliest.min(timers.nanos(top.deadline));
                    break;
                }
                due.push(shard.heap.pop().expect("peeked"));
            }
        }
        let next = timers
            .next
            .fetch_min(earliest, Ordering::SeqCst)
            .min(earliest);
        timers.pending.fetch_sub(due.len(), Ordering::SeqCst);
        let fired = !due.is_empty();
        for pending in due.drain(..) {
            fire(timers, pending, now);
        }
        if fired {
            continue;
        }
        match next {
            NONE => thread::park(),
            next => {
                let at = timers.epoch + Duration::from_nanos(next);
                thread::park_timeout(at.saturating_duration_since(Instant::now()));
            }
        }
    }
}

fn fire(timers: &Timers, pending: Pending, now: Instant) {
    let entry = pending.entry;
    if let Err(state) =
        entry
            .state
            .compare_exchange(PENDING, FIRING, Ordering::AcqRel, Ordering::Acquire)
    {
        if state == CANCELLED {
            timers.cancelled.fetch_sub(1, Ordering::SeqCst);
        }
        return;
    }
    let again = match &mut *entry.action.lock() {
        Action::Wake(waiter) => {
            waiter.clone().wake();
            None
        }
        Action::Fire(fire) => fire(now),
        Action::Nothing => None,
    };
    match again {
        Some(deadline)
            if entry
                .state
                .compare_exchange(FIRING, PENDING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok() =>
        {
            timers.add(deadline, entry);
        }
        _ => {
            let _ =
                entry
                    .state
                    .compare_exchange(FIRING, FIRED, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelled_timeouts_are_purged_long_before_their_deadlines() {
        let far = Instant::now() + Duration::from_secs(3600);
        let entries: Vec<_> = (0..4 * PURGE_AT_LEAST)
            .map(|_| {
                let entry = Entry::new(Action::Fire(Box::new(|_| None)));
                add(far, Arc::clone(&entry));
                entry
            })
            .collect();
        assert!(pending() >= entries.len());
        for entry in &entries {
            assert!(entry.cancel());
        }
        // Any add wakes the timer thread, which purges at the start of each round: after two
        // rounds that fired a fresh timer, one began after the cancels.
        for _ in 0..2 {
            let (tx, rx) = std::sync::mpsc::channel();
            add(
                Instant::now(),
                Entry::new(Action::Fire(Box::new(move |_| {
                    let _ = tx.send(());
                    None
                }))),
            );
            rx.recv().unwrap();
        }
        assert!(
            pending() < PURGE_AT_LEAST,
            "{} entries still pending",
            pending()
        );
    }
}
