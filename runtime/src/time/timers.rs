//! Pending timers: min-heaps in shards, and one timer thread that sleeps until the earliest
//! deadline and fires what is due (wakes a parked goroutine, or sends on a timer's channel).
//!
//! Adding a timer locks one shard (chosen per thread, so threads rarely share one) and wakes the
//! timer thread only when the new deadline is the earliest. Firing never runs on an M, so a
//! goroutine's wake-up goes through the global queue like any wake-up from outside.
//!
//! Invariants:
//! - an entry fires at most once per arming: the timer thread moves it `PENDING -> FIRING`, and
//!   whoever cancels moves it to `CANCELLED` from any state, which the timer thread checks
//!   before it fires and before it re-arms a ticker;
//! - `next` is never later than the earliest pending deadline when the timer thread goes to
//!   sleep: the thread resets it to "none" before scanning, so an add racing the scan lowers it
//!   and wakes the thread, and the thread lowers it to what its scan found after;
//! - `pending` counts heap entries (cancelled ones included until they surface).

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
        match self.state.swap(CANCELLED, Ordering::AcqRel) {
            PENDING => true,
            FIRING => {
                // The timer thread holds the action while it runs it.
                drop(self.action.lock());
                false
            }
            _ => false,
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
    epoch: Instant,
    thread: Thread,
}

const NONE: u64 = u64::MAX;

static TIMERS: OnceLock<Timers> = OnceLock::new();

fn timers() -> &'static Timers {
    TIMERS.get_or_init(|| {
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

/// Timers armed and not yet surfaced (a program with pending timers is not deadlocked).
pub(crate) fn pending() -> usize {
    TIMERS
        .get()
        .map_or(0, |timers| timers.pending.load(Ordering::SeqCst))
}

/// The timer thread.
fn run() {
    let timers = timers();
    let mut due = Vec::new();
    loop {
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
    if entry
        .state
        .compare_exchange(PENDING, FIRING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let again = match &mut *entry.action.lock() {
        Action::Wake(waiter) => {
            waiter.clone().wake();
            None
        }
        Action::Fire(fire) => fire(now),
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
