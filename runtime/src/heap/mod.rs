//! The span heap: address space for goroutine stacks, stack segments and defer records.
//!
//! Address space comes from arenas reserved on demand and never unmapped. A page allocator hands
//! out runs of heap pages; each run is described by a span, which lives in type-stable storage
//! and is found from any address through a two-level radix index.
//!
//! # The allocation protocol
//!
//! The protocol follows Go's span publication (runtime commits 7de15e36 and c53b2bdb): a reader
//! that does not trust a pointer (the collector, the fault handler) may race with an allocation,
//! and must never see a half-built span.
//!
//! 1. take pages from the page allocator (under the heap lock);
//! 2. initialise every field of the span while its state is [`SpanState::Dead`];
//! 3. point the index entries of all its pages at it;
//! 4. `state.store(InUse, Release)`: the state publishes every other field;
//! 5. a publication barrier (`fence(Release)`) before any pointer into the span leaves the allocator, so a reader
//!    that sees such a pointer (through an acquire load) also sees steps 2–4.
//!
//! Freeing is the mirror image: `Dead` first, then the index, then the pages. A span must not be
//! freed while a scan may still hold a pointer into it.
//!
//! [`span_of`] is the only way to resolve an untrusted address: it loads the index and the state
//! with acquire ordering and answers only for an `InUse` span whose range holds the address.
//!
//! # Heap pages
//!
//! A heap page is 16 KiB, four OS pages, the smallest stack size. The index costs one pointer per
//! heap page of reserved address space, whether or not it is ever touched; with 4 KiB pages a
//! million default (256 KiB) stack reservations would commit 544 MB of index, with 16 KiB pages
//! 136 MB. Commit, release and guard installation still work on OS pages.

// Under loom only the protocol is built: the process-wide heap and its accounting are not.
#![cfg_attr(loom, allow(dead_code))]

mod arena;
mod index;
mod pages;
mod span;

#[cfg(all(test, loom))]
pub(crate) mod loom_model;
#[cfg(all(test, not(loom)))]
mod tests;

use std::fmt;
use std::io;
use std::ptr::NonNull;

use self::arena::{AddressSource, Arena};
#[cfg(not(loom))]
pub(crate) use self::arena::{os_page_size, reserve_address_space, unmap};
use self::index::{ADDR_BITS, Index, NO_SPAN, REGION_BYTES};
use self::pages::PageAlloc;
use self::span::{Span, SpanPool};
use crate::shim::Mutex;
use crate::shim::atomic::Ordering;

pub use self::span::{SpanKind, SpanState};

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 14;

/// The size of a heap page in bytes (16 KiB): spans are whole numbers of heap pages.
///
/// # Examples
///
/// ```
/// let span = gort::heap::alloc_span(3, gort::heap::SpanKind::Defer).unwrap();
/// assert_eq!(span.limit() - span.base(), 3 * gort::heap::PAGE_SIZE);
/// gort::heap::free_span(span);
/// ```
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// The largest span: a quarter of the address space the index covers.
const MAX_SPAN_PAGES: usize = 1 << (ADDR_BITS - 2 - PAGE_SHIFT);
/// The first arena's size; later arenas double the heap, up to [`MAX_ARENA_BYTES`].
const MIN_ARENA_BYTES: usize = if cfg!(loom) { REGION_BYTES } else { 1 << 30 };
const MAX_ARENA_BYTES: usize = 64 << 30;

/// Step (5) of the allocation protocol: orders everything the allocation wrote before any
/// pointer into the new span becomes visible to another thread.
///
/// The `gort_loom_no_publication` configuration removes it, so that the loom model can show it
/// is needed.
#[inline]
pub(crate) fn publication_barrier() {
    #[cfg(not(all(loom, gort_loom_no_publication)))]
    crate::shim::atomic::fence(Ordering::Release);
}

/// Why the heap could not hand out a span.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, HeapError, SpanKind};
///
/// let err = heap::alloc_span(0, SpanKind::Defer).unwrap_err();
/// assert!(matches!(err, HeapError::InvalidPages { pages: 0, .. }));
/// assert!(err.to_string().starts_with("cannot allocate a span of 0 pages: the size must be 1 to "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeapError {
    /// The page count is zero or larger than the heap can ever hold.
    InvalidPages {
        /// The requested number of pages.
        pages: usize,
        /// The largest number of pages one span may have.
        max: usize,
    },
    /// The OS pages are larger than heap pages, so guards and spans could not be aligned.
    UnsupportedPageSize {
        /// The OS page size in bytes.
        os_page_size: usize,
    },
    /// The OS refused to reserve more address space.
    AddressSpaceExhausted {
        /// The bytes the heap needed to reserve.
        requested_bytes: usize,
        /// The OS error number of the last refused reservation, if the OS was asked.
        os_error: Option<i32>,
    },
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapError::InvalidPages { pages, max } => write!(
                f,
                "cannot allocate a span of {pages} pages: the size must be 1 to {max} pages of {} KiB",
                PAGE_SIZE / 1024
            ),
            HeapError::UnsupportedPageSize { os_page_size } => write!(
                f,
                "the OS page size is {os_page_size} bytes; the span heap needs pages of at most {PAGE_SIZE} bytes"
            ),
            HeapError::AddressSpaceExhausted {
                requested_bytes,
                os_error,
            } => {
                write!(
                    f,
                    "out of address space: cannot reserve {requested_bytes} more bytes for the span heap"
                )?;
                match os_error {
                    Some(errno) => write!(f, " ({})", io::Error::from_raw_os_error(*errno)),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for HeapError {}

impl From<HeapError> for io::Error {
    fn from(err: HeapError) -> io::Error {
        let kind = match err {
            HeapError::InvalidPages { .. } => io::ErrorKind::InvalidInput,
            HeapError::UnsupportedPageSize { .. } => io::ErrorKind::Unsupported,
            HeapError::AddressSpaceExhausted { .. } => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, err)
    }
}

/// Ownership of an allocated span. Give it back with [`free_span`]; dropping it leaks the span.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, SpanKind};
///
/// let span = heap::alloc_span(1, SpanKind::Defer).unwrap();
/// span.set_owner(42);
/// assert_eq!(heap::span_of(span.base() + 100).unwrap().owner(), 42);
/// heap::free_span(span);
/// ```
#[must_use = "a span handle that is dropped leaks the span; give it back with free_span"]
#[derive(Debug)]
pub struct SpanHandle {
    span: NonNull<Span>,
}

// SAFETY: the handle names a span whose fields are all atomics, in the type-stable storage of
// the heap that allocated it, which outlives the handle (the process-wide heap is never dropped;
// a test heap outlives the handles it hands out). Owning the handle is owning the span, wherever
// the thread.
unsafe impl Send for SpanHandle {}
// SAFETY: shared access only reads the span's atomics or sets its owner word atomically.
unsafe impl Sync for SpanHandle {}

// The accessors read the span's fields with relaxed loads: they do not change while the span is
// `InUse`, and whoever holds the handle is ordered after the allocation that wrote them.
impl SpanHandle {
    /// The lowest address of the span.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(span.base() % gort::heap::PAGE_SIZE, 0);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn base(&self) -> usize {
        self.span().base()
    }

    /// One past the highest address of the span.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(span.limit() - span.base(), 2 * gort::heap::PAGE_SIZE);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn limit(&self) -> usize {
        self.span().base() + self.span().pages() * PAGE_SIZE
    }

    /// The number of heap pages in the span.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(span.pages(), 2);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn pages(&self) -> usize {
        self.span().pages()
    }

    /// The span's kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(span.kind(), gort::heap::SpanKind::Defer);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn kind(&self) -> SpanKind {
        self.span().kind()
    }

    /// The span's state: always [`SpanState::InUse`] while its handle exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(span.state(), gort::heap::SpanState::InUse);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn state(&self) -> SpanState {
        self.span().state(Ordering::Acquire)
    }

    /// Records who uses the span (a goroutine id, say), for readers of [`span_of`].
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// span.set_owner(7);
    /// assert_eq!(gort::heap::span_of(span.base()).unwrap().owner(), 7);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn set_owner(&self, owner: u64) {
        self.span().set_owner(owner);
    }

    #[inline]
    fn span(&self) -> &Span {
        // SAFETY: type-stable storage outlives the handle, which keeps the span `InUse`.
        unsafe { self.span.as_ref() }
    }
}

/// What [`span_of`] saw of the span holding an address.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, SpanKind};
///
/// let span = heap::alloc_span(2, SpanKind::StackSegment).unwrap();
/// let info = heap::span_of(span.limit() - 1).unwrap();
/// assert_eq!((info.base(), info.limit(), info.pages()), (span.base(), span.limit(), 2));
/// assert!(info.contains(span.base()) && !info.contains(span.limit()));
/// heap::free_span(span);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanInfo {
    base: usize,
    pages: usize,
    kind: SpanKind,
    owner: u64,
}

impl SpanInfo {
    /// The lowest address of the span.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(gort::heap::span_of(span.limit() - 1).unwrap().base(), span.base());
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn base(&self) -> usize {
        self.base
    }

    /// One past the highest address of the span.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(gort::heap::span_of(span.base()).unwrap().limit(), span.limit());
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn limit(&self) -> usize {
        self.base + self.pages * PAGE_SIZE
    }

    /// The number of heap pages in the span.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(gort::heap::span_of(span.base()).unwrap().pages(), 2);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The span's kind.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(gort::heap::span_of(span.base()).unwrap().kind(), gort::heap::SpanKind::Defer);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn kind(&self) -> SpanKind {
        self.kind
    }

    /// The owner word last set with [`SpanHandle::set_owner`] (0 if never set).
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert_eq!(gort::heap::span_of(span.base()).unwrap().owner(), 0);
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// Whether `addr` lies in `[base, limit)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = gort::heap::alloc_span(2, gort::heap::SpanKind::Defer).unwrap();
    /// assert!(gort::heap::span_of(span.base()).unwrap().contains(span.limit() - 1));
    /// gort::heap::free_span(span);
    /// ```
    #[inline]
    pub fn contains(&self, addr: usize) -> bool {
        (self.base..self.limit()).contains(&addr)
    }
}

/// A report of a pointer that does not resolve to an allocated span, like Go's `badPointer`.
///
/// # Examples
///
/// ```
/// let report = gort::heap::bad_pointer(0x10, "a test");
/// assert_eq!(report.to_string(), "pointer 0x10 to unallocated span (no span at this address) found in a test");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPointer {
    addr: usize,
    seen: Option<SeenSpan>,
    found_in: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeenSpan {
    state: SpanState,
    base: usize,
    limit: usize,
}

impl BadPointer {
    /// The pointer's value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gort::heap::bad_pointer(0x40, "a test").addr(), 0x40);
    /// ```
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// The state of the span the index named for the pointer's page, if it named one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gort::heap::bad_pointer(0x40, "a test").span_state(), None);
    /// ```
    pub fn span_state(&self) -> Option<SpanState> {
        self.seen.map(|seen| seen.state)
    }

    /// Where the pointer was found, as the caller described it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gort::heap::bad_pointer(0x40, "a test").found_in(), "a test");
    /// ```
    pub fn found_in(&self) -> &str {
        &self.found_in
    }
}

impl fmt::Display for BadPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seen {
            None => write!(
                f,
                "pointer {:#x} to unallocated span (no span at this address)",
                self.addr
            )?,
            Some(SeenSpan {
                state: SpanState::InUse,
                base,
                limit,
            }) => write!(
                f,
                "pointer {:#x} outside its span (span [{base:#x}, {limit:#x}) state InUse)",
                self.addr
            )?,
            Some(SeenSpan { state, base, limit }) => write!(
                f,
                "pointer {:#x} to unallocated span (span [{base:#x}, {limit:#x}) state {state:?})",
                self.addr
            )?,
        }
        write!(f, " found in {}", self.found_in)
    }
}

impl std::error::Error for BadPointer {}

/// Address-space accounting of the heap.
///
/// # Examples
///
/// ```
/// let span = gort::heap::alloc_span(1, gort::heap::SpanKind::Defer).unwrap();
/// let stats = gort::heap::stats();
/// assert!(stats.spans_in_use >= 1 && stats.reserved_bytes >= stats.in_use_bytes);
/// gort::heap::free_span(span);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeapStats {
    /// Address space reserved from the OS.
    pub reserved_bytes: usize,
    /// Bytes in allocated spans.
    pub in_use_bytes: usize,
    /// Allocated spans.
    pub spans_in_use: usize,
    /// Arenas reserved so far.
    pub arenas: usize,
    /// Allocated spans of each kind: stacks, stack segments, defer spans.
    pub spans_by_kind: ByKind,
    /// Bytes in allocated spans of each kind.
    pub bytes_by_kind: ByKind,
}

/// A count per [`SpanKind`].
///
/// # Examples
///
/// ```
/// let span = gort::heap::alloc_span(1, gort::heap::SpanKind::Defer).unwrap();
/// let stats = gort::heap::stats();
/// assert!(stats.spans_by_kind.defer >= 1);
/// assert!(stats.bytes_by_kind.defer >= gort::heap::PAGE_SIZE);
/// gort::heap::free_span(span);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ByKind {
    /// Goroutine (and plain) stacks.
    pub stack: usize,
    /// Segments stacks grew into.
    pub stack_segment: usize,
    /// Defer spans.
    pub defer: usize,
}

impl ByKind {
    pub(crate) const ZERO: ByKind = ByKind {
        stack: 0,
        stack_segment: 0,
        defer: 0,
    };

    fn count(&mut self, kind: SpanKind) -> &mut usize {
        match kind {
            SpanKind::Stack => &mut self.stack,
            SpanKind::StackSegment => &mut self.stack_segment,
            SpanKind::Defer => &mut self.defer,
        }
    }
}

/// A span heap. The process has one (behind the free functions of this module); tests and loom
/// models build small ones over fake address space.
pub(crate) struct Heap {
    index: Index,
    inner: Mutex<Inner>,
}

struct Inner {
    pages: PageAlloc,
    spans: SpanPool,
    source: AddressSource,
    arenas: Vec<Arena>,
    stats: HeapStats,
}

impl Heap {
    pub(crate) fn new(source: AddressSource) -> Self {
        Heap {
            index: Index::new(),
            inner: Mutex::new(Inner {
                pages: PageAlloc::default(),
                spans: SpanPool::default(),
                source,
                arenas: Vec::new(),
                stats: HeapStats::default(),
            }),
        }
    }

    /// Allocates a span of `pages` heap pages by the allocation protocol.
    pub(crate) fn alloc_span(&self, pages: usize, kind: SpanKind) -> Result<SpanHandle, HeapError> {
        if pages == 0 || pages > MAX_SPAN_PAGES {
            return Err(HeapError::InvalidPages {
                pages,
                max: MAX_SPAN_PAGES,
            });
        }
        // (1) Pages, and a dead span to describe them.
        let (span, first_page) = {
            let mut inner = self.inner.lock();
            let first_page = match inner.pages.alloc(pages) {
                Some(first_page) => first_page,
                None => {
                    inner.add_arena(pages, &self.index)?;
                    inner
                        .pages
                        .alloc(pages)
                        .expect("a new arena holds the request")
                }
            };
            inner.stats.spans_in_use += 1;
            *inner.stats.spans_by_kind.count(kind) += 1;
            *inner.stats.bytes_by_kind.count(kind) += pages * PAGE_SIZE;
            (inner.spans.get(), first_page)
        };
        let base = first_page << PAGE_SHIFT;
        // SAFETY: the span lives in type-stable storage, and the pool gave it to this call alone.
        let dead = unsafe { span.as_ref() };
        dead.init(base, pages, kind); // (2)
        self.index.set(base, pages, span.as_ptr()); // (3)
        dead.publish(); // (4)
        publication_barrier(); // (5)
        Ok(SpanHandle { span })
    }

    /// Frees a span: `Dead`, then the index, then the pages.
    ///
    /// # Panics
    ///
    /// If the span does not belong to this heap.
    pub(crate) fn free_span(&self, handle: SpanHandle) {
        assert!(
            self.index.lookup(handle.base()) == Some(handle.span),
            "span [{:#x}, {:#x}) freed to a heap that does not hold it",
            handle.base(),
            handle.limit()
        );
        let kind = handle.kind();
        handle.span().retire();
        self.index.set(handle.base(), handle.pages(), NO_SPAN);
        let mut inner = self.inner.lock();
        *inner.stats.spans_by_kind.count(kind) -= 1;
        *inner.stats.bytes_by_kind.count(kind) -= handle.pages() * PAGE_SIZE;
        inner
            .pages
            .free(handle.base() >> PAGE_SHIFT, handle.pages());
        inner.spans.put(handle.span);
        inner.stats.spans_in_use -= 1;
    }

    /// The `InUse` span holding `addr`, or `None`. Safe to call with any value, concurrently
    /// with allocation and free.
    #[inline]
    pub(crate) fn span_of(&self, addr: usize) -> Option<SpanInfo> {
        let span = self.index.lookup(addr)?;
        // SAFETY: index entries point into type-stable storage that lives as long as the heap.
        let info = unsafe { span.as_ref() }.read_in_use()?;
        info.contains(addr).then_some(info)
    }

    /// Describes why `addr` does not resolve, for a report naming where it was found. The span
    /// fields it reports are read without validation: a report describes what was seen.
    pub(crate) fn bad_pointer(&self, addr: usize, found_in: &str) -> BadPointer {
        let seen = self.index.lookup(addr).map(|span| {
            // SAFETY: as in `span_of`.
            let span = unsafe { span.as_ref() };
            let state = span.state(Ordering::Acquire);
            let base = span.base();
            SeenSpan {
                state,
                base,
                limit: base + span.pages() * PAGE_SIZE,
            }
        });
        BadPointer {
            addr,
            seen,
            found_in: found_in.to_owned(),
        }
    }

    pub(crate) fn stats(&self) -> HeapStats {
        let inner = self.inner.lock();
        HeapStats {
            in_use_bytes: inner.stats.reserved_bytes - inner.pages.free_pages() * PAGE_SIZE,
            ..inner.stats
        }
    }
}

impl Inner {
    /// Reserves an arena holding at least `pages` pages and gives its pages to the allocator.
    fn add_arena(&mut self, pages: usize, index: &Index) -> Result<(), HeapError> {
        let need = pages * PAGE_SIZE;
        let want = self
            .stats
            .reserved_bytes
            .clamp(MIN_ARENA_BYTES, MAX_ARENA_BYTES);
        let arena = self.source.reserve(need, want)?;
        let last = arena.base + arena.bytes - 1;
        for region in (arena.base / REGION_BYTES)..=(last / REGION_BYTES) {
            if let Err(errno) = index.install_region(region * REGION_BYTES) {
                // No span was handed out of the arena: it can go back whole.
                arena.release();
                return Err(HeapError::AddressSpaceExhausted {
                    requested_bytes: need,
                    os_error: Some(errno),
                });
            }
        }
        self.pages
            .free(arena.base >> PAGE_SHIFT, arena.bytes >> PAGE_SHIFT);
        self.stats.reserved_bytes += arena.bytes;
        self.stats.arenas += 1;
        self.arenas.push(arena);
        Ok(())
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        for arena in self.inner.lock().arenas.drain(..) {
            arena.release();
        }
    }
}

#[cfg(not(loom))]
static HEAP: std::sync::OnceLock<Heap> = std::sync::OnceLock::new();

#[cfg(not(loom))]
#[inline]
fn global() -> &'static Heap {
    HEAP.get_or_init(|| Heap::new(AddressSource::mmap()))
}

/// Allocates a span of `pages` heap pages from the process's span heap.
///
/// The pages are mapped read-write and committed lazily on first touch. The span is published
/// (visible to [`span_of`] from every thread) before this returns.
///
/// # Errors
///
/// [`HeapError::InvalidPages`] for 0 pages or more than the heap can hold,
/// [`HeapError::AddressSpaceExhausted`] when the OS refuses to reserve more address space.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, SpanKind};
///
/// let span = heap::alloc_span(4, SpanKind::StackSegment)?;
/// assert_eq!(span.pages(), 4);
/// assert_eq!(heap::span_of(span.base()).map(|info| info.kind()), Some(SpanKind::StackSegment));
/// heap::free_span(span);
/// # Ok::<(), gort::heap::HeapError>(())
/// ```
#[cfg(not(loom))]
pub fn alloc_span(pages: usize, kind: SpanKind) -> Result<SpanHandle, HeapError> {
    global().alloc_span(pages, kind)
}

/// Gives a span back to the process's span heap. Its pages are not touched: whoever wrote to
/// them releases them first if the memory should go back to the OS.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, SpanKind};
///
/// let span = heap::alloc_span(1, SpanKind::Defer).unwrap();
/// heap::free_span(span); // its pages may now back another span
/// ```
#[cfg(not(loom))]
pub fn free_span(span: SpanHandle) {
    global().free_span(span)
}

/// Resolves an untrusted address to the allocated span holding it.
///
/// Answers `None` for any address outside every allocated span, including addresses of freed
/// spans; it never faults, whatever the value.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, SpanKind};
///
/// let span = heap::alloc_span(1, SpanKind::Defer).unwrap();
/// assert_eq!(heap::span_of(span.base()).unwrap().base(), span.base());
/// assert!(heap::span_of(0).is_none());
/// assert!(heap::span_of(usize::MAX).is_none());
/// heap::free_span(span);
/// ```
#[cfg(not(loom))]
#[inline]
pub fn span_of(addr: usize) -> Option<SpanInfo> {
    global().span_of(addr)
}

/// [`span_of`] for a signal handler: never initialises the heap (which allocates), and answers
/// `None` if nothing has used the heap yet.
#[cfg(not(loom))]
pub(crate) fn span_of_in_signal_handler(addr: usize) -> Option<SpanInfo> {
    HEAP.get()?.span_of(addr)
}

/// Builds the report for an address that [`span_of`] did not resolve, naming the pointer, the
/// span state seen for it and where it was found.
///
/// # Examples
///
/// ```
/// use gort::heap;
///
/// let local = 0u64;
/// let addr = &local as *const u64 as usize; // the thread's own stack: not a heap span
/// assert!(heap::span_of(addr).is_none());
/// let report = heap::bad_pointer(addr, "the defer chain of goroutine 7");
/// assert_eq!(report.span_state(), None);
/// assert!(report.to_string().ends_with("found in the defer chain of goroutine 7"));
/// ```
#[cfg(not(loom))]
pub fn bad_pointer(addr: usize, found_in: &str) -> BadPointer {
    global().bad_pointer(addr, found_in)
}

/// Address-space accounting of the process's span heap.
///
/// # Examples
///
/// ```
/// let before = gort::heap::stats();
/// let span = gort::heap::alloc_span(1, gort::heap::SpanKind::Defer).unwrap();
/// assert!(gort::heap::stats().reserved_bytes >= before.reserved_bytes);
/// gort::heap::free_span(span);
/// ```
#[cfg(not(loom))]
pub fn stats() -> HeapStats {
    global().stats()
}
