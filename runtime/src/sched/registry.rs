//! Every live goroutine, for deadlock reports (and, later, dumps and the collector). The registry
//! also keeps each goroutine alive: a parked goroutine that nothing else refers to (nobody will
//! wake it) must stay parked, not be dropped and unwound.
//!
//! Invariant: a goroutine is registered (with a counted reference) before it is first queued,
//! and unregistered by the M that ran it to its end.

use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::g::G;
use super::g::GRef;

/// Shards, so that spawning and exiting on different threads rarely meet on one lock.
const SHARDS: usize = 64;

struct Shard {
    entries: Vec<Option<GRef>>,
    free: Vec<usize>,
}

static REGISTRY: [Mutex<Shard>; SHARDS] = [const {
    Mutex::new(Shard {
        entries: Vec::new(),
        free: Vec::new(),
    })
}; SHARDS];

fn shard(g: &G) -> &'static Mutex<Shard> {
    &REGISTRY[g.id.as_u64() as usize % SHARDS]
}

/// Registers a new goroutine.
pub(crate) fn register(g: &GRef) {
    let mut shard = shard(g).lock();
    let slot = match shard.free.pop() {
        Some(slot) => {
            shard.entries[slot] = Some(GRef::clone(g));
            slot
        }
        None => {
            shard.entries.push(Some(GRef::clone(g)));
            shard.entries.len() - 1
        }
    };
    g.registry_slot.store(slot, Ordering::Relaxed);
}

/// Unregisters a goroutine that finished.
pub(crate) fn unregister(g: &G) {
    let mut shard = shard(g).lock();
    let slot = g.registry_slot.load(Ordering::Relaxed);
    let registered = shard.entries[slot].take();
    debug_assert!(registered.is_some_and(|r| std::ptr::eq(&*r, g)));
    shard.free.push(slot);
}

/// Calls `f` with every live goroutine, in no particular order.
pub(crate) fn for_each(mut f: impl FnMut(&G)) {
    for shard in &REGISTRY {
        let shard = shard.lock();
        for g in shard.entries.iter().flatten() {
            f(g);
        }
    }
}
