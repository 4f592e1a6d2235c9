//! Shrinking a stopped goroutine's stack: giving back committed pages far below its stack
//! pointer (Go shrinks a stack that uses less than a quarter of itself; gort cannot move a
//! stack, so it releases the pages instead, and they commit again on the next touch).
//!
//! The residency is measured ([`plan`]) without the goroutine's claim: `mincore` reads no
//! memory, and its answer only decides whether to shrink. The release itself runs under the
//! claim, so the goroutine is held for one system call at most.
//!
//! Invariants:
//! - [`release`] runs only under the goroutine's claim, with the goroutine on its own stack (no
//!   segment) and not run since its stack pointer was read: nothing lives below that stack
//!   pointer, where the pages released lie;
//! - at least [`MIN_KEEP`] bytes and twice the depth in use stay committed below the top, so a
//!   goroutine that parks and wakes at the same depth does not fault its pages back each cycle.

use crate::heap::os_page_size;
use crate::stack::memory;

/// The least a shrink keeps committed below a stack's top.
pub(crate) const MIN_KEEP: usize = 32 * 1024;

/// What a look at a stack's residency found.
pub(crate) struct Plan {
    /// Bytes resident now.
    pub(crate) resident: usize,
    /// What to give back, if the stack should shrink.
    pub(crate) cut: Option<Cut>,
}

/// The pages a shrink gives back: `[bottom, end)`, of which `below` bytes are resident.
#[derive(Clone, Copy)]
pub(crate) struct Cut {
    pub(crate) bottom: usize,
    pub(crate) end: usize,
    pub(crate) below: usize,
}

/// Looks at the stack `[bottom, top)` of a goroutine that stopped with stack pointer `sp`.
pub(crate) fn plan(bottom: usize, top: usize, sp: usize) -> Plan {
    let in_use = top.saturating_sub(sp);
    let keep = (2 * in_use).max(MIN_KEEP);
    let cut = (top.saturating_sub(keep) & !(os_page_size() - 1)).clamp(bottom, sp);
    let below = memory::resident_bytes(bottom, cut - bottom).unwrap_or(0);
    let above = memory::resident_bytes(cut, top - cut).unwrap_or(0);
    let resident = below + above;
    let shrink = below > 0 && in_use * 4 < resident;
    Plan {
        resident,
        cut: shrink.then_some(Cut {
            bottom,
            end: cut,
            below,
        }),
    }
}

/// Gives back the pages of `[bottom, cut)`; `false` if the OS refused.
///
/// # Safety
///
/// The caller holds the goroutine's claim, and the range lies below the stack pointer it
/// stopped with and has not run since, on its own stack (module invariant); the range is page
/// aligned.
pub(crate) unsafe fn release(bottom: usize, cut: usize) -> bool {
    // SAFETY: nothing lives in the range (the caller's contract).
    match unsafe { memory::release(bottom, cut - bottom) } {
        Ok(()) => true,
        Err(err) => {
            log::warn!("gort: shrinking a goroutine stack at {bottom:#x} failed: {err}");
            false
        }
    }
}
