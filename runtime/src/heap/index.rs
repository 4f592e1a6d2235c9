//! The page -> span index: a two-level radix tree over heap page numbers (Go's
//! `arenas[l1][l2].spans`).
//!
//! The first level has one entry per region of `1 << REGION_SHIFT` bytes of address space; the
//! second-level table of a region has one `AtomicPtr<Span>` per heap page in it. All tables live
//! in one zone of address space reserved with the index (the table of region `r` at a fixed
//! offset), so a heap of any size costs one mapping for its index; if the OS refuses the zone,
//! each table is mapped on its own. Table pages commit on first write.
//!
//! Invariants:
//! - a second-level table is installed (release store) before any span in its region is
//!   allocated, and is never removed or freed while the index exists;
//! - every page of an `InUse` span points at that span; entries are written with release stores
//!   and read with acquire loads;
//! - an entry may be stale (pointing at a retired or reused span): readers must check the span's
//!   state and bounds, which is what `Heap::span_of` does.

use std::ptr::NonNull;

use super::PAGE_SHIFT;
#[cfg(not(loom))]
use super::arena::{reserve_address_space, unmap};
use super::span::Span;
use crate::shim::atomic::{AtomicPtr, Ordering};

/// Bits of address space the index covers (user space on x86-64 is 47 bits); loom models use a
/// tiny fake address space.
pub(crate) const ADDR_BITS: u32 = if cfg!(loom) {
    20
} else if cfg!(target_arch = "x86_64") {
    47
} else {
    48
};
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
    tables: TableStore,
}

impl Index {
    pub(crate) fn new() -> Self {
        Index {
            l1: null_pointers(L1_LEN),
            tables: TableStore::new(),
        }
    }

    /// Installs the second-level table of the region holding `addr` if it has none, or answers
    /// the errno of the OS's refusal to map one. Callers serialise installs (the heap lock).
    pub(crate) fn install_region(&self, addr: usize) -> Result<(), i32> {
        let region = addr >> REGION_SHIFT;
        let slot = &self.l1[region];
        if slot.load(Ordering::Relaxed).is_null() {
            slot.store(self.tables.table(region)?, Ordering::Release);
        }
        Ok(())
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
        // SAFETY: installed tables live as long as the index; the acquire load saw the install.
        let table = unsafe { table.as_ref()? };
        let page = (addr >> PAGE_SHIFT) & (L2_LEN - 1);
        NonNull::new(table.spans[page].load(Ordering::Acquire))
    }

    fn entry(&self, page: usize) -> &AtomicPtr<Span> {
        let table = self.l1[page >> (REGION_SHIFT - PAGE_SHIFT)].load(Ordering::Acquire);
        // SAFETY: tables are installed before spans in them and live as long as the index.
        let table = unsafe { table.as_ref() }.expect("region table installed before use");
        &table.spans[page & (L2_LEN - 1)]
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        for slot in self.l1.iter() {
            let table = slot.load(Ordering::Relaxed);
            if !table.is_null() {
                // SAFETY: entries came from `self.tables`; `&mut self` leaves no reader.
                unsafe { self.tables.release(table) };
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

/// Memory for second-level tables: all-zero bits are a table of null pointers.
#[cfg(not(loom))]
struct TableStore {
    /// The base of a reservation with room for every region's table, if the OS granted it.
    zone: Option<usize>,
}

#[cfg(not(loom))]
impl TableStore {
    const TABLE_BYTES: usize = std::mem::size_of::<L2>();
    const ZONE_BYTES: usize = L1_LEN * Self::TABLE_BYTES;

    fn new() -> Self {
        let zone = reserve_address_space(Self::ZONE_BYTES, 0)
            .inspect_err(|errno| {
                log::debug!(
                    "gort: no zone for the span index (errno {errno}); mapping tables one by one"
                )
            })
            .ok();
        TableStore { zone }
    }

    /// The table of `region`: zeroed, page aligned, and valid until `release`.
    fn table(&self, region: usize) -> Result<*mut L2, i32> {
        let addr = match self.zone {
            Some(zone) => zone + region * Self::TABLE_BYTES,
            None => reserve_address_space(Self::TABLE_BYTES, 0)?,
        };
        // Untouched anonymous memory reads as zero, and all-zero `AtomicPtr`s are null.
        Ok(addr as *mut L2)
    }

    /// Gives back a table from `table`.
    ///
    /// # Safety
    ///
    /// `table` came from `self.table` and nothing refers to it any more.
    unsafe fn release(&self, table: *mut L2) {
        if self.zone.is_none() {
            unmap(table as usize, Self::TABLE_BYTES);
        }
    }
}

#[cfg(not(loom))]
impl Drop for TableStore {
    fn drop(&mut self) {
        if let Some(zone) = self.zone {
            unmap(zone, Self::ZONE_BYTES);
        }
    }
}

#[cfg(loom)]
fn null_pointers<T>(len: usize) -> Box<[AtomicPtr<T>]> {
    (0..len)
        .map(|_| AtomicPtr::new(std::ptr::null_mut()))
        .collect()
}

/// Under loom, tables are boxes of loom atomics.
#[cfg(loom)]
struct TableStore;

#[cfg(loom)]
impl TableStore {
    fn new() -> Self {
        TableStore
    }

    fn table(&self, _region: usize) -> Result<*mut L2, i32> {
        Ok(Box::into_raw(Box::new(L2 {
            spans: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
        })))
    }

    /// Frees a table from `table`.
    ///
    /// # Safety
    ///
    /// `table` came from `self.table` and nothing refers to it any more.
    unsafe fn release(&self, table: *mut L2) {
        // SAFETY: the caller passes a table boxed by `table`.
        drop(unsafe { Box::from_raw(table) });
    }
}

/// Clears entries by pointing them at nothing.
pub(crate) const NO_SPAN: *mut Span = std::ptr::null_mut();
