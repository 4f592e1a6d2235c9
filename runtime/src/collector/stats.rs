//! [`MemStats`]: what the collector measured, published at the end of each cycle.
//!
//! Invariant: the published record changes only at the end of a cycle, whole, under its lock;
//! [`mem_stats`] adds the live counts (goroutines, spans) at the time of the call.

use std::time::Duration;

use parking_lot::Mutex;

use super::PauseHistogram;
use crate::heap::{self, ByKind};

/// Memory statistics of goroutine stacks and of the collector, like Go's `runtime.MemStats`.
///
/// Counts of goroutines and spans are taken when [`mem_stats`] is called; stack usage comes from
/// the last collector cycle, and the totals add up every cycle since the runtime started.
///
/// # Examples
///
/// ```
/// gort::gc();
/// let stats = gort::mem_stats();
/// assert!(stats.cycles >= 1);
/// assert!(stats.stack_reserved_bytes >= stats.stack_resident_bytes);
/// println!("{} goroutines, {} KiB of stack resident", stats.goroutines, stats.stack_resident_bytes / 1024);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemStats {
    /// Goroutines spawned and not finished.
    pub goroutines: usize,
    /// Address space held by stacks and stack segments (in use, spare, cached or pooled).
    pub stack_reserved_bytes: usize,
    /// Committed bytes of the goroutines' stacks and segments, as the last cycle measured them
    /// (an estimate: goroutines running during the cycle keep their previous measure).
    pub stack_resident_bytes: usize,
    /// Stack bytes in use by the goroutines at the last cycle (from their stack pointers).
    pub stack_in_use_bytes: usize,
    /// The deepest stack in use at the last cycle.
    pub max_stack_in_use_bytes: usize,
    /// Stack segments in use or kept spare.
    pub segments: usize,
    /// Spans of each kind in the span heap.
    pub spans: ByKind,
    /// Collector cycles completed.
    pub cycles: u64,
    /// Goroutines the last cycle scanned (the others were running or not started).
    pub goroutines_scanned: usize,
    /// Frames and defer records walked, in total.
    pub frames_walked: u64,
    /// Bytes of stack pages given back below parked goroutines' stack pointers and in spare
    /// segments, in total.
    pub shrunk_bytes: u64,
    /// Bytes of pages of unused pooled stacks and released spare segments given back, in total.
    pub scavenged_bytes: u64,
    /// Bad pointers found in goroutines' frame and defer chains, in total.
    pub bad_pointers: u64,
    /// How long the last cycle took.
    pub last_cycle: Duration,
    /// The longest the last cycle held one goroutine (its pause).
    pub last_cycle_max_pause: Duration,
    /// How long the last cycle held each goroutine it scanned (and each it shrank, a second
    /// time), per power-of-two range of durations.
    pub last_cycle_pauses: PauseHistogram,
}

static PUBLISHED: Mutex<MemStats> = Mutex::new(MemStats {
    goroutines: 0,
    stack_reserved_bytes: 0,
    stack_resident_bytes: 0,
    stack_in_use_bytes: 0,
    max_stack_in_use_bytes: 0,
    segments: 0,
    spans: ByKind::ZERO,
    cycles: 0,
    goroutines_scanned: 0,
    frames_walked: 0,
    shrunk_bytes: 0,
    scavenged_bytes: 0,
    bad_pointers: 0,
    last_cycle: Duration::ZERO,
    last_cycle_max_pause: Duration::ZERO,
    last_cycle_pauses: PauseHistogram::EMPTY,
});

/// Publishes a cycle's statistics.
pub(crate) fn publish(stats: MemStats) {
    *PUBLISHED.lock() = stats;
}

/// The statistics published by the last cycle, for the next cycle to add to.
pub(crate) fn last() -> MemStats {
    *PUBLISHED.lock()
}

/// The memory statistics now (see [`MemStats`]).
///
/// # Examples
///
/// ```
/// let stats = gort::mem_stats();
/// assert_eq!(stats.goroutines, gort::num_goroutines());
/// ```
pub fn mem_stats() -> MemStats {
    let heap = heap::stats();
    MemStats {
        goroutines: crate::num_goroutines(),
        stack_reserved_bytes: heap.bytes_by_kind.stack + heap.bytes_by_kind.stack_segment,
        segments: heap.spans_by_kind.stack_segment,
        spans: heap.spans_by_kind,
        ..last()
    }
}
