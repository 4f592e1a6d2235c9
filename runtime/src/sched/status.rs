//! A goroutine's status (Go's `atomicstatus`), and the scanner's claim on it (Go's `_Gscan`
//! bit, moved to a word of its own so that starting a goroutine costs no locked instruction).
//!
//! Two words:
//! - the status: `IDLE`, `RUNNABLE`, `RUNNING`, `WAITING`, `DEAD`. Only Ms write it (and spawn
//!   and recycling, on records nothing refers to), with plain stores;
//! - the claim: `FREE`, `ANNOUNCED` (a scanner wants the goroutine), `HELD` (a scanner walks its
//!   stack). The scanner announces and holds; an M may only take an announced claim back.
//!
//! Starting a goroutine is the frequent side of an asymmetric Dekker handshake (see
//! `crate::fence`): the M stores `RUNNING`, passes a light fence, and looks at the claim. A
//! scanner announces claims on a batch of goroutines, passes one heavy fence for the whole
//! batch, then confirms each claim by looking at the status. At least one of the two sees the
//! other's store, so:
//! - an M that sees the claim `FREE` runs the goroutine, and a scanner that announced meanwhile
//!   sees `RUNNING` and gives up its claim;
//! - an M that sees `ANNOUNCED` takes the claim back (a compare-exchange, only on this rare
//!   path) and runs the goroutine: the scanner's confirmation then fails;
//! - an M that sees `HELD` waits until the scanner releases it: a goroutine is held only for its
//!   own scan, never while the scanner handles the rest of its batch.
//!
//! Invariants:
//! - a scanner holds a claim only on a goroutine whose status it saw `RUNNABLE` or `WAITING`
//!   after its heavy fence, and while it holds it no M runs the goroutine;
//! - one scanner at a time (the collector's `SCANNER` lock), so an announced claim is its own;
//! - the status load that confirms a claim acquires what the goroutine's M released when it
//!   stopped (`leave_running`): its saved frame pointer, its segment links, its defer chain; a
//!   release frees the claim with a release store that the next start acquires, so what the
//!   scan wrote is visible to the goroutine when it runs again.

use crate::shim::atomic::{AtomicU32, Ordering};

/// Not spawned yet, or free for reuse.
pub(crate) const IDLE: u32 = 0;
/// Spawned or yielded, queued to run.
pub(crate) const RUNNABLE: u32 = 1;
/// Running on an M (or about to, once a scan holding it is done).
pub(crate) const RUNNING: u32 = 2;
/// Parked, or woken and queued but not running yet (the park word tells which).
pub(crate) const WAITING: u32 = 3;
/// Finished.
pub(crate) const DEAD: u32 = 4;

/// No scanner wants the goroutine.
const FREE: u32 = 0;
/// A scanner announced a claim, not confirmed yet: an M may take it back.
const ANNOUNCED: u32 = 1;
/// A scanner holds the goroutine: it must not run until the claim is released.
const HELD: u32 = 2;

/// The status word and the claim word.
pub(crate) struct StatusWord {
    status: AtomicU32,
    claim: AtomicU32,
}

impl StatusWord {
    pub(crate) fn new(status: u32) -> StatusWord {
        StatusWord {
            status: AtomicU32::new(status),
            claim: AtomicU32::new(FREE),
        }
    }

    /// The status.
    pub(crate) fn load(&self) -> u32 {
        self.status.load(Ordering::Acquire)
    }

    /// Writes the status of a record nothing else refers to (spawn, recycling).
    pub(crate) fn set_unshared(&self, status: u32) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Moves the status from `RUNNING` to `to`: a plain store, as only the M running a goroutine
    /// writes its status.
    pub(crate) fn leave_running(&self, to: u32) {
        debug_assert_eq!(self.status.load(Ordering::Relaxed), RUNNING);
        self.status.store(to, Ordering::Release);
    }

    /// Moves the status of a queued goroutine (`RUNNABLE`, or `WAITING` if it was woken from a
    /// park) to `RUNNING`, waiting while a scan holds it. `Err` with the status seen if the
    /// goroutine is not queued.
    #[inline]
    pub(crate) fn start_running(&self) -> Result<(), u32> {
        let from = self.status.load(Ordering::Relaxed);
        if from != RUNNABLE && from != WAITING {
            return Err(from);
        }
        self.status.store(RUNNING, Ordering::Relaxed);
        // The broken variant ignores the claim: the goroutine runs under a scan.
        #[cfg(not(all(loom, gort_loom_blind_start)))]
        {
            crate::fence::light();
            if self.claim.load(Ordering::Acquire) != FREE {
                self.wait_for_scan();
            }
        }
        Ok(())
    }

    /// The rare side of [`StatusWord::start_running`]: takes back a claim only announced, or
    /// waits for the scan that holds it.
    #[cold]
    fn wait_for_scan(&self) {
        loop {
            match self.claim.load(Ordering::Acquire) {
                FREE => return,
                ANNOUNCED => {
                    if self
                        .claim
                        .compare_exchange(ANNOUNCED, FREE, Ordering::Acquire, Ordering::Acquire)
                        .is_ok()
                    {
                        return;
                    }
                }
                _ => crate::shim::spin_loop(),
            }
        }
    }

    /// Whether the goroutine has been spawned and has not finished.
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.load(), RUNNABLE | RUNNING | WAITING)
    }

    /// Scanner: announces claims on every goroutine of `words`, then passes the heavy fence
    /// once; each claim is then confirmed with [`StatusWord::confirm_claim`]. The caller is the
    /// one scanner.
    pub(crate) fn announce_claims<'a>(words: impl IntoIterator<Item = &'a StatusWord>) {
        for word in words {
            word.claim.store(ANNOUNCED, Ordering::Relaxed);
        }
        // The broken variant skips the fence: an M may start a goroutine the scanner then holds.
        #[cfg(not(all(loom, gort_loom_unfenced_claim)))]
        crate::fence::heavy();
    }

    /// Scanner, after [`StatusWord::announce_claims`]: holds the goroutine if it is runnable or
    /// waiting and no M took the claim back, answering its status; otherwise gives the claim up
    /// and answers `None`. A held claim is given back with [`StatusWord::release_scan`].
    pub(crate) fn confirm_claim(&self) -> Option<u32> {
        let status = self.status.load(Ordering::Acquire);
        if status != RUNNABLE && status != WAITING {
            // An M may have taken it back already; either way it ends `FREE`.
            let _ =
                self.claim
                    .compare_exchange(ANNOUNCED, FREE, Ordering::Relaxed, Ordering::Relaxed);
            return None;
        }
        self.claim
            .compare_exchange(ANNOUNCED, HELD, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| status)
    }

    /// Scanner: releases a claim [`StatusWord::confirm_claim`] held.
    pub(crate) fn release_scan(&self) {
        debug_assert_eq!(self.claim.load(Ordering::Relaxed), HELD);
        self.claim.store(FREE, Ordering::Release);
    }
}
