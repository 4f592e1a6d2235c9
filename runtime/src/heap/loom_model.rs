//! Loom models of the span heap's concurrency protocols, each with a broken variant the model
//! must catch (a check that cannot fail proves nothing).
//!
//! - **Publication** (the race the two seed commits fix): a growing goroutine allocates a stack
//!   segment and writes a pointer into it where a concurrent collector can read it (a defer
//!   record linked from the goroutine); the collector resolves whatever it reads with `span_of`,
//!   and a pointer that does not resolve is a bad pointer. The collector reads the link with an
//!   acquire load; the writer stores it with a plain (relaxed) store after the allocation,
//!   relying on the publication barrier alone. The heap starts empty, so the model also covers
//!   the index install racing the lookup. Broken variant: `--cfg gort_loom_no_publication`
//!   removes the barrier.
//! - **Reuse**: a span is freed and its struct immediately reused for another span while a
//!   lookup of an address in both races with them; the lookup must answer nothing or one of the
//!   two spans as it really was, never a mix. Broken variant: `--cfg gort_loom_torn_span` skips
//!   the generation check of the read.

use loom::sync::Arc;
use loom::thread;

use super::*;
use crate::shim::atomic::AtomicUsize;

/// A heap over a fake address space (the heap never touches the pages it manages).
pub(crate) fn model_heap() -> Heap {
    Heap::new(AddressSource::Fake {
        next: REGION_BYTES,
        end: 1 << ADDR_BITS,
    })
}

/// Explores `model` with the bound every heap-side model uses.
pub(crate) fn explore(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(model);
}

/// One segment growth racing one scan. Panics, naming the bad pointer, if the scan reads the
/// link into the new segment but cannot resolve it.
fn segment_growth_against_a_scan() {
    explore(|| {
        let heap = Arc::new(model_heap());
        let defer_link = Arc::new(AtomicUsize::new(0));

        let collector = {
            let (heap, defer_link) = (Arc::clone(&heap), Arc::clone(&defer_link));
            thread::spawn(move || {
                let record = defer_link.load(Ordering::Acquire);
                if record != 0 {
                    match heap.span_of(record) {
                        Some(info) => assert_eq!(info.kind(), SpanKind::StackSegment),
                        None => panic!(
                            "runtime: {}",
                            heap.bad_pointer(record, "the defer chain of goroutine 1")
                        ),
                    }
                }
            })
        };

        let segment = heap
            .alloc_span(1, SpanKind::StackSegment)
            .expect("the model heap has room");
        defer_link.store(segment.base() + 64, Ordering::Relaxed);

        collector
            .join()
            .expect("the collector resolved the pointer");
        heap.free_span(segment);
    });
}

/// A free and a reuse of the same span struct racing one lookup. Panics with "torn span" if
/// the lookup answers with a span that never existed.
fn span_reuse_against_a_lookup() {
    explore(|| {
        let heap = Arc::new(model_heap());
        let old = heap
            .alloc_span(1, SpanKind::Stack)
            .expect("the model heap has room");
        old.set_owner(1);
        let addr = old.base();
        let old_info = heap.span_of(addr).expect("a live span resolves");

        let lookup = {
            let heap = Arc::clone(&heap);
            thread::spawn(move || heap.span_of(addr))
        };

        heap.free_span(old);
        let new = heap
            .alloc_span(2, SpanKind::Defer)
            .expect("the model heap has room");
        let new_info = heap
            .span_of(addr)
            .expect("the freed pages and span struct are reused");
        assert_eq!(
            new_info.base(),
            addr,
            "the new span starts where the old one did"
        );

        let seen = lookup.join().expect("the lookup does not panic");
        assert!(
            seen.is_none() || seen == Some(old_info) || seen == Some(new_info),
            "torn span: {seen:?} is neither {old_info:?} nor {new_info:?}"
        );
        heap.free_span(new);
    });
}

/// Runs a model that must fail, and checks it failed for the expected reason.
pub(crate) fn assert_caught(model: fn(), expected: &str) {
    let caught = std::panic::catch_unwind(model);
    let payload = caught.expect_err("the model must catch the broken variant");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains(expected),
        "caught for another reason: {message}"
    );
}

#[cfg(not(gort_loom_no_publication))]
#[test]
fn loom_segment_publication_is_seen_by_a_concurrent_scan() {
    segment_growth_against_a_scan();
}

#[cfg(gort_loom_no_publication)]
#[test]
fn loom_catches_a_missing_publication_barrier() {
    assert_caught(segment_growth_against_a_scan, "to unallocated span");
}

#[cfg(not(gort_loom_torn_span))]
#[test]
fn loom_span_reuse_never_tears_a_lookup() {
    span_reuse_against_a_lookup();
}

#[cfg(gort_loom_torn_span)]
#[test]
fn loom_catches_a_torn_span_read() {
    assert_caught(span_reuse_against_a_lookup, "torn span");
}
