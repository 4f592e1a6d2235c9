//! Running closures as may coroutines, for the benchmarks that put may beside gort.
//!
//! Invariant: the closures given here touch no thread-locals, as may's `spawn` requires.

/// Spawns `f` as a may coroutine.
pub fn may_spawn<F, T>(f: F) -> may::coroutine::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: the closures here touch no thread-locals (module invariant), as `spawn` requires.
    unsafe { may::coroutine::spawn(f) }
}

/// Runs `f` as a may coroutine and waits for its result.
pub fn may_run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    may_spawn(f).join().unwrap()
}
