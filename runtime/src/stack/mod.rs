//! Goroutine stacks: spans of the span heap with a guard region at their low end.
//!
//! A stack is a reservation of a [size class](StackSize) (16 KiB to 1 GiB, 256 KiB by default).
//! Its pages are committed on first touch, so a new stack costs one page however large its
//! reservation, and it grows copy-free up to the reservation. A stack never moves: references
//! into it stay valid for its whole life.
//!
//! Beyond its reservation a stack grows at explicit points ([`maybe_grow`], [`grow`]) into
//! segments: spans of their own that a closure runs on, linked to the frames below.
//!
//! Stacks are recycled through a per-thread cache in front of a global pool per size class:
//! taking a warm stack is a few nanoseconds and no system call. Cached stacks keep their
//! committed pages; a stack that goes back to the heap gives its pages back to the OS first.
//!
//! Invariants:
//! - a [`Stack`]'s guard is installed from its creation until its span is freed;
//! - the memory between [`Stack::bottom`] and [`Stack::top`] belongs to whoever owns the
//!   `Stack` (in practice, the coroutine running on it).

mod grow;
mod guard;
pub(crate) mod memory;
mod pool;
pub(crate) mod raw;
pub(crate) mod registers;
mod segment;
mod size;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::ops::Range;

use corosensei::stack::StackPointer;

use self::raw::RawStack;
use crate::heap::HeapError;

pub use self::grow::{grow, maybe_grow, remaining};
pub use self::guard::{GuardMode, guard_mode};
pub(crate) use self::pool::{StackCache, scavenge};
pub(crate) use self::segment::{Growth, SpareAge};
pub use self::size::{StackSize, StackSizeError};

/// A goroutine stack: a guarded span of the span heap that a coroutine can run on.
///
/// It implements [`corosensei::stack::Stack`], so [`corosensei::Coroutine::with_stack`] runs on
/// it. Dropping it returns it to the calling thread's stack cache.
///
/// # Examples
///
/// ```
/// use corosensei::Coroutine;
/// use gort::stack::{Stack, StackSize};
///
/// let stack = Stack::new(StackSize::new(64 * 1024)?)?;
/// assert_eq!(stack.top() - stack.bottom(), 64 * 1024);
/// let mut coroutine = Coroutine::with_stack(stack, |_: &corosensei::Yielder<(), ()>, ()| {
///     let local = [7u8; 1024];
///     local.iter().map(|&b| u32::from(b)).sum::<u32>()
/// });
/// assert_eq!(coroutine.resume(()).as_return(), Some(7 * 1024));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Stack {
    raw: ManuallyDrop<RawStack>,
}

impl Stack {
    /// Takes a stack of `size` from the calling thread's cache, the global pool, or the heap.
    ///
    /// # Errors
    ///
    /// [`StackError::Heap`] when the heap cannot reserve more address space,
    /// [`StackError::Guard`] when the OS refuses to install the guard (with `mprotect` guards,
    /// usually `vm.max_map_count`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::stack::{Stack, StackSize};
    ///
    /// let stack = Stack::new(StackSize::DEFAULT)?;
    /// assert_eq!(stack.size(), StackSize::DEFAULT);
    /// # Ok::<(), gort::stack::StackError>(())
    /// ```
    #[inline]
    pub fn new(size: StackSize) -> Result<Stack, StackError> {
        Ok(Stack {
            raw: ManuallyDrop::new(pool::take(size)?),
        })
    }

    /// The stack's size class.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gort::stack::{Stack, StackSize};
    /// assert_eq!(Stack::new(StackSize::MIN)?.size().bytes(), 16 * 1024);
    /// # Ok::<(), gort::stack::StackError>(())
    /// ```
    #[inline]
    pub fn size(&self) -> StackSize {
        self.raw.size()
    }

    /// One past the highest usable address; the stack grows down from here.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gort::stack::{Stack, StackSize};
    /// let stack = Stack::new(StackSize::DEFAULT)?;
    /// assert_eq!(stack.top() % 16, 0);
    /// # Ok::<(), gort::stack::StackError>(())
    /// ```
    #[inline]
    pub fn top(&self) -> usize {
        self.raw.top()
    }

    /// The lowest usable address; the guard region lies just below it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gort::stack::{Stack, StackSize};
    /// let stack = Stack::new(StackSize::DEFAULT)?;
    /// assert_eq!(stack.guard().end, stack.bottom());
    /// # Ok::<(), gort::stack::StackError>(())
    /// ```
    #[inline]
    pub fn bottom(&self) -> usize {
        self.raw.bottom()
    }

    /// The guard region: any access to it faults.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gort::stack::{Stack, StackSize};
    /// let stack = Stack::new(StackSize::DEFAULT)?;
    /// assert_eq!(stack.guard().len(), gort::heap::PAGE_SIZE);
    /// # Ok::<(), gort::stack::StackError>(())
    /// ```
    pub fn guard(&self) -> Range<usize> {
        self.raw.guard_start()..self.raw.bottom()
    }

    /// The bytes of the usable stack that are committed (resident) now.
    ///
    /// # Errors
    ///
    /// Only if the OS refuses `mincore`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gort::stack::{Stack, StackSize};
    /// let stack = Stack::new(StackSize::DEFAULT)?;
    /// assert!(stack.resident_bytes()? <= StackSize::DEFAULT.bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resident_bytes(&self) -> io::Result<usize> {
        memory::resident_bytes(self.bottom(), self.size().bytes())
    }
}

impl Stack {
    /// A stack from `cache` (a P's), the global pool, or the heap.
    pub(crate) fn from_cache(cache: &mut StackCache, size: StackSize) -> Result<Stack, StackError> {
        let raw = match cache.take(size) {
            Some(raw) => raw,
            None => RawStack::allocate(size)?,
        };
        Ok(Stack {
            raw: ManuallyDrop::new(raw),
        })
    }

    /// Returns the stack to `cache` (a P's) instead of the thread's.
    pub(crate) fn into_cache(self, cache: &mut StackCache) {
        let mut stack = ManuallyDrop::new(self);
        // SAFETY: `stack` is never used or dropped again, so `raw` is taken exactly once.
        cache.put(unsafe { ManuallyDrop::take(&mut stack.raw) });
    }

    /// Records who runs on the stack (the goroutine), for the fault handler.
    pub(crate) fn set_owner(&self, owner: u64) {
        self.raw.set_owner(owner);
    }
}

impl Drop for Stack {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `raw` is taken exactly once, here, and `self` is not used afterwards.
        let raw = unsafe { ManuallyDrop::take(&mut self.raw) };
        pool::give_back(raw);
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("size", &self.size())
            .field("bottom", &format_args!("{:#x}", self.bottom()))
            .field("top", &format_args!("{:#x}", self.top()))
            .finish()
    }
}

// SAFETY: `base` (the top) and `limit` (the start of the guard) are heap-page aligned, so
// aligned to `STACK_ALIGNMENT`; the range below `base` down to the guard is read-write memory
// owned by this `Stack` for as long as it exists, and the guard below it faults on access.
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.top()).expect("a stack's top is not null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.raw.guard_start()).expect("a stack's span base is not null")
    }
}

/// Why a stack could not be created.
///
/// # Examples
///
/// ```
/// use gort::stack::StackError;
///
/// fn describe(err: &StackError) -> String {
///     match err {
///         StackError::Heap(heap) => format!("heap: {heap}"),
///         StackError::Guard { addr, mode, .. } => format!("guard at {addr:#x} with {mode}"),
///         other => other.to_string(),
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StackError {
    /// The span heap could not provide the span.
    Heap(HeapError),
    /// The OS refused to install the guard region.
    Guard {
        /// The start of the guard region.
        addr: usize,
        /// How the guard was being installed.
        mode: GuardMode,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::Heap(err) => write!(f, "cannot allocate a goroutine stack: {err}"),
            StackError::Guard { addr, mode, source } => {
                write!(
                    f,
                    "cannot install the guard of a goroutine stack at {addr:#x} with {mode}: {source}"
                )?;
                if *mode == GuardMode::Mprotect {
                    f.write_str(" (each stack costs two memory mappings; see vm.max_map_count)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StackError::Heap(err) => Some(err),
            StackError::Guard { source, .. } => Some(source),
        }
    }
}

impl From<HeapError> for StackError {
    fn from(err: HeapError) -> Self {
        StackError::Heap(err)
    }
}

impl From<StackError> for io::Error {
    fn from(err: StackError) -> io::Error {
        let kind = match &err {
            StackError::Heap(heap) => io::Error::from(heap.clone()).kind(),
            StackError::Guard { source, .. } => source.kind(),
        };
        io::Error::new(kind, err)
    }
}
