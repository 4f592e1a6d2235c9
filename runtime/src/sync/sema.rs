//! Semaphores whose waiters park in a table of wait queues keyed by address (Go's `sema.go`).
//!
//! A [`Sema`] is one `u32` count. [`Sema::acquire`] takes a unit, parking the caller while there
//! is none; [`Sema::release`] adds one and wakes the longest waiter on that semaphore, if any.
//! Waiters queue in one of [`BUCKETS`] buckets chosen by the semaphore's address; a bucket is a
//! `parking_lot` mutex around an intrusive list of nodes on the waiters' stacks, so neither side
//! allocates, and the uncontended paths (a unit is there; nobody waits) touch only atomics.
//!
//! Invariants:
//! - a bucket's `nwait` counts the waiters that registered in it and were not yet dequeued; a
//!   waiter registers (under the bucket lock) before its last look at the count, and a release
//!   adds to the count before it looks at `nwait` — both sequentially consistent, so either the
//!   waiter sees the unit or the release sees the waiter and takes the lock;
//! - the waker dequeues a node and releases it under the bucket lock (see `waitlist`); each node
//!   is woken once, and FIFO per semaphore (a waiter may ask to go first with `lifo`);
//! - a waiter woken with a ticket owns a unit the waker took for it (handoff); without one it
//!   competes for the unit again and may queue again;
//! - wake-ups may be spurious at the park layer, never here: a waiter returns holding a unit.

use crate::sched::WaitReason;
use crate::shim::atomic::{AtomicU32, Ordering};
use crate::sync::waitlist::{List, Node};

/// Number of wait-queue buckets; prime, so that aligned addresses spread over all of them.
pub(crate) const BUCKETS: usize = 251;

#[repr(align(128))] // one bucket per cache line pair: no false sharing between buckets
struct Bucket {
    nwait: AtomicU32,
    queue: parking_lot::Mutex<List>,
}

static TABLE: [Bucket; BUCKETS] = [const {
    Bucket {
        nwait: AtomicU32::new(0),
        queue: parking_lot::const_mutex(List::new()),
    }
}; BUCKETS];

fn bucket(addr: usize) -> &'static Bucket {
    &TABLE[(addr >> 3) % BUCKETS]
}

/// A counting semaphore word; see the module docs.
#[derive(Debug)]
pub(crate) struct Sema {
    count: AtomicU32,
}

impl Sema {
    pub(crate) const fn new(count: u32) -> Sema {
        Sema {
            count: AtomicU32::new(count),
        }
    }

    fn addr(&self) -> usize {
        &self.count as *const AtomicU32 as usize
    }

    /// Takes a unit if there is one, without waiting.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut count = self.count.load(Ordering::SeqCst);
        while count > 0 {
            match self.count.compare_exchange_weak(
                count,
                count - 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(actual) => count = actual,
            }
        }
        false
    }

    /// The units available now (a snapshot).
    pub(crate) fn available(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Takes a unit, parking the calling goroutine (or thread) until one is released. `lifo`
    /// queues it in front of the other waiters (a waiter that already waited once).
    pub(crate) fn acquire(&self, lifo: bool, reason: WaitReason) {
        if self.try_acquire() {
            return;
        }
        let addr = self.addr();
        let bucket = bucket(addr);
        loop {
            let mut node = Node::new(addr);
            let node: *mut Node = &mut node;
            {
                let mut queue = bucket.queue.lock();
                bucket.nwait.fetch_add(1, Ordering::SeqCst);
                if self.try_acquire() {
                    bucket.nwait.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                // SAFETY: `node` is in this frame, which outlives the wait below.
                unsafe { queue.push(node, lifo) };
            }
            // SAFETY: the node is ours and queued; it stays here until the wait returns.
            if unsafe { Node::wait(node, reason) } || self.try_acquire() {
                return;
            }
        }
    }

    /// Adds a unit and wakes the first waiter, if any. With `handoff`, the unit goes straight
    /// to that waiter (a ticket), and the caller yields so the waiter runs soon.
    pub(crate) fn release(&self, handoff: bool) {
        self.release_n(1, handoff);
    }

    /// Adds `n` units and wakes up to `n` waiters.
    pub(crate) fn release_n(&self, n: u32, handoff: bool) {
        if n == 0 {
            return;
        }
        self.count.fetch_add(n, Ordering::SeqCst);
        let addr = self.addr();
        let bucket = bucket(addr);
        let mut handed_off = false;
        for _ in 0..n {
            if bucket.nwait.load(Ordering::SeqCst) == 0 {
                break;
            }
            let waiter = {
                let mut queue = bucket.queue.lock();
                if bucket.nwait.load(Ordering::SeqCst) == 0 {
                    break;
                }
                let node = queue.pop_addr(addr);
                if node.is_null() {
                    break;
                }
                bucket.nwait.fetch_sub(1, Ordering::SeqCst);
                let ticket = handoff && self.try_acquire();
                handed_off |= ticket;
                // SAFETY: we just unlinked `node` under the bucket lock.
                unsafe { Node::release(node, ticket) }
            };
            waiter.wake();
        }
        if handed_off {
            // Let the new owner run now instead of competing with the caller.
            crate::yield_now();
        }
    }
}
