//! Shrinking a stopped goroutine's stack: giving back committed pages far below its stack
//! pointer (Go shrinks a stack that uses less than a quarter of itself; gort cannot move a
//! stack, so it releases the pages instead, and they commit again on the next touch).
//!
//! Invariants:
//! - the caller holds the goroutine's scan claim and the goroutine runs on its own stack (no
//!   segment): nothing lives below its stack pointer, where the pages released lie;
//! - at least [`MIN_KEEP`] bytes and twice the depth in use stay committed below the top, so a
//!   goroutine that parks and wakes at the same depth does not fault its pages back each cycle.

use crate::heap::os_page_size;
use crate::stack::memory;

/// The least a shrink keeps committed below a stack's top.
pub(crate) const MIN_KEEP: usize = 32 * 1024;

/// What a shrink found and did.
pub(crate) struct Shrink {
    /// Bytes resident after the shrink.
    pub(crate) resident: usize,
    /// Bytes given back.
    pub(crate) released: usize,
}

/// Shrinks the stack `[bottom, top)` of a stopped goroutine whose stack pointer is `sp`.
pub(crate) fn shrink(bottom: usize, top: usize, sp: usize) -> Shrink {
    let resident = memory::resident_bytes(bottom, top - bottom).unwrap_or(0);
    let in_use = top.saturating_sub(sp);
    let keep = (2 * in_use).max(MIN_KEEP);
    let cut = top.saturating_sub(keep) & !(os_page_size() - 1);
    if in_use * 4 >= resident || cut <= bottom || cut > sp {
        return Shrink {
            resident,
            released: 0,
        };
    }
    let below = memory::resident_bytes(bottom, cut - bottom).unwrap_or(0);
    if below == 0 {
        return Shrink {
            resident,
            released: 0,
        };
    }
    // SAFETY: `[bottom, cut)` lies below the stopped goroutine's stack pointer on its own stack
    // (module invariant), so nothing lives there; the range is page aligned.
    if let Err(err) = unsafe { memory::release(bottom, cut - bottom) } {
        log::warn!("gort: shrinking a goroutine stack at {bottom:#x} failed: {err}");
        return Shrink {
            resident,
            released: 0,
        };
    }
    Shrink {
        resident: resident - below,
        released: below,
    }
}
