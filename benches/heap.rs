//! The span heap and stack caches, beside corosensei's `DefaultStack` (an mmap with an mprotect
//! guard per stack, as most stackful-coroutine runtimes allocate stacks).
//!
//! ```text
//! cargo bench --bench heap
//! ```

use std::hint::black_box;

use corosensei::stack::DefaultStack;
use criterion::{Criterion, criterion_group, criterion_main};
use gort::heap::{self, SpanKind};
use gort::stack::{Stack, StackSize};

fn span_heap(c: &mut Criterion) {
    let mut group = c.benchmark_group("span heap");
    group.bench_function("gort alloc_span+free_span (1 page)", |b| {
        b.iter(|| heap::free_span(heap::alloc_span(black_box(1), SpanKind::StackSegment).unwrap()))
    });
    let span = heap::alloc_span(4, SpanKind::StackSegment).unwrap();
    let inside = span.base() + 3 * heap::PAGE_SIZE + 100;
    group.bench_function("gort span_of (hit)", |b| {
        b.iter(|| heap::span_of(black_box(inside)))
    });
    let outside = &group as *const _ as usize;
    group.bench_function("gort span_of (miss)", |b| {
        b.iter(|| heap::span_of(black_box(outside)))
    });
    group.finish();
    heap::free_span(span);
}

fn stack_take_return(c: &mut Criterion) {
    let size = StackSize::DEFAULT;
    let mut group = c.benchmark_group("stack take+return (256 KiB)");
    drop(Stack::new(size).unwrap());
    group.bench_function("gort Stack (warm cache)", |b| {
        b.iter(|| drop(black_box(Stack::new(black_box(size)).unwrap())))
    });
    group.bench_function("corosensei DefaultStack", |b| {
        b.iter(|| {
            drop(black_box(
                DefaultStack::new(black_box(size.bytes())).unwrap(),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, span_heap, stack_take_return);
criterion_main!(benches);
