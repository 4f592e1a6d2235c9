//! Stack caches: a per-thread cache in front of a global pool, per size class (Go's stackcache
//! and stackpool).
//!
//! Taking and returning a stack touches only the calling thread's cache; the global pool's lock
//! is taken once per batch of half a cache, and the heap only when the pool is empty or full.
//!
//! Invariants:
//! - cached and pooled stacks keep their committed pages and their guard, so reuse costs no
//!   system call;
//! - a stack leaves the pool for the heap only through `RawStack::release`;
//! - each cache holds at most `thread_capacity` stacks of a class, each pool `pool_capacity`.

use std::cell::RefCell;

use super::raw::RawStack;
use super::size::CLASSES;
use super::{StackError, StackSize};
use crate::sync::Mutex;

/// The global pool: one list of stacks per class.
static POOL: [Mutex<Vec<RawStack>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];

thread_local! {
    static CACHE: RefCell<ThreadCache> = const { RefCell::new(ThreadCache::new()) };
}

/// Reservation bytes a thread keeps cached per class (at least 2, at most 64 stacks).
const THREAD_CACHE_BYTES: usize = 4 << 20;
/// Reservation bytes the global pool keeps per class (at least 2, at most 65,536 stacks): a
/// burst of goroutines that exit together comes back as a burst, so the pool keeps what it gets
/// (mostly address space; a recycled stack usually has one page committed) and leaves trimming
/// to the collector's scavenger.
const POOL_BYTES: usize = 4 << 30;

pub(crate) fn thread_capacity(size: StackSize) -> usize {
    (THREAD_CACHE_BYTES / size.bytes()).clamp(2, 64)
}

pub(crate) fn pool_capacity(size: StackSize) -> usize {
    (POOL_BYTES / size.bytes()).clamp(2, 65_536)
}

struct ThreadCache {
    classes: [Vec<RawStack>; CLASSES],
}

impl ThreadCache {
    const fn new() -> Self {
        ThreadCache {
            classes: [const { Vec::new() }; CLASSES],
        }
    }
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        for stacks in &mut self.classes {
            if let Some(size) = stacks.first().map(RawStack::size) {
                spill(size, stacks, 0);
            }
        }
    }
}

/// A stack of `size`: cached, pooled, or new from the heap.
pub(crate) fn take(size: StackSize) -> Result<RawStack, StackError> {
    let cached = CACHE.try_with(|cache| {
        let stacks = &mut cache.borrow_mut().classes[size.class()];
        if stacks.is_empty() {
            let mut pooled = POOL[size.class()].lock();
            let keep = pooled.len().saturating_sub(thread_capacity(size) / 2);
            stacks.extend(pooled.drain(keep..));
        }
        stacks.pop()
    });
    match cached {
        Ok(Some(stack)) => Ok(stack),
        Ok(None) | Err(_) => RawStack::allocate(size),
    }
}

/// Returns a stack to the calling thread's cache, spilling half of a full cache to the pool.
pub(crate) fn give_back(stack: RawStack) {
    let size = stack.size();
    let mut stack = Some(stack);
    // If the thread is exiting its cache is gone, and the stack goes straight to the pool.
    let _ = CACHE.try_with(|cache| {
        let stacks = &mut cache.borrow_mut().classes[size.class()];
        stacks.extend(stack.take());
        if stacks.len() > thread_capacity(size) {
            spill(size, stacks, thread_capacity(size) / 2);
        }
    });
    if let Some(stack) = stack {
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
