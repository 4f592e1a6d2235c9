//! Stack caches: small caches in front of a global pool, per size class (Go's stackcache and
//! stackpool). Each scheduler processor (P) has a cache for the goroutines it spawns and
//! finishes; each thread has one for stacks used outside goroutines.
//!
//! Taking and returning a stack touches only the caller's cache; the global pool's lock is
//! taken once per batch of half a cache, and the heap only when the pool is empty or full.
//!
//! Invariants:
//! - cached and pooled stacks keep their committed pages and their guard, so reuse costs no
//!   system call;
//! - a stack leaves the pool for the heap only through `RawStack::release`;
//! - each cache holds at most `cache_capacity` stacks of a class, the pool `pool_capacity`.

use std::cell::RefCell;

use super::raw::RawStack;
use super::size::CLASSES;
use super::{StackError, StackSize};
use crate::shim::Mutex;

/// The global pool: one list of stacks per class.
static POOL: [Mutex<Vec<RawStack>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];

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
            let keep = pooled.len().saturating_sub(cache_capacity(size) / 2);
            stacks.extend(pooled.drain(keep..));
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
        let room = pool_capacity(size).saturating_sub(pooled.len());
        let to_pool = (stacks.len() - keep).min(room);
        pooled.extend(stacks.drain(keep..keep + to_pool));
        stacks.split_off(keep)
    };
    for stack in excess {
        stack.release();
    }
}
