//! Who holds a processor (P): its M, or sysmon taking it from an M stuck in user code.
//!
//! An M switches goroutines millions of times a second and, on each switch, lends its P to user
//! code (sysmon may retake it from then on) and takes it back. sysmon retakes a P about once per
//! 10 ms at most. The protocol puts the cost on sysmon's side (an asymmetric Dekker handshake):
//! taking the P back is a store, a light fence and a load, while sysmon pays the heavy fence (see
//! `crate::fence`: a compiler fence against a membarrier, or full fences on both sides where the
//! kernel lacks membarrier).
//!
//! Two words:
//! - the P's [`Ownership`] word, `epoch << 8 | state` (`HELD`, `RETAKING`, `IDLE`): every new
//!   holder gets a new epoch, so an M that lost its P can never take it back;
//! - each M's [`UserFlag`], written only by that M: the P and epoch it lent to user code, and
//!   whether user code runs now.
//!
//! The handshake: the M leaving user code writes its flag, fences, then reads the P's word;
//! sysmon moves the word `HELD -> RETAKING`, fences (heavily), then reads the M's flag. At least
//! one of them sees the other's write, so:
//! - an M that reads `HELD` keeps its P, and sysmon then sees the M out of user code and puts
//!   the word back to `HELD`;
//! - an M that reads `RETAKING` waits for sysmon's verdict: sysmon retakes the P (a new epoch)
//!   only if it saw the M still in user code.
//!
//! Invariants:
//! - a P's queues are touched only by its holder outside user code: the M after `take_back`
//!   answered `true` (or after `acquire`), or sysmon after `retake` answered `Some`;
//! - only an M writes its own flag, so a stale write cannot hide another M's state;
//! - `RETAKING` is set and cleared only by sysmon, and lasts only for its handshake.

use crate::fence;
use crate::shim::atomic::{AtomicU64, Ordering};

const HELD: u64 = 0;
const RETAKING: u64 = 1;
const IDLE: u64 = 2;

/// The state of a P's ownership word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Held,
    Retaking,
    Idle,
}

/// A P's ownership word.
pub(crate) struct Ownership {
    word: AtomicU64,
}

impl Ownership {
    pub(crate) fn new() -> Ownership {
        Ownership {
            word: AtomicU64::new(IDLE),
        }
    }

    /// Makes the caller the P's new holder and answers its epoch. The caller owns the P
    /// exclusively (it took it off the idle list, or won it from sysmon's retake).
    pub(crate) fn acquire(&self) -> u64 {
        let epoch = (self.word.load(Ordering::Relaxed) >> 8) + 1;
        self.word.store(epoch << 8 | HELD, Ordering::Release);
        epoch
    }

    /// Marks the P idle (its holder gives it up).
    pub(crate) fn release(&self) {
        let epoch = self.word.load(Ordering::Relaxed) >> 8;
        self.word.store(epoch << 8 | IDLE, Ordering::Release);
    }

    /// The current epoch and state.
    pub(crate) fn load(&self) -> (u64, State) {
        let word = self.word.load(Ordering::Acquire);
        let state = match word & 0xff {
            HELD => State::Held,
            RETAKING => State::Retaking,
            _ => State::Idle,
        };
        (word >> 8, state)
    }

    /// The holder of `lease`, leaving user code (its flag `user`): `true` if it still holds the
    /// P, `false` if sysmon retook it.
    pub(crate) fn take_back(&self, user: &UserFlag, lease: Lease) -> bool {
        user.0.store(lease.tag, Ordering::Relaxed);
        fence::light();
        loop {
            let word = self.word.load(Ordering::Acquire);
            if word == lease.epoch << 8 | HELD {
                return true;
            }
            if word != lease.epoch << 8 | RETAKING {
                return false;
            }
            // sysmon decides within its handshake.
            std::hint::spin_loop();
            #[cfg(loom)]
            loom::thread::yield_now();
        }
    }

    /// sysmon: retakes the P from the holder of `epoch` (whose flag is `user`) if that holder
    /// runs user code; answers the epoch sysmon now holds the P with.
    pub(crate) fn retake(&self, user: &UserFlag, p: usize, epoch: u64) -> Option<u64> {
        let lent = tag(p, epoch) | IN_USER;
        #[cfg(all(loom, gort_loom_blind_retake))]
        let seen_before = user.0.load(Ordering::Acquire);
        if self
            .word
            .compare_exchange(
                epoch << 8 | HELD,
                epoch << 8 | RETAKING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return None;
        }
        fence::heavy();
        // Broken on purpose: deciding on a look taken before the handshake.
        #[cfg(all(loom, gort_loom_blind_retake))]
        let seen = seen_before;
        #[cfg(not(all(loom, gort_loom_blind_retake)))]
        let seen = user.0.load(Ordering::Acquire);
        if seen == lent {
            let next = epoch + 1;
            self.word.store(next << 8 | HELD, Ordering::Release);
            Some(next)
        } else {
            self.word.store(epoch << 8 | HELD, Ordering::Release);
            None
        }
    }
}

/// Set in a flag while user code runs.
const IN_USER: u64 = 1;
/// Bits of a flag that hold the P's index; the epoch takes the rest above the `IN_USER` bit.
const P_BITS: u32 = 16;

/// What an M has lent to user code: `p << 48 | epoch << 1 | in_user`.
fn tag(p: usize, epoch: u64) -> u64 {
    debug_assert!(p < 1 << P_BITS);
    (p as u64) << (64 - P_BITS) | (epoch << 1 & ((1 << (64 - P_BITS)) - 1))
}

/// What an M holds: a P at an epoch, with the flag value that names them, computed once.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lease {
    epoch: u64,
    tag: u64,
}

impl Lease {
    pub(crate) fn new(p: usize, epoch: u64) -> Lease {
        Lease {
            epoch,
            tag: tag(p, epoch),
        }
    }
}

/// An M's flag: which P and epoch it lent to user code, and whether user code runs.
pub(crate) struct UserFlag(AtomicU64);

impl UserFlag {
    pub(crate) fn new() -> UserFlag {
        UserFlag(AtomicU64::new(0))
    }

    /// The holder of `lease` enters user code: sysmon may retake the P from now on. The release
    /// store orders the holder's queue accesses before a retake that sees it.
    pub(crate) fn lend(&self, lease: Lease) {
        self.0.store(lease.tag | IN_USER, Ordering::Release);
    }

    /// Whether the M runs user code with P `p` at `epoch`.
    pub(crate) fn lent(&self, p: usize, epoch: u64) -> bool {
        self.0.load(Ordering::Relaxed) == tag(p, epoch) | IN_USER
    }
}

/// Registers the process for asymmetric fences when the scheduler starts (`crate::fence` would
/// on first use anyway), so that the choice is logged once.
#[cfg(not(loom))]
pub(crate) fn init() {
    log::debug!(
        "gort: processor retakes use {}",
        if crate::fence::asymmetric() {
            "membarrier (asymmetric fences)"
        } else {
            "full fences (no membarrier)"
        }
    );
}

#[cfg(all(test, loom))]
mod loom_model {
    //! An M lends its P to user code and takes it back while sysmon tries to retake it. Both
    //! write the P's queues (a loom cell) when they believe they hold it; loom reports any
    //! overlap, and exactly one of them ends up holding the P.
    //!
    //! Broken variant: `--cfg gort_loom_blind_retake` makes sysmon decide on the M's flag as it
    //! saw it before the handshake.

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    struct Shared {
        ownership: Ownership,
        flag: UserFlag,
        queues: UnsafeCell<u32>,
    }

    fn retake_against_take_back() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let shared = Arc::new(Shared {
                ownership: Ownership::new(),
                flag: UserFlag::new(),
                queues: UnsafeCell::new(0),
            });
            let epoch = shared.ownership.acquire();
            let lease = Lease::new(0, epoch);
            shared.flag.lend(lease);
            let sysmon = {
                let shared = shared.clone();
                thread::spawn(move || {
                    let retook = shared.ownership.retake(&shared.flag, 0, epoch).is_some();
                    if retook {
                        // SAFETY: sysmon holds the P (the invariant under test).
                        shared.queues.with_mut(|queues| unsafe { *queues += 1 });
                    }
                    retook
                })
            };
            let kept = shared.ownership.take_back(&shared.flag, lease);
            if kept {
                // SAFETY: the M holds the P (the invariant under test).
                shared.queues.with_mut(|queues| unsafe { *queues += 1 });
            }
            let retook = sysmon.join().unwrap();
            assert!(kept != retook, "kept {kept}, retook {retook}");
        });
    }

    #[cfg(not(gort_loom_blind_retake))]
    #[test]
    fn loom_retake_and_take_back_exclude_each_other() {
        retake_against_take_back();
    }

    #[cfg(gort_loom_blind_retake)]
    #[test]
    fn loom_catches_a_blind_retake() {
        let caught = std::panic::catch_unwind(retake_against_take_back);
        assert!(caught.is_err(), "the model must find the double holder");
    }
}
