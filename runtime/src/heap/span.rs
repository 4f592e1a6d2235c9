//! Spans and their type-stable storage.
//!
//! A [`Span`] describes a run of heap pages. Every field is an atomic because readers that do not
//! trust a pointer (the collector, the fault handler) may read a span while its owner frees or
//! re-initialises it; the `state` field is the publication point for all the others.
//!
//! Invariants:
//! - a span's fields change only while its state is `Dead`; `state.store(InUse, Release)` is the
//!   last write of an allocation and `state.store(Dead, Release)` the first write of a free;
//! - `generation` is odd exactly while the fields are being rewritten (a seqlock): a reader that
//!   races a free and a reuse of the same span struct sees the generation change and discards
//!   what it read, so it never answers with a mix of two spans' fields;
//! - span structs live in chunks that are never freed while their heap exists (type-stable
//!   storage): a racing reader may see a stale span, never freed memory;
//! - the free list of the pool is only touched under the heap lock.

use std::fmt;
use std::ptr::NonNull;

use super::SpanInfo;
use crate::shim::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

/// The life-cycle state of a span, published with release/acquire ordering.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, SpanKind, SpanState};
///
/// let span = heap::alloc_span(1, SpanKind::StackSegment).unwrap();
/// assert_eq!(span.state(), SpanState::InUse);
/// heap::free_span(span);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SpanState {
    /// Not allocated, or being initialised or torn down: no field may be trusted.
    Dead = 0,
    /// Allocated and fully initialised.
    InUse = 1,
}

impl SpanState {
    #[inline]
    fn from_u8(raw: u8) -> Self {
        match raw {
            1 => SpanState::InUse,
            _ => SpanState::Dead,
        }
    }
}

/// What a span's pages are used for.
///
/// # Examples
///
/// ```
/// use gort::heap::{self, SpanKind};
///
/// let span = heap::alloc_span(2, SpanKind::Defer).unwrap();
/// assert_eq!(heap::span_of(span.base()).unwrap().kind(), SpanKind::Defer);
/// heap::free_span(span);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum SpanKind {
    /// A goroutine stack: a guard region at its low end, then the usable stack.
    Stack = 1,
    /// A segment a goroutine's stack grew into beyond its reservation.
    StackSegment = 2,
    /// Heap records of goroutines' defer chains.
    Defer = 3,
}

impl SpanKind {
    #[inline]
    fn from_u8(raw: u8) -> Self {
        match raw {
            1 => SpanKind::Stack,
            2 => SpanKind::StackSegment,
            _ => SpanKind::Defer,
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpanKind::Stack => "stack",
            SpanKind::StackSegment => "stack segment",
            SpanKind::Defer => "defer",
        })
    }
}

/// One span's metadata. Only the heap creates, publishes and retires spans.
#[derive(Debug)]
pub(crate) struct Span {
    base: AtomicUsize,
    pages: AtomicUsize,
    kind: AtomicU8,
    owner: AtomicU64,
    state: AtomicU8,
    generation: AtomicU32,
}

impl Span {
    fn new() -> Self {
        Span {
            base: AtomicUsize::new(0),
            pages: AtomicUsize::new(0),
            kind: AtomicU8::new(0),
            owner: AtomicU64::new(0),
            state: AtomicU8::new(SpanState::Dead as u8),
            generation: AtomicU32::new(0),
        }
    }

    /// Step (2) of the allocation protocol: initialise every field while the span is `Dead`.
    pub(crate) fn init(&self, base: usize, pages: usize, kind: SpanKind) {
        debug_assert_eq!(self.state(Ordering::Relaxed), SpanState::Dead);
        // Only the allocating thread writes a dead span, so a plain increment is enough; the
        // fence keeps the field writes below from being seen before the odd generation.
        let generation = self.generation.load(Ordering::Relaxed);
        self.generation
            .store(generation.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.base.store(base, Ordering::Relaxed);
        self.pages.store(pages, Ordering::Relaxed);
        self.kind.store(kind as u8, Ordering::Relaxed);
        self.owner.store(0, Ordering::Relaxed);
    }

    /// Step (4): the state publishes every field written before it.
    pub(crate) fn publish(&self) {
        let generation = self.generation.load(Ordering::Relaxed);
        self.generation
            .store(generation.wrapping_add(1), Ordering::Release);
        self.state.store(SpanState::InUse as u8, Ordering::Release);
    }

    /// A consistent reading of the span's fields if it is `InUse`: `None` if it is not, or if it
    /// was re-initialised while being read.
    #[inline]
    pub(crate) fn read_in_use(&self) -> Option<SpanInfo> {
        if self.state(Ordering::Acquire) != SpanState::InUse {
            return None;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if generation % 2 == 1 {
            return None;
        }
        let info = SpanInfo {
            base: self.base(),
            pages: self.pages(),
            kind: self.kind(),
            owner: self.owner(),
        };
        fence(Ordering::Acquire);
        // The `gort_loom_torn_span` configuration skips the check, so that the loom model can
        // show it is needed.
        if cfg!(all(loom, gort_loom_torn_span))
            || self.generation.load(Ordering::Relaxed) == generation
        {
            Some(info)
        } else {
            None
        }
    }

    /// First step of a free: from here on no reader trusts the other fields.
    pub(crate) fn retire(&self) {
        self.state.store(SpanState::Dead as u8, Ordering::Release);
    }

    #[inline]
    pub(crate) fn state(&self, order: Ordering) -> SpanState {
        SpanState::from_u8(self.state.load(order))
    }

    #[inline]
    pub(crate) fn base(&self) -> usize {
        self.base.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn pages(&self) -> usize {
        self.pages.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn kind(&self) -> SpanKind {
        SpanKind::from_u8(self.kind.load(Ordering::Relaxed))
    }

    #[inline]
    pub(crate) fn owner(&self) -> u64 {
        self.owner.load(Ordering::Relaxed)
    }

    pub(crate) fn set_owner(&self, owner: u64) {
        self.owner.store(owner, Ordering::Relaxed);
    }
}

/// Spans per storage chunk (a handful under loom, whose models track every atomic).
const CHUNK: usize = if cfg!(loom) { 4 } else { 256 };

/// Type-stable storage for spans: chunks are only ever added, retired spans are reused.
#[derive(Debug, Default)]
pub(crate) struct SpanPool {
    chunks: Vec<Box<[Span]>>,
    free: Vec<NonNull<Span>>,
}

// SAFETY: the pool hands out pointers to spans whose fields are all atomics, and its own lists
// are only touched under the heap lock that owns the pool.
unsafe impl Send for SpanPool {}

impl SpanPool {
    /// A `Dead` span to initialise.
    pub(crate) fn get(&mut self) -> NonNull<Span> {
        if self.free.is_empty() {
            self.add_chunk();
        }
        self.free.pop().expect("a new chunk holds spans")
    }

    fn add_chunk(&mut self) {
        self.chunks.push((0..CHUNK).map(|_| Span::new()).collect());
        // Pointers are taken after the box has moved into `chunks`, from where it stays: moving a
        // box asserts unique access and would invalidate pointers taken before.
        let chunk = self.chunks.last().expect("a chunk was just pushed");
        self.free.extend(chunk.iter().map(NonNull::from));
    }

    /// Takes back a span that is `Dead` and no longer in the index.
    pub(crate) fn put(&mut self, span: NonNull<Span>) {
        self.free.push(span);
    }

    /// Makes sure at least `n` spans are ready, so a model allocates no chunk mid-run.
    #[cfg(all(test, loom))]
    pub(crate) fn reserve(&mut self, n: usize) {
        while self.free.len() < n {
            self.add_chunk();
        }
    }
}
