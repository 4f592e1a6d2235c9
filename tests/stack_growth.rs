//! Stacks that grow beyond their reservation into segments: deep recursion through
//! `maybe_grow`, reuse of the spare segment, panics and backtraces across segments, plain
//! threads, and an overflow inside a segment.

use std::hint::black_box;
use std::panic;

use gort::heap::{self, SpanKind};
use gort::stack;

const KIB: usize = 1024;

/// Recurses `depth` levels with 1 KiB frames, growing the stack every 8 levels when less than
/// 32 KiB remain; answers the sum of the depths visited (checked against the formula) and the
/// number of distinct segments seen (by their spans).
#[inline(never)]
fn recurse(depth: u64, segment_size: usize, segments: &mut Vec<usize>) -> u64 {
    let frame = black_box([depth as u8; KIB]);
    if depth == 0 {
        return 0;
    }
    let here = frame.as_ptr() as usize;
    // A thread's own stack is not a span; goroutine stacks and segments are.
    if let Some(span) = heap::span_of(here)
        && span.kind() == SpanKind::StackSegment
        && segments.last() != Some(&span.base())
    {
        segments.push(span.base());
    }
    let below = if depth.is_multiple_of(8) {
        stack::maybe_grow(32 * KIB, segment_size, || {
            recurse(depth - 1, segment_size, segments)
        })
    } else {
        recurse(depth - 1, segment_size, segments)
    };
    below + depth + u64::from(frame[KIB - 1].wrapping_sub(depth as u8))
}

#[test]
fn maybe_grow_goes_far_beyond_the_reservation_and_back() {
    let depth = 8 * 1024; // 8 MiB of 1 KiB frames, on a 64 KiB reservation
    let deep = gort::Builder::new()
        .stack_size(64 * KIB)
        .spawn(move || {
            let before = stack::remaining();
            let mut segments = Vec::new();
            let sum = recurse(depth, 256 * KIB, &mut segments);
            (sum, segments, before, stack::remaining())
        })
        .unwrap();
    let (sum, segments, before, after) = deep.join().unwrap();
    assert_eq!(sum, depth * (depth + 1) / 2);
    assert!(
        segments.len() >= 32,
        "8 MiB in 256 KiB segments, but saw {}",
        segments.len()
    );
    assert!(before > 32 * KIB && before <= 64 * KIB, "{before}");
    assert!(
        before.abs_diff(after) < KIB,
        "back on the goroutine's own stack: {before} then {after}"
    );
}

#[test]
fn a_loop_crossing_the_boundary_reuses_its_segment() {
    gort::run(|| {
        let bases: Vec<usize> = (0..1000)
            .map(|_| {
                stack::grow(64 * KIB, || {
                    let local = black_box(0u8);
                    heap::span_of(&local as *const u8 as usize)
                        .expect("a segment is a span")
                        .base()
                })
            })
            .collect();
        assert!(
            bases.iter().all(|&base| base == bases[0]),
            "every crossing after the first uses the spare"
        );
        let segment = heap::span_of(bases[0]).unwrap();
        assert_eq!(segment.kind(), SpanKind::StackSegment);
        assert!(segment.limit() - segment.base() >= 64 * KIB);
        // A larger request replaces the spare.
        let larger = stack::grow(512 * KIB, stack::remaining);
        assert!(larger > 500 * KIB && larger <= 512 * KIB, "{larger}");
    });
}

#[test]
fn remaining_tracks_the_segment_in_use() {
    gort::run(|| {
        let outside = stack::remaining();
        let (inside, nested) = stack::grow(128 * KIB, || {
            let inside = stack::remaining();
            (inside, stack::grow(1 << 20, stack::remaining))
        });
        assert!(inside > 120 * KIB && inside <= 128 * KIB, "{inside}");
        assert!(nested > 1000 * KIB && nested <= 1 << 20, "{nested}");
        assert!(outside.abs_diff(stack::remaining()) < KIB);
    });
}

#[test]
fn panics_unwind_across_segments_and_leave_the_record_consistent() {
    let handle = gort::spawn(|| {
        let before = stack::remaining();
        let caught = panic::catch_unwind(|| {
            stack::grow(64 * KIB, || {
                stack::grow(64 * KIB, || -> u32 { panic!("two segments deep") })
            })
        });
        let message = *caught.unwrap_err().downcast::<&str>().unwrap();
        assert_eq!(message, "two segments deep");
        let after = stack::remaining();
        assert!(
            before.abs_diff(after) < KIB,
            "the unwind restored the stack bounds: {before} then {after}"
        );
        // Growing again works, and a panic escaping the goroutine reaches its join.
        stack::grow(64 * KIB, || panic!("escapes"))
    });
    let payload = handle.join().unwrap_err();
    assert_eq!(*payload.downcast::<&str>().unwrap(), "escapes");
}

#[inline(never)]
fn frame_below_the_segment() -> String {
    let backtrace = stack::grow(64 * KIB, || {
        black_box(std::backtrace::Backtrace::force_capture().to_string())
    });
    black_box(backtrace)
}

#[test]
fn backtraces_cross_from_a_segment_into_the_stack_below() {
    let backtrace = gort::run(frame_below_the_segment);
    assert!(
        backtrace.contains("frame_below_the_segment"),
        "the backtrace stops at the segment:\n{backtrace}"
    );
}

#[test]
fn plain_threads_grow_too() {
    let remaining = stack::remaining();
    assert!(remaining > 0);
    let mut segments = Vec::new();
    let depth = 4 * 1024;
    assert_eq!(
        recurse(depth, 256 * KIB, &mut segments),
        depth * (depth + 1) / 2
    );
    let inside = stack::grow(256 * KIB, stack::remaining);
    assert!(inside > 250 * KIB && inside <= 256 * KIB, "{inside}");
    assert!(remaining.abs_diff(stack::remaining()) < KIB);
}

#[test]
#[should_panic(expected = "gort::stack::grow: stack size 2147483648 bytes is above the maximum")]
fn a_segment_above_the_largest_class_is_refused() {
    stack::grow(2 << 30, || ());
}

/// Recurses with 1 KiB frames without ever growing, until `limit` (never reached: the segment
/// overflows first).
#[inline(never)]
fn overflow(depth: u64, limit: u64) -> u64 {
    let frame = black_box([depth as u8; KIB]);
    if depth == limit {
        return 0;
    }
    overflow(depth + 1, limit) + u64::from(frame[0])
}

#[test]
fn an_overflow_inside_a_segment_is_reported_and_aborts() {
    let name = "an_overflow_inside_a_segment_is_reported_and_aborts";
    if gort_suite::is_child(name) {
        gort_suite::announce_and_run(gort::Builder::new().name("segmented"), || {
            stack::grow(16 * KIB, || overflow(0, u64::MAX));
        });
        unreachable!("the overflow ends the process");
    }
    let stderr = gort_suite::child_abort_message(name);
    let id = gort_suite::spawned_id(&stderr);
    let expected = format!(
        "fatal error: goroutine {id} [segmented] stack overflow in a 16 KiB stack segment; grow with a larger segment size"
    );
    assert!(stderr.contains(&expected), "no {expected:?} in\n{stderr}");
}
