//! The atomics and mutex the runtime's concurrency protocols are written against.
//!
//! Under `cfg(loom)` these are loom's model-checked types, so the protocols written against this
//! module (span publication today; parking and channels later) are the exact code the loom models
//! explore. Otherwise they are `std`'s atomics and `parking_lot`'s mutex.
//!
//! Invariant: protocol code imports atomics, fences and mutexes only from here, never from `std`
//! directly; a direct import would silently escape the model.

#[cfg(loom)]
pub(crate) use loom::sync::atomic;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

#[cfg(loom)]
pub(crate) use loom::sync::MutexGuard;
#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

/// loom's mutex behind `parking_lot`'s interface (`lock` returns the guard directly).
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        // A poisoned lock means a model thread already panicked; that panic is the report.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A busy-wait hint; under loom, a yield so the model lets the awaited thread run.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
