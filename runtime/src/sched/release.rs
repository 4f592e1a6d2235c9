//! What an M runs for a goroutine that parked with `Switch::ParkReleasing` (see
//! `scheduler::park_releasing`), once the goroutine is off its stack: a function and its
//! argument, as plain pointers, so that the park can hand the M a lock of any type to release.
//!
//! Invariant: a `Release` runs at most once, and its argument is valid until then (whoever
//! makes one promises it, through [`Release::new`]).

/// What an M runs for a goroutine that parked with `Switch::ParkReleasing`, once the
/// goroutine is off its stack and recorded as parked: typically the unlock of the lock under
/// which the one party that will ready it finds it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Release {
    run: unsafe fn(*const ()),
    arg: *const (),
}

impl Release {
    /// `run(arg)`, to be called once by the M.
    ///
    /// # Safety
    ///
    /// `run(arg)` is sound to call once from the M, after the goroutine has parked: `arg` stays
    /// valid until then (the parked goroutine's frame keeps it alive).
    pub(crate) unsafe fn new(run: unsafe fn(*const ()), arg: *const ()) -> Release {
        Release { run, arg }
    }

    /// Runs it.
    ///
    /// # Safety
    ///
    /// Called once, by the M the goroutine parked to, after it recorded the park.
    pub(crate) unsafe fn run(self) {
        // SAFETY: the contract of `new`, with the caller's.
        unsafe { (self.run)(self.arg) }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    //! A goroutine blocks on a channel: it queues its entry under the channel's lock and parks
    //! with the lock held, handing its M a [`Release`] that unlocks; the M records the park (the
    //! goroutine's run-queue reference, in its record), then runs the release. A sender that
    //! takes the entry under the lock moves the value; after unlocking, it readies the goroutine
    //! by taking the reference from the record. The reference must be there when the sender
    //! takes it, and the goroutine must resume with the value.
    //!
    //! Broken variant: `--cfg gort_loom_release_before_park` runs the release before the park is
    //! recorded, so the sender can reach the goroutine and find no reference (or race the M's
    //! write of it).

    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::{Arc, Mutex, MutexGuard};
    use loom::thread;

    use super::*;

    struct Shared {
        /// The channel's lock, over "the receiver's entry is queued".
        channel: Mutex<bool>,
        /// The receiver's slot for the value.
        slot: UnsafeCell<Option<u32>>,
        /// The goroutine record's slot for its run-queue reference.
        record: UnsafeCell<Option<u32>>,
        /// Set once the entry is queued (under the lock, still held).
        queued: AtomicBool,
        readied: AtomicBool,
    }

    /// The sender: once the entry is queued, takes it under the lock, moves the value, and
    /// readies the goroutine.
    fn send(shared: &Shared) {
        // Waiting for the entry here, rather than retrying the lock, keeps the model small;
        // the flag orders nothing the M writes after it.
        while !shared.queued.load(Ordering::Acquire) {
            thread::yield_now();
        }
        let mut entry = shared.channel.lock().unwrap();
        assert!(std::mem::take(&mut *entry), "the entry is queued");
        // SAFETY: the entry, taken under the lock, gives the sender the slot.
        shared.slot.with_mut(|slot| unsafe { *slot = Some(7) });
        drop(entry);
        // SAFETY: the one party that reached the parked goroutine takes its reference.
        let reference = shared.record.with_mut(|record| unsafe { (*record).take() });
        assert_eq!(
            reference,
            Some(1),
            "readied a goroutine whose park was not recorded"
        );
        shared.readied.store(true, Ordering::Release);
    }

    /// The release: drops the guard held in the `Option` at `held`.
    ///
    /// # Safety
    ///
    /// `held` points to a live `Option<MutexGuard<'_, bool>>`.
    unsafe fn unlock(held: *const ()) {
        // SAFETY: the caller's contract.
        drop(unsafe { (*held.cast::<Option<MutexGuard<'_, bool>>>().cast_mut()).take() });
    }

    fn park_under_the_lock() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let shared = Arc::new(Shared {
                channel: Mutex::new(false),
                slot: UnsafeCell::new(None),
                record: UnsafeCell::new(None),
                queued: AtomicBool::new(false),
                readied: AtomicBool::new(false),
            });
            let sender = {
                let shared = shared.clone();
                thread::spawn(move || send(&shared))
            };
            // The goroutine queues its entry and parks with the lock held.
            let mut held = Some(shared.channel.lock().unwrap());
            **held.as_mut().unwrap() = true;
            shared.queued.store(true, Ordering::Release);
            // SAFETY: `held` outlives the release, which runs once, below.
            let release = unsafe { Release::new(unlock, std::ptr::from_mut(&mut held).cast()) };
            // Its M, off the goroutine's stack: records the park, then releases.
            let record_park = || {
                shared.record.with_mut(|record| {
                    // SAFETY: nobody can reach the goroutine before the release.
                    unsafe { *record = Some(1) }
                });
            };
            #[cfg(not(gort_loom_release_before_park))]
            {
                record_park();
                // SAFETY: once, after the park is recorded.
                unsafe { release.run() };
            }
            #[cfg(gort_loom_release_before_park)]
            {
                // Broken on purpose: the sender can reach the goroutine before its record.
                // SAFETY: none; this is the broken variant the model must catch.
                unsafe { release.run() };
                record_park();
            }
            // Parked: only the sender's readying brings it back.
            while !shared.readied.load(Ordering::Acquire) {
                thread::yield_now();
            }
            // SAFETY: the sender wrote the value before readying the goroutine.
            assert_eq!(shared.slot.with(|slot| unsafe { *slot }), Some(7));
            sender.join().unwrap();
        });
    }

    #[cfg(not(gort_loom_release_before_park))]
    #[test]
    fn loom_a_goroutine_parked_under_a_lock_is_readied_with_its_value() {
        park_under_the_lock();
    }

    #[cfg(gort_loom_release_before_park)]
    #[test]
    fn loom_catches_a_release_before_the_park_is_recorded() {
        let caught = std::panic::catch_unwind(park_under_the_lock);
        assert!(caught.is_err(), "the model must find the missing reference");
    }
}
