//! Asymmetric fences: a cheap [`light`] fence for a hot path, paired with an expensive
//! [`heavy`] fence for a rare path.
//!
//! Two threads that each store to one word and then load the other's (a Dekker handshake) need
//! a full fence between the store and the load on both sides, or both may miss each other's
//! store. When one side runs millions of times a second (an M leaving user code, a mutex
//! unlock) and the other rarely (sysmon retaking a P, a locker about to park), the frequent side
//! can use a compiler fence only, and the rare side calls
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running thread of the
//! process pass through a full memory barrier before it returns. Between a light fence and a
//! heavy one, then, either the light side's store is visible after the heavy fence or the light
//! side's load comes after the barrier and sees the heavy side's store.
//!
//! Invariants:
//! - the light fence is a compiler fence only once the process is registered for expedited
//!   membarriers; before that, and on kernels without them (older than 4.14), both fences are
//!   full fences;
//! - a heavy fence is a membarrier whenever some light fence may have been a compiler fence: the
//!   registration happens before the choice is published, and never changes afterwards.
//!
//! A membarrier costs about 0.1 µs with no other thread running and about 12 µs with one (an
//! interrupt to every CPU that runs one of the process's threads, expensive under a hypervisor):
//! only paths that are rare next to their light side may take it.
//!
//! Under loom, which cannot model membarrier, both fences are sequentially consistent fences:
//! that is the ordering a membarrier guarantees between the two sides.

#[cfg(not(loom))]
mod membarrier {
    use std::sync::atomic::{AtomicU8, Ordering, compiler_fence, fence};

    const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    const UNKNOWN: u8 = 0;
    const SYMMETRIC: u8 = 1;
    const ASYMMETRIC: u8 = 2;

    /// The published choice: `UNKNOWN` until [`asymmetric`] first runs.
    static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

    fn membarrier(command: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes two integer arguments and touches no user memory.
        unsafe { libc::syscall(libc::SYS_membarrier, command, 0 as libc::c_long, 0) }
    }

    /// Whether the kernel runs expedited private membarriers for this process, registering the
    /// process on first use (Linux 4.14 and later).
    #[cold]
    pub(crate) fn asymmetric() -> bool {
        match MODE.load(Ordering::Acquire) {
            UNKNOWN => {}
            mode => return mode == ASYMMETRIC,
        }
        let supported = membarrier(MEMBARRIER_CMD_QUERY);
        let asymmetric = supported >= 0
            && supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED != 0
            && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
        // Racing first users agree: registration is idempotent, and the kernel answers alike.
        MODE.store(
            if asymmetric { ASYMMETRIC } else { SYMMETRIC },
            Ordering::Release,
        );
        asymmetric
    }

    /// The frequent side's fence between its store and its load.
    #[inline]
    pub(crate) fn light() {
        if MODE.load(Ordering::Relaxed) == ASYMMETRIC || asymmetric() {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The rare side's fence between its store and its load.
    pub(crate) fn heavy() {
        if !asymmetric() || membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 {
            fence(Ordering::SeqCst);
        }
    }
}

#[cfg(not(loom))]
pub(crate) use membarrier::{asymmetric, heavy, light};

/// The frequent side's fence (a sequentially consistent fence under loom).
#[cfg(loom)]
pub(crate) fn light() {
    crate::shim::atomic::fence(crate::shim::atomic::Ordering::SeqCst);
}

/// The rare side's fence (a sequentially consistent fence under loom).
#[cfg(loom)]
pub(crate) fn heavy() {
    crate::shim::atomic::fence(crate::shim::atomic::Ordering::SeqCst);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// The handshake itself (a store-buffering litmus test), many times over between two
    /// threads that start each round together: after both sides stored and fenced, at least one
    /// of them sees the other's store. Without the heavy side's membarrier, x86 store buffers
    /// let both miss within a few thousand rounds.
    #[test]
    fn a_light_and_a_heavy_side_never_both_miss() {
        let rounds: u32 = if std::env::var_os("GORT_LONG_TESTS").is_some() {
            200_000
        } else {
            20_000
        };
        let words = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let arrived = Arc::new(AtomicU32::new(0));
        // Both sides spin until the other arrived at the round, so they store almost together.
        let start = |arrived: &AtomicU32, round: u32| {
            arrived.fetch_add(1, Ordering::AcqRel);
            let mut spins = 0u32;
            while arrived.load(Ordering::Acquire) < 2 * round {
                spins += 1;
                if spins.is_multiple_of(1024) {
                    std::thread::yield_now();
                }
                std::hint::spin_loop();
            }
        };
        let heavy_side = {
            let (words, arrived) = (Arc::clone(&words), Arc::clone(&arrived));
            std::thread::spawn(move || {
                (1..=rounds)
                    .map(|round| {
                        start(&arrived, round);
                        words[1].store(round, Ordering::Relaxed);
                        heavy();
                        words[0].load(Ordering::Relaxed) == round
                    })
                    .collect::<Vec<bool>>()
            })
        };
        let light_saw: Vec<bool> = (1..=rounds)
            .map(|round| {
                start(&arrived, round);
                words[0].store(round, Ordering::Relaxed);
                light();
                words[1].load(Ordering::Relaxed) == round
            })
            .collect();
        let heavy_saw = heavy_side.join().unwrap();
        let missed = light_saw
            .iter()
            .zip(&heavy_saw)
            .filter(|(light, heavy)| !**light && !**heavy)
            .count();
        assert_eq!(missed, 0, "both sides missed each other in {missed} rounds");
    }
}
