//! Every goroutine record ever made (Go's `allgs`), for deadlock reports, dumps and the
//! collector, which list the users' goroutines (not the runtime's own). Records are never
//! freed, only recycled, so the list only grows, and only when a spawn finds no free record:
//! the spawn and exit paths never touch it.
//!
//! Invariant: a record is listed before its first goroutine is queued.

use parking_lot::Mutex;

use super::g::{G, GRef};

static ALL: Mutex<Vec<&'static G>> = Mutex::new(Vec::new());

/// Lists a new record.
pub(crate) fn add(record: &'static G) {
    ALL.lock().push(record);
}

/// Every live goroutine (spawned and not finished) but the runtime's own, in no particular
/// order.
pub(crate) fn live() -> Vec<GRef> {
    let records = ALL.lock().clone();
    records
        .into_iter()
        .filter_map(GRef::upgrade)
        .filter(|g| g.is_live() && !g.is_system())
        .collect()
}
