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
//!   the fault handler and the collector;
//! - `spare_used` is set whenever the spare changes hands, and cleared only by the collector
//!   ([`Growth::age_spare`]): a spare the collector finds unused since its last look goes back
//!   to the heap.

use std::cell::Cell;
use std::ptr;

use corosensei::stack::StackPointer;

use super::raw::RawStack;
use super::{StackSize, memory};

/// Which stack or segment a goroutine or thread runs on, the segments it uses and its spare.
pub(crate) struct Growth {
    /// The goroutine's (or thread's) own stack: its lowest usable address and its top.
    stack: Cell<(usize, usize)>,
    bottom: Cell<usize>,
    active: Cell<*const Link>,
    spare: Cell<Option<RawStack>>,
    /// Whether the spare was used since the collector last looked.
    spare_used: Cell<bool>,
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
            stack: Cell::new((0, 0)),
            bottom: Cell::new(0),
            active: Cell::new(ptr::null()),
            spare: Cell::new(None),
            spare_used: Cell::new(false),
            owner: Cell::new(0),
        }
    }

    /// Starts recording a stack `[bottom, top)` (its usable part), run by `owner` (a goroutine
    /// record's address, or 0 for a thread).
    pub(crate) fn start(&self, bottom: usize, top: usize, owner: u64) {
        debug_assert!(self.active.get().is_null());
        self.stack.set((bottom, top));
        self.bottom.set(bottom);
        self.owner.set(owner);
    }

    /// The lowest usable address of the stack or segment that runs now (0 if unknown).
    #[inline]
    pub(crate) fn bottom(&self) -> usize {
        self.bottom.get()
    }

    /// The usable part `[bottom, top)` of the goroutine's (or thread's) own stack.
    pub(crate) fn stack(&self) -> (usize, usize) {
        self.stack.get()
    }

    /// The segments in use, innermost first: their lowest usable addresses.
    pub(crate) fn segments(&self) -> impl Iterator<Item = usize> + '_ {
        let mut link = self.active.get();
        std::iter::from_fn(move || {
            // A link stays in the list only while the frame holding it lives (module invariant),
            // and the caller is the owner or holds its scan claim.
            // SAFETY: as just said, the link is live.
            let current = unsafe { link.as_ref() }?;
            link = current.outer;
            Some(current.bottom)
        })
    }

    /// The collector's look at the spare, for a goroutine that is not running: a spare unused
    /// since the last look goes back to the heap; one used since is kept, its committed pages
    /// given back to the OS. `None` without a spare.
    pub(crate) fn age_spare(&self) -> Option<SpareAge> {
        let spare = self.spare.take()?;
        if !self.spare_used.replace(false) {
            let resident =
                memory::resident_bytes(spare.bottom(), spare.size().bytes()).unwrap_or(0);
            release(spare);
            return Some(SpareAge::Released { resident });
        }
        // No frame uses the spare (module invariant), and the caller is its owner or holds the
        // owner's scan claim, so nothing runs on it until we put it back.
        // SAFETY: as just said.
        let resident = unsafe { spare.give_back_pages() };
        self.spare.set(Some(spare));
        Some(SpareAge::Kept { resident })
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
            Some(spare) if spare.size() >= size => {
                self.spare_used.set(true);
                spare
            }
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

/// What the collector's look at a spare did ([`Growth::age_spare`]).
pub(crate) enum SpareAge {
    /// Unused for a cycle: released to the heap with `resident` bytes committed.
    Released { resident: usize },
    /// Used since the last look: kept, and its `resident` committed bytes given back.
    Kept { resident: usize },
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
        self.growth.spare_used.set(true);
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
