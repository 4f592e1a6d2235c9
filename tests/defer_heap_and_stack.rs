//! After Go's `TestDeferHeapAndStack`: goroutines repeatedly recurse with two deferred
//! increments per level, heap records (through `Defers`, in a loop) on even depths and stack
//! records on odd ones, with frames large enough that the recursion crosses stack segments.
//! At the deepest level each one yields (or sleeps, until the collector has walked some frames),
//! so the collector, which runs cycles back to back on another processor meanwhile, scans it with
//! its segments and defer chain woven through them.
//! The test runs in a child process with `GORT_DEBUG=verify`: a bad pointer aborts it.
//! Short in CI (P=2, N=1000, D=20); `GORT_LONG_TESTS=1` runs P=4, N=10000, D=200.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gort::defer::Defers;

/// Bytes of locals per level: 32 levels of them overflow a 64 KiB reservation.
const FRAME: usize = 2048;

/// Recurses `depth` levels below `level`; each level defers two increments of `count` that run
/// when it returns. Answers the count seen once every deeper level returned.
fn recurse(level: u32, depth: u32, count: &Rc<Cell<u32>>) -> u32 {
    let frame = black_box([level as u8; FRAME]);
    if level == depth {
        // Let the collector scan this goroutine at its deepest. Until some cycle has walked a
        // goroutine's frames, it parks for a while; a yield alone may be over before any cycle
        // looks (a release build does a round in microseconds).
        if gort::mem_stats().frames_walked == 0 {
            gort::time::sleep(Duration::from_millis(1));
        } else {
            gort::yield_now();
        }
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
    let name = "defers_on_the_heap_and_the_stack_all_run";
    if !gort_suite::is_child(name) {
        gort_suite::assert_child_passes(name, &[("GORT_DEBUG", "verify")]);
        return;
    }
    let (procs, rounds, depth) = if std::env::var_os("GORT_LONG_TESTS").is_some() {
        (4, 10_000, 200)
    } else {
        (2, 1_000, 20)
    };
    let done = Arc::new(AtomicBool::new(false));
    let collector = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut cycles = 0u64;
            while !done.load(Ordering::Relaxed) {
                gort::gc();
                cycles += 1;
            }
            cycles
        })
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
                    }
                })
                .unwrap()
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    done.store(true, Ordering::Relaxed);
    let cycles = collector.join().unwrap();
    let stats = gort::mem_stats();
    eprintln!("{cycles} collector cycles ran back to back; {stats:?}");
    assert!(cycles > 0 && stats.cycles >= cycles);
    assert_eq!(stats.bad_pointers, 0);
    assert!(stats.frames_walked > 0, "the collector walked no frame");
}
