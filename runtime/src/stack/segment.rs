//! Growing a stack beyond its reservation: segments, and the per-goroutine (or per-thread)
//! record of which stack or segment runs now.
//!
//! A segment is a guarded span of kind `StackSegment`, allocated by the heap's protocol: its
//! publication barrier runs before the span's address leaves the allocator, so before anything
//! (this record, a frame link) points into it. [`Growth::run_on_segment`] runs a closure on it
//! with corosensei's `on_stack`, whose trampoline saves the caller's frame pointer and return
//! address on the caller's stack: a frame-pointer walk, the unwinder and backtraces go from the
//! segment's frames on into the caller's. A panic unwinds the segment's frames, is caught at the
//! segment's root and goes on unwinding from the caller's frame.
//!
//! Invariants:
//! - a [`Growth`] belongs to one goroutine (in its record) or one plain thread (thread-local).
//!   Only that goroutine or thread touches it, or the M before the goroutine first runs and
//!   after it ends, or a collector that holds the goroutine's scan claim (it is not running);
//! - `bottom` is the lowest usable address of the stack or segment that runs now;
//! - `active` lists the segments in use, innermost first. Each [`Link`] lives in the frame of
//!   the call that runs on its segment and leaves the list before that frame ends, also when a
//!   panic unwinds it;
//! - the spare is a segment no frame uses, kept so that a call crossing the boundary in a loop
//!   does not allocate each time (Go's hot-split problem);
//! - a segment's owner word names its goroutine (0 on a thread) while it is in use or spare, for
//!   the fault handler and the collector.

use std::cell::Cell;
use std::ptr;

use corosensei::stack::StackPointer;

use super::StackSize;
use super::raw::RawStack;

/// Which stack or segment a goroutine or thread runs on, the segments it uses and its spare.
pub(crate) struct Growth {
    bottom: Cell<usize>,
    active: Cell<*const Link>,
    spare: Cell<Option<RawStack>>,
    /// The owner word of its segments: the goroutine record's address, or 0 on a thread.
    owner: Cell<u64>,
}

/// A segment in use, in the frame of the call that runs on it.
struct Link {
    /// The segment's lowest usable address.
    bottom: usize,
    /// What `bottom` was before the segment: the stack or segment below.
    below: usize,
    /// The next segment out, or null.
    outer: *const Link,
}

impl Growth {
    pub(crate) const fn new() -> Growth {
        Growth {
            bottom: Cell::new(0),
            active: Cell::new(ptr::null()),
            spare: Cell::new(None),
            owner: Cell::new(0),
        }
    }

    /// Starts recording a stack whose lowest usable address is `bottom`, run by `owner` (a
    /// goroutine record's address, or 0 for a thread).
    pub(crate) fn start(&self, bottom: usize, owner: u64) {
        debug_assert!(self.active.get().is_null());
        self.bottom.set(bottom);
        self.owner.set(owner);
    }

    /// The lowest usable address of the stack or segment that runs now (0 if unknown).
    #[inline]
    pub(crate) fn bottom(&self) -> usize {
        self.bottom.get()
    }

    /// Gives back the spare segment: its goroutine ended, or it stayed unused.
    pub(crate) fn release_spare(&self) {
        if let Some(spare) = self.spare.take() {
            release(spare);
        }
    }

    /// Runs `f` on a segment of at least `size`: the spare, or a new one.
    ///
    /// # Panics
    ///
    /// When no segment can be allocated (the heap has no address space left, or the OS refuses
    /// its guard), with the reason; and whatever `f` panics with.
    pub(crate) fn run_on_segment<R>(&self, size: StackSize, f: impl FnOnce() -> R) -> R {
        let segment = match self.spare.take() {
            Some(spare) if spare.size() >= size => spare,
            too_small => {
                if let Some(spare) = too_small {
                    release(spare);
                }
                let segment = RawStack::allocate_segment(size)
                    .unwrap_or_else(|err| panic!("gort: cannot grow the stack by {size}: {err}"));
                segment.set_owner(self.owner.get());
                segment
            }
        };
        let link = Link {
            bottom: segment.bottom(),
            below: self.bottom.get(),
            outer: self.active.get(),
        };
        let on_segment = OnSegment {
            growth: self,
            link: &link,
            segment: Some(segment),
        };
        self.active.set(&link);
        self.bottom.set(link.bottom);
        corosensei::on_stack(&on_segment, f)
    }
}

/// Gives a segment no frame uses back to the heap.
fn release(segment: RawStack) {
    segment.set_owner(0);
    segment.release();
}

impl Drop for Growth {
    fn drop(&mut self) {
        self.release_spare();
    }
}

/// A segment while a call runs on it; on drop (return or unwind) the segment leaves the list
/// and becomes the spare.
struct OnSegment<'a> {
    growth: &'a Growth,
    link: &'a Link,
    segment: Option<RawStack>,
}

impl OnSegment<'_> {
    fn segment(&self) -> &RawStack {
        self.segment.as_ref().expect("in use until dropped")
    }
}

impl Drop for OnSegment<'_> {
    fn drop(&mut self) {
        self.growth.active.set(self.link.outer);
        self.growth.bottom.set(self.link.below);
        self.growth.release_spare();
        self.growth.spare.set(self.segment.take());
    }
}

// SAFETY: `base` (the segment's top) and `limit` (the start of its guard) are heap-page aligned,
// so aligned to `STACK_ALIGNMENT`; the usable range below `base` belongs to the call running on
// it, which ends before the `OnSegment` does, and the guard below faults on access.
unsafe impl corosensei::stack::Stack for &OnSegment<'_> {
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.segment().top()).expect("a segment's top is not null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.segment().guard_start()).expect("a segment's base is not null")
    }
}
