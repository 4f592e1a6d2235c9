//! One stack's (or stack segment's) span: allocated from the heap with its guard installed, and
//! released back.
//!
//! Layout of a stack span, low to high: one heap page of guard, then the usable stack; the top
//! of the stack is the span's limit.
//!
//! Invariants:
//! - while a `RawStack` exists its span is `InUse`, of kind `Stack` (or `StackSegment` for a
//!   segment a stack grew into), and its guard is installed;
//! - `release` is the only way back to the heap: it returns the usable pages to the OS and
//!   removes the guard before the span is freed.

use corosensei::stack::valgrind::ValgrindStackRegistration;

use super::{StackError, StackSize, guard, memory};
use crate::heap::{self, PAGE_SIZE, SpanHandle, SpanKind};

/// The guard region: one heap page (16 KiB), so a frame that skips part of it still faults.
pub(crate) const GUARD_BYTES: usize = PAGE_SIZE;

/// An allocated stack span with its guard.
pub(crate) struct RawStack {
    span: SpanHandle,
    size: StackSize,
    _valgrind: ValgrindStackRegistration,
}

impl std::fmt::Debug for RawStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawStack")
            .field("size", &self.size)
            .field("bottom", &format_args!("{:#x}", self.bottom()))
            .field("top", &format_args!("{:#x}", self.top()))
            .finish()
    }
}

impl RawStack {
    /// Allocates a fresh stack from the heap.
    pub(crate) fn allocate(size: StackSize) -> Result<RawStack, StackError> {
        RawStack::allocate_kind(size, SpanKind::Stack)
    }

    /// Allocates a fresh segment, for a stack that grows beyond its reservation.
    pub(crate) fn allocate_segment(size: StackSize) -> Result<RawStack, StackError> {
        RawStack::allocate_kind(size, SpanKind::StackSegment)
    }

    fn allocate_kind(size: StackSize, kind: SpanKind) -> Result<RawStack, StackError> {
        let span = heap::alloc_span((GUARD_BYTES + size.bytes()) / PAGE_SIZE, kind)?;
        crate::collector::pacer::stack_allocated(span.pages() * PAGE_SIZE);
        // SAFETY: the guard is the first page of a span just allocated to us.
        if let Err(err) = unsafe { guard::install(span.base(), GUARD_BYTES) } {
            let addr = span.base();
            // A failed install may have guarded part of the region.
            free_unguarded(span);
            return Err(StackError::Guard {
                addr,
                mode: guard::guard_mode(),
                source: err,
            });
        }
        let usable = span.base() + GUARD_BYTES;
        Ok(RawStack {
            _valgrind: ValgrindStackRegistration::new(usable as *mut u8, size.bytes()),
            span,
            size,
        })
    }

    pub(crate) fn size(&self) -> StackSize {
        self.size
    }

    /// The lowest address of the span: the start of the guard.
    pub(crate) fn guard_start(&self) -> usize {
        self.span.base()
    }

    /// The lowest usable address.
    pub(crate) fn bottom(&self) -> usize {
        self.span.base() + GUARD_BYTES
    }

    /// One past the highest usable address: where the stack starts growing down from.
    pub(crate) fn top(&self) -> usize {
        self.span.limit()
    }

    pub(crate) fn set_owner(&self, owner: u64) {
        self.span.set_owner(owner);
    }

    /// Gives the committed pages of the stack back to the OS, keeping the span and its guard;
    /// answers the bytes that were resident.
    ///
    /// # Safety
    ///
    /// No one runs on the stack, and nothing relies on its contents.
    pub(crate) unsafe fn give_back_pages(&self) -> usize {
        let resident = memory::resident_bytes(self.bottom(), self.size.bytes()).unwrap_or(0);
        if resident > 0 {
            // SAFETY: by the caller's contract the contents are no one's.
            if let Err(err) = unsafe { memory::release(self.bottom(), self.size.bytes()) } {
                log::warn!(
                    "gort: giving back the pages of an unused {} stack failed: {err}",
                    self.size
                );
                return 0;
            }
        }
        resident
    }

    /// Returns the usable pages to the OS, removes the guard and frees the span.
    pub(crate) fn release(self) {
        let RawStack {
            span,
            size,
            _valgrind,
        } = self;
        drop(_valgrind);
        let bottom = span.base() + GUARD_BYTES;
        // SAFETY: the stack is being released, and the range is its own usable part.
        if let Err(err) = unsafe { memory::release(bottom, size.bytes()) } {
            log::warn!("gort: releasing the pages of a {size} stack at {bottom:#x} failed: {err}");
        }
        free_unguarded(span);
    }
}

/// Removes whatever guard the first heap page of a stack span holds, then frees the span. A span
/// whose guard cannot be removed must never back another span: it is leaked instead.
fn free_unguarded(span: SpanHandle) {
    crate::collector::pacer::stack_released(span.pages() * PAGE_SIZE);
    // SAFETY: the guard region of a stack span we own, as the heap expects it freed.
    match unsafe { guard::remove(span.base(), GUARD_BYTES) } {
        Ok(()) => heap::free_span(span),
        Err(err) => log::error!(
            "gort: removing the guard of a stack at {:#x} failed ({err}); its span is leaked",
            span.base()
        ),
    }
}
