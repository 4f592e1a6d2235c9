//! With one processor, goroutines still share it: yields interleave them, and a goroutine
//! blocked in its OS thread (a plain sleep, or `gort::blocking`) does not stop the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn one_processor() {
    gort::Runtime::builder()
        .procs(1)
        .start()
        .expect("every test here asks for the same runtime");
}

#[test]
fn two_busy_goroutines_that_yield_both_make_progress() {
    one_processor();
    let counters = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let spin = |me: usize| {
        let counters = Arc::clone(&counters);
        gort::spawn(move || {
            // Both keep counting until both have counted to 1,000. Bounded: without
            // interleaving the other counter never moves, and this gives up and fails.
            for _ in 0..1_000_000 {
                let mine = counters[me].fetch_add(1, Ordering::Relaxed) + 1;
                if mine >= 1_000 && counters[1 - me].load(Ordering::Relaxed) >= 1_000 {
                    return true;
                }
                gort::yield_now();
            }
            false
        })
    };
    let (a, b) = (spin(0), spin(1));
    assert!(a.join().unwrap() && b.join().unwrap());
}

/// Runs `block` in one goroutine and a quick goroutine beside it; answers whether the quick one
/// finished first.
fn quick_goroutine_finishes_first(block: fn()) -> bool {
    one_processor();
    let started = Arc::new(AtomicBool::new(false));
    let slow = gort::spawn({
        let started = Arc::clone(&started);
        move || {
            started.store(true, Ordering::Release);
            block();
            Instant::now()
        }
    });
    while !started.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let quick = gort::spawn(Instant::now);
    let quick_done = quick.join().unwrap();
    quick_done < slow.join().unwrap()
}

#[test]
fn a_goroutine_asleep_in_its_thread_does_not_stop_the_others() {
    assert!(quick_goroutine_finishes_first(|| std::thread::sleep(
        Duration::from_millis(200)
    )));
}

#[test]
fn a_goroutine_in_blocking_does_not_stop_the_others() {
    assert!(quick_goroutine_finishes_first(|| {
        gort::blocking(|| std::thread::sleep(Duration::from_millis(200)))
    }));
}
