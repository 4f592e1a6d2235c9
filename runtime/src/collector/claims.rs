//! Taking goroutines' scan claims a batch at a time (the scanner's side of the handshake in
//! `sched::status`): one heavy fence per batch instead of one locked instruction on every
//! goroutine start.
//!
//! Invariants:
//! - the caller is the one scanner (it holds the `SCANNER` lock);
//! - a goroutine is held only while its own visit runs (or its group's, when a few goroutines
//!   share one system call), never while the rest of its batch is handled: until its claim is
//!   confirmed an M starting it takes the claim back, and its claim is released as soon as its
//!   visit returns;
//! - the caller's `between` runs between batches (where a scanner running as a goroutine
//!   yields), never while a claim is held.

use std::time::Instant;

use super::pauses::PauseHistogram;
use crate::sched::G;
use crate::sched::status::StatusWord;

/// Goroutines announced per heavy fence. A fence costs about 12 µs with other threads running
/// (see `crate::fence`), so this keeps it near 0.05 µs per goroutine.
pub(crate) const BATCH: usize = 256;

/// Calls `visit` with each item of `items` (whose goroutine `goroutine` answers) and, if the
/// goroutine's claim could be held, the status it had (`None`: it runs, or it finished); a held
/// claim is released when `visit` returns. `between` runs between batches, with no claim held.
/// Answers how long each hold took.
pub(crate) fn visit_claimed<T>(
    items: &[T],
    goroutine: impl Fn(&T) -> &G,
    between: impl FnMut(),
    mut visit: impl FnMut(&T, Option<u32>),
) -> PauseHistogram {
    visit_claimed_groups(
        items,
        goroutine,
        between,
        |_| 1,
        |group| {
            for &(item, status) in group {
                visit(item, status);
            }
        },
    )
}

/// As [`visit_claimed`], a group of consecutive items at a time, for work that is cheaper done
/// for several goroutines at once: `group_len` answers how many of the items left in the batch
/// form the next group (at least one, at most what is left), and `visit` gets each member with
/// its status; the group's held claims are released together when it returns. Each member's
/// hold is counted from the group's first confirmation.
pub(crate) fn visit_claimed_groups<'a, T>(
    items: &'a [T],
    goroutine: impl Fn(&T) -> &G,
    mut between: impl FnMut(),
    mut group_len: impl FnMut(&[T]) -> usize,
    mut visit: impl FnMut(&[(&'a T, Option<u32>)]),
) -> PauseHistogram {
    let mut pauses = PauseHistogram::EMPTY;
    let mut members = Vec::new();
    let mut batches = items.chunks(BATCH).peekable();
    while let Some(batch) = batches.next() {
        StatusWord::announce_claims(batch.iter().map(|item| goroutine(item).status()));
        let mut rest = batch;
        while !rest.is_empty() {
            let (group, tail) = rest.split_at(group_len(rest).clamp(1, rest.len()));
            rest = tail;
            members.clear();
            let held = Instant::now();
            members.extend(
                group
                    .iter()
                    .map(|item| (item, goroutine(item).status().confirm_claim())),
            );
            visit(&members);
            let mut holds = 0;
            for &(item, status) in &members {
                if status.is_some() {
                    goroutine(item).status().release_scan();
                    holds += 1;
                }
            }
            let pause = held.elapsed();
            (0..holds).for_each(|_| pauses.record(pause));
        }
        // No claim is held here.
        if batches.peek().is_some() {
            between();
        }
    }
    pauses
}
