//! Goroutines on an M:N work-stealing scheduler.
//!
//! Goroutines (G) run on OS threads (M) that hold processors (P): `procs` of them, each with a
//! local run queue, a `runnext` slot for direct handoff, and a share of a global queue that is
//! checked every 61 scheduling rounds. An M with nothing to do steals half of another P's queue;
//! idle Ms sleep until work arrives.
//!
//! # Migration and thread-locals
//!
//! A goroutine may resume on another OS thread after any call that can switch (spawn, yield,
//! join, channel operations, locks, sleeps, network I/O). Its closure is `Send + 'static`, so
//! what it owns may move. Thread-local storage does not move with it: a thread-local touched
//! across a switch may be another thread's, and the compiler may even keep a thread-local's
//! address from before the switch. Use goroutine-local storage, `lock_os_thread`, or start the
//! runtime with `migration(false)` for code that needs a stable thread.
//!
//! Invariants of the submodules are stated in their own docs: [`park`] (the wake-up protocol),
//! `scheduler` (queues, P ownership, wake-ups), `g` (status word and coroutine ownership).

#[cfg(not(loom))]
mod builder;
// Under loom only the models use these, and only part of them.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod completion;
#[cfg(not(loom))]
mod config;
#[cfg(not(loom))]
mod g;
#[cfg(not(loom))]
mod join;
#[cfg(not(loom))]
mod overflow;
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod ownership;
pub(crate) mod park;
#[cfg(not(loom))]
mod registry;
mod release;
#[cfg(not(loom))]
mod scheduler;
#[cfg_attr(loom, allow(dead_code))]
mod spinner_handoff;
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod status;
#[cfg(not(loom))]
mod sysmon;

#[cfg(not(loom))]
pub(crate) use self::g::G;
/// What channels, timers and locks park and wake goroutines (or plain threads) with.
#[cfg(not(loom))]
pub(crate) use self::g::WaitReason;
#[cfg(not(loom))]
pub(crate) use self::release::Release;
#[cfg(not(loom))]
pub(crate) use self::scheduler::{
    Blocker, Waiter, count_service_thread, current_g, park_current, park_releasing, ready_parked,
    yield_current,
};

#[cfg(not(loom))]
pub(crate) use self::g::GRef;

/// Every live goroutine (spawned and not finished), each with a reference, in no particular
/// order.
#[cfg(not(loom))]
pub(crate) fn live_goroutines() -> Vec<GRef> {
    registry::live()
}

/// Asks the processors to give back the pages of their cached stacks (idle ones at once, busy
/// ones when they go idle); answers the bytes given back since the last call.
#[cfg(not(loom))]
pub(crate) fn scavenge_stack_caches() -> usize {
    scheduler::get().map_or(0, |sched| sched.scavenge_stack_caches())
}

/// Whether goroutines wait for a processor in a queue any M can see (see
/// `Scheduler::any_work`); the runtime's own included.
#[cfg(not(loom))]
pub(crate) fn goroutines_waiting() -> bool {
    scheduler::get().is_some_and(|sched| sched.any_work())
}

/// The runtime's processors (1 if it is not running).
#[cfg(not(loom))]
pub(crate) fn procs() -> usize {
    scheduler::get().map_or(1, |sched| sched.procs())
}

/// Starts the runtime from the environment and defaults if it is not running.
#[cfg(not(loom))]
pub(crate) fn ensure_running() -> Result<(), ConfigError> {
    config::runtime().map(|_| ())
}

/// The running goroutine's local values, if the caller is a goroutine.
#[cfg(not(loom))]
pub(crate) fn current_locals() -> Option<&'static crate::local::Table> {
    scheduler::current_g().map(|g| &g.locals)
}

#[cfg(not(loom))]
pub(crate) use self::builder::spawn_system;
#[cfg(not(loom))]
pub use self::builder::{Builder, spawn};
#[cfg(not(loom))]
pub use self::config::{ConfigError, Runtime, RuntimeBuilder};
#[cfg(not(loom))]
pub use self::g::GoroutineId;
#[cfg(not(loom))]
pub use self::join::JoinHandle;
#[cfg(not(loom))]
pub use self::public::*;

#[cfg(not(loom))]
mod public {
    use std::fmt;

    use super::g::GRef;
    use super::g::{GoroutineId, WaitReason};
    use super::scheduler;

    /// A handle to a goroutine, from [`current`]: its identity, and a way to wake it from
    /// [`park`].
    ///
    /// # Examples
    ///
    /// ```
    /// let me = gort::Builder::new().name("me").spawn(|| {
    ///     let me = gort::current().expect("inside a goroutine");
    ///     (me.id(), me.name().map(str::to_owned))
    /// })?;
    /// let id = me.id();
    /// assert_eq!(me.join().unwrap(), (id, Some("me".to_owned())));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[derive(Clone)]
    pub struct Goroutine {
        g: GRef,
    }

    impl Goroutine {
        /// The goroutine's id.
        ///
        /// # Examples
        ///
        /// ```
        /// let id = gort::spawn(|| gort::current().unwrap().id()).join().unwrap();
        /// assert!(id.as_u64() >= 1);
        /// ```
        pub fn id(&self) -> GoroutineId {
            self.g.id()
        }

        /// The goroutine's name, if it was given one.
        ///
        /// # Examples
        ///
        /// ```
        /// let name = gort::Builder::new().name("n").spawn(|| gort::current().unwrap().name().map(str::to_owned))?;
        /// assert_eq!(name.join().unwrap().as_deref(), Some("n"));
        /// # Ok::<(), std::io::Error>(())
        /// ```
        pub fn name(&self) -> Option<&str> {
            self.g.name()
        }

        /// Wakes the goroutine from [`park`], or makes its next `park` return at once (like
        /// [`std::thread::Thread::unpark`]). Several unparks before a park count as one.
        ///
        /// # Examples
        ///
        /// ```
        /// let me = gort::spawn(|| gort::current().unwrap()).join().unwrap();
        /// me.unpark(); // waking a finished goroutine does nothing
        /// ```
        pub fn unpark(&self) {
            scheduler::unpark(GRef::clone(&self.g));
        }
    }

    impl fmt::Debug for Goroutine {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Goroutine")
                .field("id", &self.id())
                .field("name", &self.name())
                .finish()
        }
    }

    /// Parks the calling goroutine until [`Goroutine::unpark`] (on a plain thread:
    /// [`std::thread::park`]). It may also return spuriously, so wait in a loop on a condition,
    /// as with `std::thread::park`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let done = Arc::new(AtomicBool::new(false));
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let waiter = gort::spawn({
    ///     let done = Arc::clone(&done);
    ///     move || {
    ///         tx.send(gort::current().unwrap()).unwrap();
    ///         while !done.load(Ordering::Acquire) {
    ///             gort::park();
    ///         }
    ///     }
    /// });
    /// let goroutine = rx.recv().unwrap();
    /// done.store(true, Ordering::Release);
    /// goroutine.unpark();
    /// waiter.join().unwrap();
    /// ```
    pub fn park() {
        scheduler::park_current(WaitReason::Park);
    }

    /// The calling goroutine, or `None` on a plain thread.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::current().is_none());
    /// assert!(gort::spawn(|| gort::current().is_some()).join().unwrap());
    /// ```
    pub fn current() -> Option<Goroutine> {
        scheduler::current_g_ref().map(|g| Goroutine { g })
    }

    /// The number of goroutines that exist now (spawned and not yet finished). The runtime's own
    /// goroutine (a collector cycle) is not counted, as Go does not count its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::spawn(|| gort::num_goroutines());
    /// assert!(handle.join().unwrap() >= 1);
    /// ```
    pub fn num_goroutines() -> usize {
        scheduler::get().map_or(0, |sched| sched.goroutines())
    }

    /// Lets other goroutines run before the caller continues (on a plain thread:
    /// [`std::thread::yield_now`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::spawn(|| {
    ///     for _ in 0..3 {
    ///         gort::yield_now();
    ///     }
    /// });
    /// handle.join().unwrap();
    /// ```
    pub fn yield_now() {
        if !scheduler::yield_current() {
            std::thread::yield_now();
        }
    }

    /// Runs `f`, which may block its OS thread for long (a blocking system call, a long
    /// computation), without holding up other goroutines: the caller's processor goes to another
    /// thread at once, and the caller takes one back when `f` returns. Outside a goroutine it just
    /// runs `f`.
    ///
    /// Without it, sysmon hands the processor off after 10 ms anyway; `blocking` saves those 10 ms.
    ///
    /// Goroutines that must run on this same thread (locked with [`lock_os_thread`], or every
    /// goroutine that first ran here under `migration(false)`) wait until `f` returns: they cannot
    /// move. Do not make `f` wait for one of them.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::spawn(|| {
    ///     gort::blocking(|| std::fs::read_to_string("/proc/self/status").map(|s| s.len()))
    /// });
    /// assert!(handle.join().unwrap().unwrap() > 0);
    /// ```
    pub fn blocking<F, R>(f: F) -> R
    where
        F: FnOnce() -> R,
    {
        scheduler::blocking(f)
    }

    /// Keeps the calling goroutine on the OS thread it runs on now, until as many
    /// [`unlock_os_thread`] calls (Go's `runtime.LockOSThread`): for code that relies on
    /// thread-local state or thread identity across calls that can switch goroutines. Other
    /// goroutines still share the thread. Outside a goroutine it does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// gort::spawn(|| {
    ///     gort::lock_os_thread();
    ///     let thread = std::thread::current().id();
    ///     gort::yield_now();
    ///     assert_eq!(std::thread::current().id(), thread);
    ///     gort::unlock_os_thread();
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn lock_os_thread() {
        scheduler::lock_current(true);
    }

    /// Undoes one [`lock_os_thread`]; after the last one the goroutine may move between threads
    /// again (unless the runtime runs with `migration(false)`).
    ///
    /// # Examples
    ///
    /// ```
    /// gort::spawn(|| {
    ///     gort::lock_os_thread();
    ///     gort::unlock_os_thread();
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn unlock_os_thread() {
        scheduler::lock_current(false);
    }

    /// Runs `f` as the main goroutine and blocks the caller until it returns, starting the
    /// runtime if it is not running. A panic in `f` resumes in the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// let answer = gort::run(|| {
    ///     let handles: Vec<_> = (1..=3).map(|i| gort::spawn(move || i * 2)).collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    /// });
    /// assert_eq!(answer, 12);
    /// ```
    pub fn run<F, T>(f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let main = super::Builder::new()
            .name("main")
            .spawn(f)
            .expect("failed to start the main goroutine");
        match main.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
