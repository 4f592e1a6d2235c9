//! Heap records of defer chains: 64-byte slots carved from defer spans of the span heap.
//!
//! A call of up to four words is stored in its slot; a larger one is boxed and the box stored.
//! Free slots wait on the list of the thread that freed them (a thread's list goes to a shared
//! one when the thread ends), so taking and freeing a slot is a few instructions and no lock.
//!
//! Invariants:
//! - a slot is free (on exactly one list) or holds one record, owned by one `Defers`;
//! - defer spans are allocated by the heap's protocol (published, then the barrier, before any
//!   slot address leaves this module) and never freed: a slot address always lies in an
//!   `InUse` span of kind `Defer`, which is what the collector checks.

use std::cell::Cell;
use std::mem::{MaybeUninit, align_of, size_of};
use std::ptr;

use super::Record;
use crate::heap::{self, PAGE_SIZE, SpanKind};
use crate::shim::Mutex;

/// Words of a call stored in its slot.
const INLINE_WORDS: usize = 4;
/// A slot's size.
const SLOT: usize = 64;

/// A heap record: the chain header, the link to the next older record of the same `Defers`,
/// and the call.
#[repr(C, align(64))]
pub(super) struct HeapRecord {
    header: Record,
    sibling: *mut HeapRecord,
    call: [MaybeUninit<usize>; INLINE_WORDS],
}

const _: () = assert!(size_of::<HeapRecord>() == SLOT);

/// A free slot: its first word links the next free one.
struct Free {
    next: *mut Free,
}

thread_local! {
    static FREE: FreeList = const { FreeList { head: Cell::new(ptr::null_mut()) } };
}

/// Slots given back by threads that ended, as a linked list (its head's address).
static SHARED: Mutex<usize> = Mutex::new(0);

struct FreeList {
    head: Cell<*mut Free>,
}

impl FreeList {
    fn push(&self, slot: *mut Free) {
        // SAFETY: a free slot is ours to link.
        unsafe { (*slot).next = self.head.get() };
        self.head.set(slot);
    }

    fn pop(&self) -> *mut Free {
        if self.head.get().is_null() {
            self.refill();
        }
        let slot = self.head.get();
        // SAFETY: the list links free slots only.
        self.head.set(unsafe { (*slot).next });
        slot
    }

    /// Takes the shared list, or carves a new defer span into slots.
    fn refill(&self) {
        let shared = std::mem::take(&mut *SHARED.lock());
        if shared != 0 {
            self.head.set(shared as *mut Free);
            return;
        }
        // Defer spans live as long as the process (module invariant): the handle is dropped,
        // and the span never freed.
        let base = heap::alloc_span(1, SpanKind::Defer)
            .unwrap_or_else(|err| panic!("gort: cannot allocate a defer span: {err}"))
            .base();
        for slot in (0..PAGE_SIZE / SLOT).rev() {
            self.push((base + slot * SLOT) as *mut Free);
        }
    }
}

impl Drop for FreeList {
    fn drop(&mut self) {
        let mut shared = SHARED.lock();
        while !self.head.get().is_null() {
            let slot = self.head.get();
            // SAFETY: the list links free slots only.
            self.head.set(unsafe { (*slot).next });
            // SAFETY: as above; the shared list is ours while locked.
            unsafe { (*slot).next = *shared as *mut Free };
            *shared = slot as usize;
        }
    }
}

impl HeapRecord {
    /// A record of `call` in a new slot, whose next older sibling is `sibling`.
    pub(super) fn new<F: FnOnce()>(call: F, sibling: *mut HeapRecord) -> *mut HeapRecord {
        let slot = FREE
            .try_with(FreeList::pop)
            .unwrap_or_else(|_| panic!("gort: defers pushed while the thread ends"))
            .cast::<HeapRecord>();
        let inline = size_of::<F>() <= INLINE_WORDS * size_of::<usize>()
            && align_of::<F>() <= align_of::<usize>();
        let run = if inline {
            run_inline::<F> as unsafe fn(*const Record)
        } else {
            run_boxed::<F>
        };
        // SAFETY: the slot is free and ours, 64-byte aligned and 64 bytes long.
        unsafe {
            slot.write(HeapRecord {
                header: Record::new(run),
                sibling,
                call: [MaybeUninit::uninit(); INLINE_WORDS],
            });
            let storage = (*slot).call.as_mut_ptr();
            if inline {
                storage.cast::<F>().write(call);
            } else {
                storage.cast::<Box<F>>().write(Box::new(call));
            }
        }
        slot
    }

    /// The record's chain header.
    ///
    /// # Safety
    ///
    /// `record` is alive for `'a`.
    pub(super) unsafe fn header<'a>(record: *mut HeapRecord) -> &'a Record {
        // SAFETY: the caller's contract.
        unsafe { &(*record).header }
    }

    /// Frees `newest` and its older siblings.
    ///
    /// # Safety
    ///
    /// Every record of the list has run, and nothing uses them any more.
    pub(super) unsafe fn free_list(mut newest: *mut HeapRecord) {
        while !newest.is_null() {
            // SAFETY: the caller's contract: the record is ours to free, once.
            let older = unsafe { (*newest).sibling };
            let slot = newest.cast::<Free>();
            if FREE.try_with(|free| free.push(slot)).is_err() {
                let mut shared = SHARED.lock();
                // SAFETY: the slot is free now; the shared list is ours while locked.
                unsafe { (*slot).next = *shared as *mut Free };
                *shared = slot as usize;
            }
            newest = older;
        }
    }
}

/// Runs a call stored in its slot.
///
/// # Safety
///
/// `record` heads a `HeapRecord` whose call is an `F` stored inline, run once.
unsafe fn run_inline<F: FnOnce()>(record: *const Record) {
    // SAFETY: the header is the first field; the call was written inline, and is read once.
    let call = unsafe {
        (*record.cast::<HeapRecord>())
            .call
            .as_ptr()
            .cast::<F>()
            .read()
    };
    call();
}

/// Runs a boxed call.
///
/// # Safety
///
/// `record` heads a `HeapRecord` whose call is a `Box<F>`, run once.
unsafe fn run_boxed<F: FnOnce()>(record: *const Record) {
    // SAFETY: as in `run_inline`, for the box.
    let call = unsafe {
        (*record.cast::<HeapRecord>())
            .call
            .as_ptr()
            .cast::<Box<F>>()
            .read()
    };
    call();
}
