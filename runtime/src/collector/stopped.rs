//! Where a stopped goroutine's frames are: the record a goroutine leaves in its `G` each time it
//! suspends, which the collector and the goroutine dump start their frame walks from.
//!
//! Invariants:
//! - the goroutine writes the record as it suspends (and `entry` once as it starts); a collector
//!   reads it, and writes `waiting_since` and `ran`, only while it holds the goroutine's scan
//!   claim; the status word's release/acquire pairs order the two (see `sched::status`);
//! - `measured` is the collector's own: only collector cycles (one at a time) read and write it
//!   (and spawn resets it while no one refers to the record), claim or not;
//! - `fp` is 0 until the goroutine first suspends: a goroutine that never ran has no frames;
//! - `fp`, `sp` and `pc` describe the goroutine's stack as it is until it runs again.

use std::cell::Cell;

use crate::stack::registers::{frame_pointer, program_counter, stack_pointer};

/// The record (one per goroutine record).
pub(crate) struct Stopped {
    /// The frame pointer of the frame that suspended, or 0.
    fp: Cell<usize>,
    /// The stack pointer where it suspended.
    sp: Cell<usize>,
    /// Where it suspended, inside the frame at `fp` (which may have the blocking call inlined).
    pc: Cell<usize>,
    /// The frame pointer of the goroutine's entry frame: frame walks end there.
    entry: Cell<usize>,
    /// Whether the goroutine ran since the collector last scanned it.
    ran: Cell<bool>,
    /// When the collector first saw the goroutine's current wait (milliseconds since the
    /// collector's epoch, at least 1), or 0.
    waiting_since: Cell<u64>,
    /// The stack bytes in use and resident that the last scan measured.
    measured: Cell<(usize, usize)>,
}

impl Stopped {
    pub(crate) const fn new() -> Stopped {
        Stopped {
            fp: Cell::new(0),
            sp: Cell::new(0),
            pc: Cell::new(0),
            entry: Cell::new(0),
            ran: Cell::new(true),
            waiting_since: Cell::new(0),
            measured: Cell::new((0, 0)),
        }
    }

    /// Forgets a previous goroutine's record (the `G` is being reused).
    pub(crate) fn reset(&self) {
        self.fp.set(0);
        self.sp.set(0);
        self.pc.set(0);
        self.entry.set(0);
        self.ran.set(true);
        self.waiting_since.set(0);
        self.measured.set((0, 0));
    }

    /// Called by the goroutine as it starts, in its entry frame.
    #[inline(always)]
    pub(crate) fn record_entry(&self) {
        self.entry.set(frame_pointer());
    }

    /// Called by the goroutine just before it suspends, in the frame that suspends.
    #[inline(always)]
    pub(crate) fn record_suspend(&self) {
        self.fp.set(frame_pointer());
        self.sp.set(stack_pointer());
        self.pc.set(program_counter());
        self.ran.set(true);
        self.waiting_since.set(0);
    }

    /// The frame pointer it suspended with (0 if it never did) and its entry frame pointer.
    pub(crate) fn frames(&self) -> (usize, usize) {
        (self.fp.get(), self.entry.get())
    }

    /// Where it suspended: the innermost entry of its traceback (0 if it never did).
    pub(crate) fn pc(&self) -> usize {
        self.pc.get()
    }

    pub(crate) fn sp(&self) -> usize {
        self.sp.get()
    }

    /// Whether it ran since the collector last scanned it (without forgetting it).
    pub(crate) fn ran(&self) -> bool {
        self.ran.get()
    }

    /// Whether it ran since the last call (the caller scans it now).
    pub(crate) fn take_ran(&self) -> bool {
        self.ran.replace(false)
    }

    /// Remembers what a scan measured: stack bytes in use and resident.
    pub(crate) fn remember(&self, in_use: usize, resident: usize) {
        self.measured.set((in_use, resident));
    }

    /// What the last scan measured (for a goroutine that has not run since).
    pub(crate) fn measured(&self) -> (usize, usize) {
        self.measured.get()
    }

    /// When its current wait was first seen, recording `now` if this is the first look.
    pub(crate) fn waiting_since(&self, now: u64) -> u64 {
        if self.waiting_since.get() == 0 {
            self.waiting_since.set(now.max(1));
        }
        self.waiting_since.get()
    }
}
