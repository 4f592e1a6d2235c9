//! Shrinking a stopped goroutine's stack: giving back committed pages far below its stack
//! pointer (Go shrinks a stack that uses less than a quarter of itself; gort cannot move a
//! stack, so it releases the pages instead, and they commit again on the next touch).
//!
//! The residency is measured ([`plan`]) without the goroutine's claim: `mincore` reads no
//! memory, and its answer only decides whether to shrink. The release itself runs under the
//! claim, so the goroutine is held for one system call at most, which it shares with up to
//! seven others ([`group_len`]).
//!
//! Invariants:
//! - a group's cuts are given back (`stack::memory::release_all`, by the collector's
//!   `shrink_group`) only under the goroutines' claims, each goroutine on its own stack (no
//!   segment) and not run since its stack pointer was read: nothing lives below that stack
//!   pointer, where the pages released lie; what fails is reported after the claims are
//!   released;
//! - at least [`MIN_KEEP`] bytes and twice the depth in use stay committed below the top, so a
//!   goroutine that parks and wakes at the same depth does not fault its pages back each cycle.

use crate::heap::os_page_size;
use crate::stack::memory;

/// The least a shrink keeps committed below a stack's top.
pub(crate) const MIN_KEEP: usize = 16 * 1024;

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

impl Cut {
    /// The cut as an `(address, length)` range.
    pub(crate) fn range(&self) -> (usize, usize) {
        (self.bottom, self.end - self.bottom)
    }
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

/// Goroutines whose stacks shrink together, in one system call where the kernel allows it
/// (see `memory::release_all`): the call interrupts the other CPUs once for the group. On this
/// project's 2-vCPU VM, with another thread of the process running, `madvise` of one 48 KiB cut
/// takes about 25 µs (nearly all of it the interrupt), a call for eight such cuts about 36 µs:
/// each member is held that long, under the 50 µs a goroutine may be held, for eight times the
/// throughput.
pub(crate) const GROUP: usize = 8;

/// Resident bytes a group gives back at most: zapping pages costs about 0.15 µs each, so this
/// keeps a group's call near the 36 µs above.
const GROUP_BYTES: usize = 384 * 1024;

/// How many of the cuts of `below` (each one's resident bytes, in order) shrink together: at
/// most [`GROUP`], at most [`GROUP_BYTES`] between them, and at least one.
pub(crate) fn group_len(below: impl Iterator<Item = usize>) -> usize {
    let mut bytes = 0;
    let mut len = 0;
    for below in below.take(GROUP) {
        bytes += below;
        if len > 0 && bytes > GROUP_BYTES {
            break;
        }
        len += 1;
    }
    len.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_hold_at_most_eight_cuts_and_384_kib_but_always_one() {
        const KIB: usize = 1024;
        assert_eq!(group_len([48 * KIB; 9].into_iter()), 8);
        assert_eq!(group_len([48 * KIB; 3].into_iter()), 3);
        assert_eq!(group_len([100 * KIB; 5].into_iter()), 3);
        assert_eq!(group_len([8192 * KIB, 4 * KIB].into_iter()), 1);
        assert_eq!(group_len([4 * KIB, 8192 * KIB].into_iter()), 1);
    }
}
