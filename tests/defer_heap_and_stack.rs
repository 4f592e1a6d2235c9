//! After Go's `TestDeferHeapAndStack`: goroutines repeatedly recurse with two deferred
//! increments per level, heap records (through `Defers`, in a loop) on even depths and stack
//! records on odd ones, with frames large enough that the recursion crosses stack segments.
//! Short in CI (P=2, N=1000, D=20); `GORT_LONG_TESTS=1` runs P=4, N=10000, D=200.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;

use gort::defer::Defers;

/// Bytes of locals per level: 32 levels of them overflow a 64 KiB reservation.
const FRAME: usize = 2048;

/// Recurses `depth` levels below `level`; each level defers two increments of `count` that run
/// when it returns. Answers the count seen once every deeper level returned.
fn recurse(level: u32, depth: u32, count: &Rc<Cell<u32>>) -> u32 {
    let frame = black_box([level as u8; FRAME]);
    if level == depth {
        return count.get();
    }
    let descend =
        || gort::stack::maybe_grow(16 * 1024, 64 * 1024, || recurse(level + 1, depth, count));
    let below = if level.is_multiple_of(2) {
        let mut heap = Defers::new();
        for _ in 0..2 {
            let count = Rc::clone(count);
            heap.push(move || count.set(count.get() + 1));
        }
        descend()
    } else {
        gort::defer!(count.set(count.get() + 1));
        gort::defer!(count.set(count.get() + 1));
        descend()
    };
    black_box(frame);
    below
}

#[test]
fn defers_on_the_heap_and_the_stack_all_run() {
    let (procs, rounds, depth) = if std::env::var_os("GORT_LONG_TESTS").is_some() {
        (4, 10_000, 200)
    } else {
        (2, 1_000, 20)
    };
    let workers: Vec<_> = (0..procs)
        .map(|_| {
            gort::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    for round in 0..rounds {
                        let count = Rc::new(Cell::new(0));
                        assert_eq!(recurse(0, depth, &count), 0, "round {round}: ran early");
                        assert_eq!(count.get(), 2 * depth, "round {round}");
                        if round % 64 == 0 {
                            gort::yield_now();
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
}
