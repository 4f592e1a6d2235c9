//! Tests of the span heap over fake address space (nothing is mapped: the heap never touches
//! the pages it manages), plus one over real reservations under an address-space limit.

use std::sync::Arc;

use super::*;
use crate::testing;

const GIB: usize = 1 << 30;
/// Pages in the first (1 GiB) arena.
const ARENA_PAGES: usize = GIB / PAGE_SIZE;

fn fake_heap(bytes: usize) -> Heap {
    Heap::new(AddressSource::Fake {
        next: REGION_BYTES,
        end: REGION_BYTES + bytes,
    })
}

/// xorshift64*: a tiny seeded generator, so every run sees the same sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The model: which pages of the fake address space are allocated.
struct Model {
    used: Vec<bool>,
    used_pages: usize,
}

impl Model {
    fn page(addr: usize) -> usize {
        (addr - REGION_BYTES) / PAGE_SIZE
    }

    fn mark(&mut self, span: &SpanHandle, used: bool) {
        let first = Model::page(span.base());
        for page in &mut self.used[first..first + span.pages()] {
            assert_ne!(
                *page, used,
                "page {first} allocated twice or freed while free"
            );
            *page = used;
        }
        if used {
            self.used_pages += span.pages();
        } else {
            self.used_pages -= span.pages();
        }
    }

    fn longest_free_run(&self, reserved_pages: usize) -> usize {
        let (mut best, mut run) = (0, 0);
        for &used in &self.used[..reserved_pages] {
            run = if used { 0 } else { run + 1 };
            best = best.max(run);
        }
        best
    }
}

#[test]
fn random_alloc_and_free_agree_with_a_model() {
    let total = 4 * GIB;
    let heap = fake_heap(total);
    let mut model = Model {
        used: vec![false; total / PAGE_SIZE],
        used_pages: 0,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<SpanHandle> = Vec::new();
    for step in 0..testing::short_or_long(20_000, 1_000_000) {
        if live.is_empty() || rng.below(100) < 55 {
            let pages = match rng.below(100) {
                0 => 1 + rng.below(ARENA_PAGES / 2),
                1..=9 => 1 + rng.below(4096),
                _ => 1 + rng.below(32),
            };
            let before = heap.stats();
            match heap.alloc_span(pages, SpanKind::StackSegment) {
                Ok(span) => {
                    let after = heap.stats();
                    if after.arenas > before.arenas {
                        let reserved = before.reserved_bytes / PAGE_SIZE;
                        assert!(
                            model.longest_free_run(reserved) < pages,
                            "step {step}: grew the heap for {pages} pages while a free run fit"
                        );
                    }
                    model.mark(&span, true);
                    for addr in [span.base(), span.base() + 1, span.limit() - 1] {
                        assert_eq!(
                            heap.span_of(addr).map(|info| info.base()),
                            Some(span.base())
                        );
                    }
                    live.push(span);
                }
                Err(HeapError::AddressSpaceExhausted { .. }) => {
                    let reserved = heap.stats().reserved_bytes / PAGE_SIZE;
                    assert!(
                        model.longest_free_run(reserved) < pages,
                        "step {step}: refused a fitting span"
                    );
                }
                Err(err) => panic!("step {step}: {err}"),
            }
        } else {
            let span = live.swap_remove(rng.below(live.len()));
            let (base, limit) = (span.base(), span.limit());
            model.mark(&span, false);
            heap.free_span(span);
            assert_eq!(heap.span_of(base), None);
            assert_eq!(heap.span_of(limit - 1), None);
        }
        let stats = heap.stats();
        assert_eq!(stats.spans_in_use, live.len());
        assert_eq!(stats.in_use_bytes, model.used_pages * PAGE_SIZE);
    }
    for span in live.drain(..) {
        heap.free_span(span);
    }
    let stats = heap.stats();
    assert_eq!((stats.spans_in_use, stats.in_use_bytes), (0, 0));
    // Everything coalesced back: at most one free run per arena (fake arenas are contiguous, so
    // theirs merge further).
    let runs = heap.inner.lock().pages.runs();
    assert!(
        (1..=stats.arenas).contains(&runs),
        "{runs} free runs over {} arenas",
        stats.arenas
    );
}

#[test]
fn lookups_answer_exactly_inside_spans() {
    let heap = fake_heap(2 * GIB);
    let a = heap.alloc_span(3, SpanKind::Stack).unwrap();
    let b = heap.alloc_span(2, SpanKind::Defer).unwrap();
    assert_eq!(
        a.limit(),
        b.base(),
        "a fresh arena is handed out in address order"
    );
    let info_a = heap.span_of(a.base()).unwrap();
    assert_eq!(
        (info_a.base(), info_a.pages(), info_a.kind()),
        (a.base(), 3, SpanKind::Stack)
    );
    assert_eq!(heap.span_of(a.limit() - 1), Some(info_a));
    assert_eq!(
        heap.span_of(a.limit()).map(|info| info.kind()),
        Some(SpanKind::Defer)
    );
    assert_eq!(
        heap.span_of(b.limit() - 1).map(|info| info.base()),
        Some(b.base())
    );
    assert_eq!(
        heap.span_of(b.limit()),
        None,
        "the free page after the last span"
    );
    assert_eq!(heap.span_of(a.base() - 1), None, "below the arena");
    for addr in [0, 1, PAGE_SIZE, usize::MAX, 1 << 47, 1 << 48] {
        assert_eq!(heap.span_of(addr), None, "{addr:#x}");
    }
    heap.free_span(a);
    heap.free_span(b);
}

#[test]
fn freed_spans_vanish_from_the_index_and_their_pages_coalesce() {
    let heap = fake_heap(2 * GIB);
    let spans: Vec<_> = (0..3)
        .map(|_| heap.alloc_span(10, SpanKind::Defer).unwrap())
        .collect();
    let first_base = spans[0].base();
    let [a, b, c] = <[SpanHandle; 3]>::try_from(spans).unwrap();
    let b_base = b.base();
    heap.free_span(a);
    heap.free_span(c);
    assert_eq!(heap.span_of(first_base), None);
    let report = heap.bad_pointer(first_base + 8, "a test");
    assert_eq!(report.span_state(), None);
    assert_eq!(
        report.to_string(),
        format!(
            "pointer {:#x} to unallocated span (no span at this address) found in a test",
            first_base + 8
        )
    );
    heap.free_span(b);
    assert_eq!(heap.span_of(b_base), None);
    // The three runs merged with each other and the rest of the arena: a span over all three
    // starts where the first did.
    let whole = heap.alloc_span(30, SpanKind::Defer).unwrap();
    assert_eq!(whole.base(), first_base);
    assert_eq!(heap.inner.lock().pages.runs(), 1);
    heap.free_span(whole);
}

#[test]
fn bad_pointer_reports_name_the_state_seen() {
    let dead = BadPointer {
        addr: 0x5000,
        seen: Some(SeenSpan {
            state: SpanState::Dead,
            base: 0x4000,
            limit: 0x8000,
        }),
        found_in: "the defer chain of goroutine 3".into(),
    };
    assert_eq!(dead.span_state(), Some(SpanState::Dead));
    assert_eq!(
        dead.to_string(),
        "pointer 0x5000 to unallocated span (span [0x4000, 0x8000) state Dead) found in the defer chain of goroutine 3"
    );
    let outside = BadPointer {
        seen: Some(SeenSpan {
            state: SpanState::InUse,
            base: 0x8000,
            limit: 0xc000,
        }),
        ..dead
    };
    assert!(
        outside
            .to_string()
            .starts_with("pointer 0x5000 outside its span (span [0x8000, 0xc000) state InUse)")
    );
}

#[test]
fn a_span_from_another_heap_is_refused() {
    let one = fake_heap(2 * GIB);
    let other = fake_heap(2 * GIB);
    let refused = |span: SpanHandle| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| other.free_span(span))).is_err()
    };
    // `other` has no arena at that address yet.
    let first = one.alloc_span(1, SpanKind::Defer).unwrap();
    let base = first.base();
    assert!(refused(first));
    // `other` has a live span of its own at the very address (fake heaps share addresses).
    let second = one.alloc_span(1, SpanKind::Defer).unwrap();
    let addr = second.base();
    let others: Vec<_> = (0..2)
        .map(|_| other.alloc_span(1, SpanKind::Defer).unwrap())
        .collect();
    assert_eq!(others[1].base(), addr);
    assert!(refused(second));
    for addr in [base, addr] {
        assert!(
            one.span_of(addr).is_some(),
            "the owning heap still holds its span"
        );
        assert!(other.span_of(addr).is_some(), "and so does the other");
    }
    for span in others {
        other.free_span(span);
    }
}

#[test]
fn arenas_are_added_on_demand_and_double_the_heap() {
    let heap = fake_heap(16 * GIB);
    let first = heap.alloc_span(ARENA_PAGES, SpanKind::Stack).unwrap();
    assert_eq!((heap.stats().arenas, heap.stats().reserved_bytes), (1, GIB));
    let second = heap.alloc_span(1, SpanKind::Stack).unwrap();
    assert_eq!(
        (heap.stats().arenas, heap.stats().reserved_bytes),
        (2, 2 * GIB)
    );
    let third = heap.alloc_span(ARENA_PAGES + 1, SpanKind::Stack).unwrap();
    assert_eq!(
        (heap.stats().arenas, heap.stats().reserved_bytes),
        (3, 4 * GIB)
    );
    let huge = heap.alloc_span(5 * ARENA_PAGES, SpanKind::Stack).unwrap();
    assert_eq!(
        (heap.stats().arenas, heap.stats().reserved_bytes),
        (4, 9 * GIB)
    );
    for span in [first, second, third, huge] {
        assert_eq!(
            heap.span_of(span.limit() - 1).map(|info| info.base()),
            Some(span.base())
        );
        heap.free_span(span);
    }
}

#[test]
fn exhausted_address_space_is_an_error_value() {
    let heap = fake_heap(GIB + GIB / 2);
    let whole = heap.alloc_span(ARENA_PAGES, SpanKind::Stack).unwrap();
    let err = heap.alloc_span(ARENA_PAGES, SpanKind::Stack).unwrap_err();
    assert_eq!(
        err,
        HeapError::AddressSpaceExhausted {
            requested_bytes: GIB,
            os_error: None
        }
    );
    assert!(err.to_string().contains(&GIB.to_string()), "{err}");
    // Smaller arenas still fit what is left.
    let small = heap.alloc_span(1, SpanKind::Stack).unwrap();
    assert_eq!(heap.stats().reserved_bytes, GIB + GIB / 2);
    heap.free_span(small);
    heap.free_span(whole);
    assert_eq!(
        heap.alloc_span(0, SpanKind::Defer).unwrap_err(),
        HeapError::InvalidPages {
            pages: 0,
            max: MAX_SPAN_PAGES
        }
    );
    assert!(matches!(
        heap.alloc_span(MAX_SPAN_PAGES + 1, SpanKind::Defer),
        Err(HeapError::InvalidPages { .. })
    ));
}

#[test]
fn real_reservations_shrink_under_a_limit_and_fail_with_an_error() {
    let name = "real_reservations_shrink_under_a_limit_and_fail_with_an_error";
    if !testing::in_passing_child(module_path!(), name) {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let vm_kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let limit = (vm_kib * 1024 + 256 * 1024 * 1024) as libc::rlim_t;
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit only reads the struct; lowering our own address-space limit is the point.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rlimit) }, 0);
    let heap = Heap::new(AddressSource::mmap());
    let err = heap.alloc_span(ARENA_PAGES, SpanKind::Stack).unwrap_err();
    assert_eq!(
        err,
        HeapError::AddressSpaceExhausted {
            requested_bytes: GIB,
            os_error: Some(libc::ENOMEM)
        }
    );
    let small = heap
        .alloc_span(1, SpanKind::Stack)
        .expect("a smaller arena fits under the limit");
    assert!(heap.stats().reserved_bytes < 256 << 20);
    heap.free_span(small);
}

#[test]
fn concurrent_allocations_never_overlap() {
    let heap = Arc::new(fake_heap(8 * GIB));
    let threads: Vec<_> = (1..=4u64)
        .map(|owner| {
            let heap = Arc::clone(&heap);
            std::thread::spawn(move || {
                let mut rng = Rng(owner * 0x1234_5678_9abc_def1);
                let mut live = Vec::new();
                for _ in 0..testing::short_or_long(5_000, 500_000) {
                    if live.len() < 64 && rng.below(2) == 0 {
                        let span = heap
                            .alloc_span(1 + rng.below(16), SpanKind::StackSegment)
                            .unwrap();
                        span.set_owner(owner);
                        live.push(span);
                    } else if let Some(span) = live.pop() {
                        heap.free_span(span);
                    }
                    for span in &live {
                        let info = heap
                            .span_of(span.limit() - 1)
                            .expect("a live span resolves");
                        assert_eq!((info.base(), info.owner()), (span.base(), owner));
                    }
                }
                for span in live {
                    heap.free_span(span);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(heap.stats().spans_in_use, 0);
}
