//! Taking goroutines' scan claims a batch at a time (the scanner's side of the handshake in
//! `sched::status`): one heavy fence per batch instead of one locked instruction on every
//! goroutine start.
//!
//! Invariants:
//! - the caller is the one scanner (it holds the `SCANNER` lock);
//! - a goroutine is held only while its own visit runs, never while the rest of its batch is
//!   handled: until its claim is confirmed an M starting it takes the claim back, and its claim
//!   is released as soon as its visit returns.

use std::time::Instant;

use super::pauses::PauseHistogram;
use crate::sched::G;
use crate::sched::status::StatusWord;

/// Goroutines announced per heavy fence. A fence costs about 12 µs with other threads running
/// (see `crate::fence`), so this keeps it near 0.05 µs per goroutine.
const BATCH: usize = 256;

/// Calls `visit` with each item of `items` (whose goroutine `goroutine` answers) and, if the
/// goroutine's claim could be held, the status it had (`None`: it runs, or it finished); a held
/// claim is released when `visit` returns. Answers how long each hold took.
pub(crate) fn visit_claimed<T>(
    items: &[T],
    goroutine: impl Fn(&T) -> &G,
    mut visit: impl FnMut(&T, Option<u32>),
) -> PauseHistogram {
    let mut pauses = PauseHistogram::EMPTY;
    for batch in items.chunks(BATCH) {
        StatusWord::announce_claims(batch.iter().map(|item| goroutine(item).status()));
        for item in batch {
            let status = goroutine(item).status();
            match status.confirm_claim() {
                Some(seen) => {
                    let held = Instant::now();
                    visit(item, Some(seen));
                    status.release_scan();
                    pauses.record(held.elapsed());
                }
                None => visit(item, None),
            }
        }
    }
    pauses
}
