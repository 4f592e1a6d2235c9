//! Every goroutine record ever made (Go's `allgs`), for deadlock reports (and, later, dumps and
//! the collector). Records are never freed, only recycled, so the list only grows, and only
//! when a spawn finds no free record: the spawn and exit paths never touch it.
//!
//! Invariant: a record is listed before its first goroutine is queued.

use parking_lot::Mutex;

use super::g::{G, GRef};

static ALL: Mutex<Vec<&'static G>> = Mutex::new(Vec::new());

/// Lists a new record.
pub(crate) fn add(record: &'static G) {
    ALL.lock().push(record);
}

/// Calls `f` with every live goroutine (spawned and not finished), in no particular order.
pub(crate) fn for_each(mut f: impl FnMut(&G)) {
    let records = ALL.lock().clone();
    for record in records {
        if let Some(g) = GRef::upgrade(record)
            && g.is_live()
        {
            f(&g);
        }
    }
}
