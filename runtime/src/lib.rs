//! gort: a Go-like runtime for Rust.
//!
//! Goroutines are stackful green threads whose stacks are spans of a span heap: a stack starts
//! with one committed page, grows copy-free up to its reservation behind a guard region, and
//! never moves, so ordinary blocking Rust (references into the stack included) runs inside it.
//!
//! Spawn goroutines with [`spawn()`], [`go!`] or [`Builder`], join them through [`JoinHandle`],
//! and run a program's main goroutine with [`run`] or [`macro@main`]. Goroutines talk through
//! [channels](chan), wait on [timers](time) and [locks](sync), and do blocking-style socket I/O
//! through [`net`], driven by a netpoller. Underneath are the [span heap](heap) and [goroutine
//! stacks](stack).
//!
//! ```
//! let total = gort::run(|| {
//!     let workers: Vec<_> = (0..100).map(|i| gort::spawn(move || i)).collect();
//!     workers.into_iter().map(|w| w.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 4950);
//! ```
//!
//! A stack also runs a plain corosensei coroutine:
//!
//! ```
//! use corosensei::{Coroutine, CoroutineResult};
//! use gort::stack::{Stack, StackSize};
//!
//! let stack = Stack::new(StackSize::DEFAULT)?;
//! let mut coroutine = Coroutine::with_stack(stack, |yielder, start: u32| {
//!     let next = yielder.suspend(start + 1);
//!     next * 2
//! });
//! assert!(matches!(coroutine.resume(1), CoroutineResult::Yield(2)));
//! assert!(matches!(coroutine.resume(21), CoroutineResult::Return(42)));
//! # Ok::<(), gort::stack::StackError>(())
//! ```

#![deny(missing_docs)]

extern crate self as gort;

#[cfg(not(loom))]
pub mod chan;
/// Under loom, the channel handshake is model-checked on its own.
#[cfg(loom)]
#[path = "chan/operation.rs"]
mod chan_operation;
#[cfg(not(loom))]
mod collector;
/// Under loom, the collector's scan claim against segment growth is model-checked on its own.
#[cfg(all(test, loom))]
#[path = "collector/loom_model.rs"]
mod collector_loom_model;
#[cfg(not(loom))]
pub mod defer;
mod fence;
pub mod heap;
#[cfg(not(loom))]
mod local;
#[cfg(not(loom))]
pub mod net;
/// Under loom, the netpoller's readiness handshake is model-checked on its own.
#[cfg(all(test, loom))]
#[path = "net/readiness.rs"]
mod net_readiness;
mod sched;
mod shim;
#[cfg(not(loom))]
pub mod stack;
// Under loom only the mutex's state protocol is built, for its model.
pub mod sync;
#[cfg(not(loom))]
pub mod time;

#[cfg(not(loom))]
pub use self::sched::{
    Builder, ConfigError, Goroutine, GoroutineId, JoinHandle, Runtime, RuntimeBuilder, blocking,
    current, lock_os_thread, num_goroutines, park, run, spawn, unlock_os_thread, yield_now,
};
#[cfg(all(test, not(loom)))]
mod testing;

#[cfg(not(loom))]
pub use self::collector::{MemStats, PauseHistogram, dump_goroutines, gc, mem_stats};
#[cfg(not(loom))]
pub use self::local::LocalKey;
#[cfg(not(loom))]
pub use gort_macros::{go, main, select, spawn, test};

/// The README's example, compiled and run as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
