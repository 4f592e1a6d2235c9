//! The page -> span index: a two-level radix tree over heap page numbers (Go's
//! `arenas[l1][l2].spans`).
//!
//! The first level has one entry per region of `1 << REGION_SHIFT` bytes of address space; the
//! second-level table of a region has one `AtomicPtr<Span>` per heap page in it.
//!
//! Invariants:
//! - a second-level table is installed (release store) before any span in its region is
//!   allocated, and is never removed or freed while the index exists;
//! - every page of an `InUse` span points at that span; entries are written with release stores
//!   and read with acquire loads;
//! - an entry may be stale (pointing at a retired or reused span): readers must check the span's
//!   state and bounds, which is what `Heap::span_of` does.

use std::ptr::{self, NonNull};

use super::PAGE_SHIFT;
use super::span::Span;
use crate::sync::atomic::{AtomicPtr, Ordering};

/// Bits of address space the index covers; loom models use a tiny fake address space.
pub(crate) const ADDR_BITS: u32 = if cfg!(loom) { 20 } else { 48 };
/// log2 of the bytes covered by one second-level table.
const REGION_SHIFT: u32 = if cfg!(loom) { 17 } else { 30 };
const L1_LEN: usize = 1 << (ADDR_BITS - REGION_SHIFT);
const L2_LEN: usize = 1 << (REGION_SHIFT - PAGE_SHIFT);

/// The bytes covered by one second-level table.
pub(crate) const REGION_BYTES: usize = 1 << REGION_SHIFT;

struct L2 {
    spans: [AtomicPtr<Span>; L2_LEN],
}

pub(crate) struct Index {
    l1: Box<[AtomicPtr<L2>]>,
}

impl Index {
    pub(crate) fn new() -> Self {
        Index {
            l1: null_pointers(L1_LEN),
        }
    }

    /// Installs the second-level table of the region holding `addr` if it has none.
    /// Callers serialise installs (the heap lock).
    pub(crate) fn install_region(&self, addr: usize) {
        let slot = &self.l1[addr >> REGION_SHIFT];
        if slot.load(Ordering::Relaxed).is_null() {
            slot.store(alloc_l2(), Ordering::Release);
        }
    }

    /// Points every page of `[base, base + pages * PAGE_SIZE)` at `span` (or clears them).
    pub(crate) fn set(&self, base: usize, pages: usize, span: *mut Span) {
        let first = base >> PAGE_SHIFT;
        for page in first..first + pages {
            self.entry(page).store(span, Ordering::Release);
        }
    }

    /// The span the page holding `addr` points at, if any. `addr` may be any value.
    #[inline]
    pub(crate) fn lookup(&self, addr: usize) -> Option<NonNull<Span>> {
        let table = self.l1.get(addr >> REGION_SHIFT)?.load(Ordering::Acquire);
        // SAFETY: a non-null first-level entry points at a second-level table that lives as long
        // as the index (module invariant), and the acquire load synchronises with its install.
        let table = unsafe { table.as_ref()? };
        let page = (addr >> PAGE_SHIFT) & (L2_LEN - 1);
        NonNull::new(table.spans[page].load(Ordering::Acquire))
    }

    fn entry(&self, page: usize) -> &AtomicPtr<Span> {
        let table = self.l1[page >> (REGION_SHIFT - PAGE_SHIFT)].load(Ordering::Acquire);
        // SAFETY: the heap installs a region's table before allocating any span in it, and
        // tables live as long as the index (module invariant).
        let table = unsafe { table.as_ref() }.expect("region table installed before use");
        &table.spans[page & (L2_LEN - 1)]
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        for slot in self.l1.iter() {
            let table = slot.load(Ordering::Relaxed);
            if !table.is_null() {
                // SAFETY: non-null entries came from `alloc_l2`, and `&mut self` means no
                // reader is left.
                unsafe { free_l2(table) };
            }
        }
    }
}

/// A zeroed table of null pointers; the allocator hands back untouched (uncommitted) memory.
#[cfg(not(loom))]
fn null_pointers<T>(len: usize) -> Box<[AtomicPtr<T>]> {
    let table = Box::<[AtomicPtr<T>]>::new_zeroed_slice(len);
    // SAFETY: an `AtomicPtr` of all-zero bits is a valid null pointer.
    unsafe { table.assume_init() }
}

/// A table of null pointers mapped with the arenas' flags, so that the kernel merges it with
/// its neighbours instead of adding a mapping per table. Its pages commit on first write.
#[cfg(not(loom))]
fn alloc_l2() -> *mut L2 {
    let layout = std::alloc::Layout::new::<L2>();
    // SAFETY: a fresh anonymous mapping aliases nothing. It is page aligned (enough for `L2`)
    // and reads as zero, and all-zero `AtomicPtr`s are valid null pointers.
    let table = unsafe {
        libc::mmap(
            ptr::null_mut(),
            layout.size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if table == libc::MAP_FAILED {
        std::alloc::handle_alloc_error(layout);
    }
    table.cast()
}

/// Unmaps a table from [`alloc_l2`].
///
/// # Safety
///
/// `table` came from `alloc_l2` and nothing refers to it any more.
#[cfg(not(loom))]
unsafe fn free_l2(table: *mut L2) {
    // SAFETY: the caller passes a live mapping of exactly this size.
    unsafe { libc::munmap(table.cast(), std::mem::size_of::<L2>()) };
}

#[cfg(loom)]
fn null_pointers<T>(len: usize) -> Box<[AtomicPtr<T>]> {
    (0..len).map(|_| AtomicPtr::new(ptr::null_mut())).collect()
}

#[cfg(loom)]
fn alloc_l2() -> *mut L2 {
    Box::into_raw(Box::new(L2 {
        spans: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
    }))
}

/// Frees a table from [`alloc_l2`].
///
/// # Safety
///
/// `table` came from `alloc_l2` and nothing refers to it any more.
#[cfg(loom)]
unsafe fn free_l2(table: *mut L2) {
    // SAFETY: the caller passes a table boxed by `alloc_l2`.
    drop(unsafe { Box::from_raw(table) });
}

/// Clears entries by pointing them at nothing.
pub(crate) const NO_SPAN: *mut Span = ptr::null_mut();
