//! Loom model of the collector's scan claim against a goroutine that grows its stack into a new
//! segment and gives it back (the scenario of the two seed commits, with the status word's
//! claim between the growing goroutine and the scan).
//!
//! The goroutine wakes (`start_running`), allocates a segment by the heap's protocol, links it
//! with a plain write (as `Growth` does), parks (`leave_running`), runs again, unlinks and frees
//! the segment, and finishes. The collector takes the scan claim; holding it, it reads the link
//! and resolves it with `span_of`: every link it can read must resolve to the segment, and the
//! plain link must never be read while the goroutine writes it.
//!
//! Broken variants, each caught as the scan's read racing the goroutine's writes:
//! - `--cfg gort_loom_blind_start` lets the goroutine run without looking at the claim;
//! - `--cfg gort_loom_unfenced_claim` drops the scanner's fence between announcing its claim
//!   and reading the status (the goroutine still passes its own, light, fence).

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use crate::heap::SpanKind;
use crate::heap::loom_model::{assert_caught, explore, model_heap};
use crate::sched::status::{self, StatusWord};

fn segment_growth_against_a_claimed_scan() {
    explore(|| {
        let heap = Arc::new(model_heap());
        let word = Arc::new(StatusWord::new(status::WAITING));
        let link = Arc::new(UnsafeCell::new(0usize));

        let collector = {
            let (heap, word, link) = (Arc::clone(&heap), Arc::clone(&word), Arc::clone(&link));
            thread::spawn(move || {
                StatusWord::announce_claims([&*word]);
                if word.confirm_claim().is_none() {
                    return;
                }
                // SAFETY: the claim keeps the goroutine from running, so nothing writes the link.
                let segment = link.with(|link| unsafe { *link });
                if segment != 0 {
                    match heap.span_of(segment) {
                        Some(info) => assert_eq!(info.kind(), SpanKind::StackSegment),
                        None => panic!(
                            "runtime: {}",
                            heap.bad_pointer(segment, "the segment links of goroutine 1")
                        ),
                    }
                }
                word.release_scan();
            })
        };

        word.start_running().expect("the goroutine was queued");
        let segment = heap
            .alloc_span(1, SpanKind::StackSegment)
            .expect("the model heap has room");
        // SAFETY: the goroutine runs, so a scan cannot hold its claim.
        link.with_mut(|link| unsafe { *link = segment.base() + 64 });
        word.leave_running(status::WAITING);

        word.start_running().expect("the goroutine was queued");
        // SAFETY: as above.
        link.with_mut(|link| unsafe { *link = 0 });
        heap.free_span(segment);
        word.leave_running(status::DEAD);

        collector.join().expect("the scan found the link in place");
    });
}

#[cfg(not(any(gort_loom_blind_start, gort_loom_unfenced_claim)))]
#[test]
fn loom_a_claimed_scan_sees_segment_links_whole() {
    segment_growth_against_a_claimed_scan();
}

#[cfg(gort_loom_blind_start)]
#[test]
fn loom_catches_a_start_that_ignores_the_scan_claim() {
    assert_caught(segment_growth_against_a_claimed_scan, "Causality violation");
}

#[cfg(gort_loom_unfenced_claim)]
#[test]
fn loom_catches_a_claim_confirmed_without_the_fence() {
    assert_caught(segment_growth_against_a_claimed_scan, "Causality violation");
}
