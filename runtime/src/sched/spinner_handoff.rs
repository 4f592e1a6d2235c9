//! Handing a `wakep`'s spinning M to the M that waits in the netpoller.
//!
//! `wakep` counts one spinning M in `nmspinning` before it looks for an M to be it. When no idle
//! M is left but one M waits in the netpoller, that M is interrupted and becomes the spinner:
//! it takes the count over, so a second `wakep` during the same poll batch sees a spinner and
//! does not interrupt again. Whoever ends up with the count must give it back (by finding work
//! or by decrementing it); a count that nobody owns keeps `nmspinning` above 0 for good, and
//! every later `wakep` then does nothing.
//!
//! The handshake, against the poller's `BLOCKED` flag (set while an M waits in the poll, or is
//! about to):
//! - `wakep` sets `offered`, then interrupts the poller if `BLOCKED` is set; if it was, the
//!   count is handed over; if not, `wakep` takes `offered` back, and finding it gone means the
//!   M leaving the poller took it meanwhile (handed over as well);
//! - the M leaving the poller clears `BLOCKED`, then takes `offered`, whether or not it polled.
//!
//! Invariant: every offer is taken exactly once, by `wakep` or by the M leaving the poller.
//! All four accesses are sequentially consistent: an interrupt that found `BLOCKED` set comes
//! before the clearing, so the offer it follows is seen by the take after it.

use crate::shim::atomic::{AtomicBool, Ordering};

/// See the module docs.
pub(crate) struct SpinnerHandoff {
    offered: AtomicBool,
}

impl SpinnerHandoff {
    pub(crate) fn new() -> Self {
        Self {
            offered: AtomicBool::new(false),
        }
    }

    /// `wakep`'s side: offers its spinning count to the M waiting in the netpoller, whom
    /// `interrupt` wakes if one waits (answering whether one did). `true` if the count was
    /// handed over: that M owns it now.
    pub(crate) fn offer(&self, interrupt: impl FnOnce() -> bool) -> bool {
        self.offered.store(true, Ordering::SeqCst);
        interrupt() || !self.take()
    }

    /// The side of the M leaving the netpoller, after it cleared `BLOCKED`: `true` if it took
    /// an offered count (it is the spinning M now).
    pub(crate) fn take(&self) -> bool {
        // A compare-exchange rather than a swap: the same, and what loom 0.7 models faithfully
        // (see `net::readiness`'s model).
        self.offered
            .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! A `wakep` offers its count while the M in the poller stops waiting (it polled, or it
    //! set `BLOCKED` and then found nobody to wait for). Exactly one of them must end up owning
    //! the count.
    //!
    //! Broken variant: `--cfg gort_loom_early_spinner_take` has the M take the offer before it
    //! clears `BLOCKED`, so an offer made in between is handed to an M that already looked: the
    //! count is owned by nobody.

    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    use super::*;

    fn offer_against_leaving_the_poller() {
        loom::model(|| {
            let handoff = Arc::new(SpinnerHandoff::new());
            let blocked = Arc::new(AtomicBool::new(false));
            let poller_m = {
                let (handoff, blocked) = (handoff.clone(), blocked.clone());
                thread::spawn(move || {
                    blocked.store(true, Ordering::SeqCst);
                    // (It polls here, or finds nobody to wait for.)
                    #[cfg(gort_loom_early_spinner_take)]
                    let took = handoff.take();
                    blocked.store(false, Ordering::SeqCst);
                    #[cfg(not(gort_loom_early_spinner_take))]
                    let took = handoff.take();
                    took
                })
            };
            let handed = handoff.offer(|| blocked.load(Ordering::SeqCst));
            let took = poller_m.join().unwrap();
            assert_eq!(handed, took, "the spinning count is owned by {} parties", {
                usize::from(!handed) + usize::from(took)
            });
        });
    }

    #[cfg(not(gort_loom_early_spinner_take))]
    #[test]
    fn loom_a_spinning_count_is_owned_once() {
        offer_against_leaving_the_poller();
    }

    #[cfg(gort_loom_early_spinner_take)]
    #[test]
    fn loom_catches_an_early_take() {
        let caught = std::panic::catch_unwind(offer_against_leaving_the_poller);
        assert!(
            caught.is_err(),
            "the model must find the count owned by nobody"
        );
    }
}
