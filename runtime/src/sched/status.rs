//! A goroutine's status word (Go's `atomicstatus` with `casgstatus` and `_Gscan`): what the
//! goroutine is doing, and the collector's claim on it.
//!
//! Invariants:
//! - a goroutine starts running only through [`StatusWord::start_running`], which waits while
//!   the `SCAN` bit is held, so a collector holding the bit never sees its goroutine run;
//! - the collector takes the bit only on a `RUNNABLE` or `WAITING` goroutine
//!   ([`StatusWord::try_claim_scan`]), and while it holds the bit nobody else writes the word:
//!   only the M running a goroutine moves it out of `RUNNING` ([`StatusWord::leave_running`]),
//!   and spawn and recycling write records nothing refers to;
//! - the claim's acquire pairs with `leave_running`'s release, and the claim's release with
//!   `start_running`'s acquire: everything the goroutine wrote before it stopped (its saved frame
//!   pointer, its segment links, its defer chain) is visible to the scan, and everything the scan
//!   wrote is visible to the goroutine when it runs again.

use crate::shim::atomic::{AtomicU32, Ordering};

/// Not spawned yet, or free for reuse.
pub(crate) const IDLE: u32 = 0;
/// Spawned or yielded, queued to run.
pub(crate) const RUNNABLE: u32 = 1;
/// Running on an M.
pub(crate) const RUNNING: u32 = 2;
/// Parked, or woken and queued but not running yet (the park word tells which).
pub(crate) const WAITING: u32 = 3;
/// Finished.
pub(crate) const DEAD: u32 = 4;
/// Held by the collector while it scans the goroutine's stack.
pub(crate) const SCAN: u32 = 0x1000;

/// The status word.
pub(crate) struct StatusWord(AtomicU32);

impl StatusWord {
    pub(crate) fn new(status: u32) -> StatusWord {
        StatusWord(AtomicU32::new(status))
    }

    /// The status without the scan bit.
    pub(crate) fn load(&self) -> u32 {
        self.0.load(Ordering::Acquire) & !SCAN
    }

    /// Writes the status of a record nothing else refers to (spawn, recycling).
    pub(crate) fn set_unshared(&self, status: u32) {
        self.0.store(status, Ordering::Relaxed);
    }

    /// Moves the status from `RUNNING` to `to`. A plain store suffices: a scan only takes the
    /// `SCAN` bit of a runnable or waiting goroutine, so nothing else writes a running one's
    /// status.
    pub(crate) fn leave_running(&self, to: u32) {
        debug_assert_eq!(self.0.load(Ordering::Relaxed), RUNNING);
        self.0.store(to, Ordering::Release);
    }

    /// Moves the status of a queued goroutine (`RUNNABLE`, or `WAITING` if it was woken from a
    /// park) to `RUNNING`, waiting while a scan holds the `SCAN` bit. `Err` with the status
    /// seen if the goroutine is not queued.
    pub(crate) fn start_running(&self) -> Result<(), u32> {
        // The broken variant ignores the scan bit: the goroutine runs under a scan.
        #[cfg(all(loom, gort_loom_blind_start))]
        self.0.store(RUNNING, Ordering::Release);
        #[cfg(not(all(loom, gort_loom_blind_start)))]
        {
            let mut from = self.0.load(Ordering::Relaxed) & !SCAN;
            while let Err(actual) =
                self.0
                    .compare_exchange_weak(from, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            {
                from = actual & !SCAN;
                if from != RUNNABLE && from != WAITING {
                    return Err(actual);
                }
                crate::shim::spin_loop();
            }
        }
        Ok(())
    }

    /// Whether the goroutine has been spawned and has not finished.
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.load(), RUNNABLE | RUNNING | WAITING)
    }

    /// Takes the `SCAN` bit of a runnable or waiting goroutine: `Some(status)` with the status
    /// it had, or `None` if it runs, has not been spawned, has finished, or is claimed already.
    pub(crate) fn try_claim_scan(&self) -> Option<u32> {
        let status = self.0.load(Ordering::Relaxed);
        if status != RUNNABLE && status != WAITING {
            return None;
        }
        self.0
            .compare_exchange(status, status | SCAN, Ordering::Acquire, Ordering::Relaxed)
            .ok()
    }

    /// Gives back the `SCAN` bit taken by [`StatusWord::try_claim_scan`], which answered
    /// `status`: nobody else wrote the word meanwhile.
    pub(crate) fn release_scan(&self, status: u32) {
        debug_assert_eq!(self.0.load(Ordering::Relaxed), status | SCAN);
        self.0.store(status, Ordering::Release);
    }
}
