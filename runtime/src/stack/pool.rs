//! Stack caches: small caches in front of a global pool, per size class (Go's stackcache and
//! stackpool). Each scheduler processor (P) has a cache for the goroutines it spawns and
//! finishes; each thread has one for stacks used outside goroutines.
//!
//! Taking and returning a stack touches only the caller's cache; the global pool's lock is
//! taken once per batch of half a cache, and the heap only when the pool is empty or full.
//!
//! The collector's scavenger returns the pages of pooled stacks that stayed in the pool for a
//! whole cycle ([`scavenge`]). The pool is a LIFO list, so its oldest stacks are at the bottom:
//! each class remembers how low the list got since the last scavenge (the bottom `untouched`
//! stacks were not taken since) and how many of its bottom stacks are scavenged already.
//!
//! Invariants:
//! - cached and pooled stacks keep their guard; they keep their committed pages, so reuse costs
//!   no system call, until the scavenger gives back those of a stack that stayed pooled for a
//!   whole collector cycle, or a processor gives back its cache's at the collector's request;
//! - a pooled stack's pages are given back only while the pool's lock is held, so nobody can
//!   take it and run on it meanwhile;
//! - `scavenged <= untouched <= len` hold for each class whenever its lock is free;
//! - a stack leaves the pool for the heap only through `RawStack::release`;
//! - each cache holds at most `cache_capacity` stacks of a class, the pool `pool_capacity`.

use std::cell::RefCell;

use super::raw::RawStack;
use super::size::CLASSES;
use super::{StackError, StackSize};
use crate::shim::Mutex;

/// The global pool: one list of stacks per class.
static POOL: [Mutex<Pooled>; CLASSES] = [const { Mutex::new(Pooled::new()) }; CLASSES];

/// A class's pooled stacks, oldest at the bottom.
struct Pooled {
    stacks: Vec<RawStack>,
    /// How many stacks at the bottom were not taken since the last scavenge.
    untouched: usize,
    /// How many stacks at the bottom have had their pages given back.
    scavenged: usize,
}

impl Pooled {
    const fn new() -> Pooled {
        Pooled {
            stacks: Vec::new(),
            untouched: 0,
            scavenged: 0,
        }
    }

    /// Moves the stacks above the bottom `keep` into `into`.
    fn take_above(&mut self, keep: usize, into: &mut Vec<RawStack>) {
        into.extend(self.stacks.drain(keep..));
        self.untouched = self.untouched.min(keep);
        self.scavenged = self.scavenged.min(keep);
    }
}

/// Stacks scavenged per hold of a class's lock, so that spawns wait at most that long.
const SCAVENGE_BATCH: usize = 16;

/// Gives back the pages of pooled stacks that no one took since the last call (the collector
/// calls it once per cycle). Answers the bytes that were resident.
pub(crate) fn scavenge() -> usize {
    let mut returned = 0;
    for class in &POOL {
        loop {
            let mut pooled = class.lock();
            let end = pooled.untouched.min(pooled.scavenged + SCAVENGE_BATCH);
            if pooled.scavenged >= end {
                pooled.untouched = pooled.stacks.len();
                break;
            }
            for stack in &pooled.stacks[pooled.scavenged..end] {
                // A pooled stack runs nothing; no one can take it while we hold the lock.
                // SAFETY: as just said (module invariant).
                returned += unsafe { stack.give_back_pages() };
            }
            pooled.scavenged = end;
        }
    }
    returned
}

thread_local! {
    static THREAD_CACHE: RefCell<StackCache> = const { RefCell::new(StackCache::new()) };
}

/// Reservation bytes a cache keeps per class (at least 2, at most 64 stacks).
const CACHE_BYTES: usize = 4 << 20;
/// Reservation bytes the global pool keeps per class (at least 2, at most 65,536 stacks, which
/// is the default 256 KiB class): a burst of goroutines that exit together comes back as a
/// burst, so the pool keeps what it gets (mostly address space; a recycled stack usually has one
/// page committed, so a full pool of the default class holds about 256 MiB) and leaves trimming
/// to the collector's scavenger. A stack that goes back to the heap instead costs three
/// `madvise` calls over its life (pages, guard removal, guard installation), each a TLB
/// shootdown interrupting every other CPU that runs the process: with a pool of 16,384, a burst
/// of 100,000 sleeping goroutines spent a third of its time there.
const POOL_BYTES: usize = 16 << 30;

#[inline]
pub(crate) fn cache_capacity(size: StackSize) -> usize {
    (CACHE_BYTES / size.bytes()).clamp(2, 64)
}

pub(crate) fn pool_capacity(size: StackSize) -> usize {
    (POOL_BYTES / size.bytes()).clamp(2, 65_536)
}

/// A cache of stacks per class, owned by one P or one thread.
pub(crate) struct StackCache {
    classes: [Vec<RawStack>; CLASSES],
}

impl StackCache {
    pub(crate) const fn new() -> Self {
        StackCache {
            classes: [const { Vec::new() }; CLASSES],
        }
    }

    /// A cached or pooled stack of `size`, if any.
    #[inline]
    pub(crate) fn take(&mut self, size: StackSize) -> Option<RawStack> {
        let stacks = &mut self.classes[size.class()];
        if stacks.is_empty() {
            let mut pooled = POOL[size.class()].lock();
            let keep = pooled.stacks.len().saturating_sub(cache_capacity(size) / 2);
            pooled.take_above(keep, stacks);
        }
        stacks.pop()
    }

    /// Keeps a stack, spilling half of a full cache to the pool.
    #[inline]
    pub(crate) fn put(&mut self, stack: RawStack) {
        let size = stack.size();
        let stacks = &mut self.classes[size.class()];
        stacks.push(stack);
        if stacks.len() > cache_capacity(size) {
            spill(size, stacks, cache_capacity(size) / 2);
        }
    }

    /// Gives back the pages of every cached stack (they stay cached); answers the bytes that
    /// were resident.
    pub(crate) fn give_back_pages(&mut self) -> usize {
        self.classes
            .iter()
            .flatten()
            // SAFETY: a cached stack runs nothing, and the cache's owner is the caller.
            .map(|stack| unsafe { stack.give_back_pages() })
            .sum()
    }
}

impl Drop for StackCache {
    fn drop(&mut self) {
        for stacks in &mut self.classes {
            if let Some(size) = stacks.first().map(RawStack::size) {
                spill(size, stacks, 0);
            }
        }
    }
}

/// A stack of `size` from the calling thread's cache, the global pool, or the heap.
#[inline]
pub(crate) fn take(size: StackSize) -> Result<RawStack, StackError> {
    match THREAD_CACHE.try_with(|cache| cache.borrow_mut().take(size)) {
        Ok(Some(stack)) => Ok(stack),
        Ok(None) | Err(_) => RawStack::allocate(size),
    }
}

/// Returns a stack to the calling thread's cache (or, if the thread is exiting, to the pool).
#[inline]
pub(crate) fn give_back(stack: RawStack) {
    let mut stack = Some(stack);
    let _ = THREAD_CACHE.try_with(|cache| {
        cache
            .borrow_mut()
            .put(stack.take().expect("given back once"))
    });
    if let Some(stack) = stack {
        let size = stack.size();
        spill(size, &mut vec![stack], 0);
    }
}

/// Moves `stacks[keep..]` to the global pool, releasing to the heap what does not fit. Allocates
/// only when stacks go back to the heap, which costs system calls anyway.
fn spill(size: StackSize, stacks: &mut Vec<RawStack>, keep: usize) {
    let excess = {
        let mut pooled = POOL[size.class()].lock();
        let room = pool_capacity(size).saturating_sub(pooled.stacks.len());
        let to_pool = (stacks.len() - keep).min(room);
        pooled.stacks.extend(stacks.drain(keep..keep + to_pool));
        stacks.split_off(keep)
    };
    for stack in excess {
        stack.release();
    }
}
