//! Loom models of span publication: the race the two seed commits fix.
//!
//! A growing goroutine allocates a stack segment and writes a pointer into it where a
//! concurrent collector can read it (a defer record linked from the goroutine); the collector
//! resolves whatever it reads with `span_of`, and a pointer that does not resolve is a bad
//! pointer. The collector reads the link with an acquire load; the writer stores it with a plain
//! (relaxed) store after the allocation, relying on the publication barrier alone.
//!
//! Built with `--cfg gort_loom_no_publication` the barrier is gone, and the model must find the
//! execution in which the collector sees the pointer but not the span.

use loom::sync::Arc;
use loom::thread;

use super::*;
use crate::sync::atomic::AtomicUsize;

/// A heap over a fake address space, with its arena and span storage set up before the model's
/// threads start, so the model explores the protocol rather than the heap's one-time setup.
fn model_heap() -> Heap {
    let heap = Heap::new(AddressSource::Fake {
        next: REGION_BYTES,
        end: 1 << ADDR_BITS,
    });
    {
        let mut inner = heap.inner.lock();
        inner
            .add_arena(1, &heap.index)
            .expect("the fake address space holds an arena");
        inner.spans.reserve(1);
    }
    heap
}

/// One segment growth racing one scan. Panics, naming the bad pointer, if the scan reads the
/// link into the new segment but cannot resolve it.
fn segment_growth_against_a_scan() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
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

#[cfg(not(gort_loom_no_publication))]
#[test]
fn loom_segment_publication_is_seen_by_a_concurrent_scan() {
    segment_growth_against_a_scan();
}

#[cfg(gort_loom_no_publication)]
#[test]
fn loom_catches_a_missing_publication_barrier() {
    let caught = std::panic::catch_unwind(segment_growth_against_a_scan);
    let payload =
        caught.expect_err("the model must find the bad pointer when the barrier is missing");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains("to unallocated span"),
        "caught for another reason: {message}"
    );
}
