//! Pacing: besides its interval, a cycle starts by itself when the goroutine stacks held from
//! the heap have doubled since the last cycle ended (Go's `GOGC=100`, applied to stacks). A
//! burst of goroutines that go deep and park is then measured and shrunk while it grows, not a
//! whole interval later; and since each paced cycle waits for the stacks to double, the cycles'
//! work stays proportional to the stacks allocated.
//!
//! Invariants:
//! - [`STACK_BYTES`] is the net size of the stack spans (stacks and segments) allocated from the
//!   heap: it counts every allocation and every release, so segment churn at a constant depth
//!   never reaches the goal;
//! - at most one paced request is outstanding: the thread that finds the goal reached takes it
//!   (swapping in `usize::MAX`), and only the end of a cycle sets a new one;
//! - nothing is paced until the collector starts, nor ever when cycles are off
//!   (`GORT_GC_INTERVAL=off`: cycles then run only on [`gc`](super::gc)).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The least goal: below it, a burst is too small to be worth a cycle (1,024 stacks of 64 KiB,
/// 256 of the default 256 KiB).
const MIN_GOAL: usize = 64 << 20;

/// Bytes of stack spans held from the heap.
static STACK_BYTES: AtomicUsize = AtomicUsize::new(0);
/// The size of [`STACK_BYTES`] at which a cycle starts.
static GOAL: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Whether cycles pace themselves (the collector runs cycles by itself).
static PACING: AtomicBool = AtomicBool::new(false);

/// Starts pacing, from what is held now; called once the collector runs cycles by itself.
pub(crate) fn start() {
    PACING.store(true, Ordering::Relaxed);
    cycle_ended();
}

/// Counts a stack span of `bytes` allocated from the heap, and starts a cycle if the stacks
/// reached the goal.
pub(crate) fn stack_allocated(bytes: usize) {
    let held = STACK_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    if held >= GOAL.load(Ordering::Relaxed)
        && GOAL.swap(usize::MAX, Ordering::Relaxed) != usize::MAX
    {
        super::request_cycle();
    }
}

/// Counts a stack span of `bytes` released to the heap.
pub(crate) fn stack_released(bytes: usize) {
    STACK_BYTES.fetch_sub(bytes, Ordering::Relaxed);
}

/// Sets the next goal at the end of a cycle: twice the stacks held now.
pub(crate) fn cycle_ended() {
    if PACING.load(Ordering::Relaxed) {
        let held = STACK_BYTES.load(Ordering::Relaxed);
        GOAL.store(held.saturating_mul(2).max(MIN_GOAL), Ordering::Relaxed);
    }
}
