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

#[test]
fn two_goroutines_handing_off_to_each_other_do_not_starve_the_queue() {
    one_processor();
    let third_ran = Arc::new(AtomicBool::new(false));
    let slots: Arc<[std::sync::Mutex<Option<gort::Goroutine>>; 2]> = Arc::new(Default::default());
    // A and B wake each other through `runnext` until a third goroutine, queued behind them on
    // the same processor, has run. Bounded, so a starved queue fails instead of hanging.
    let handoff = |me: usize| {
        let (third_ran, slots) = (Arc::clone(&third_ran), Arc::clone(&slots));
        gort::spawn(move || {
            *slots[me].lock().unwrap() = gort::current();
            let other = loop {
                if let Some(other) = slots[1 - me].lock().unwrap().clone() {
                    break other;
                }
                gort::yield_now();
            };
            if me == 0 {
                // Spawned from here, it waits in this processor's local queue.
                let third_ran = Arc::clone(&third_ran);
                drop(gort::spawn(move || {
                    third_ran.store(true, Ordering::Release)
                }));
            }
            let mut rounds = 0u32;
            while !third_ran.load(Ordering::Acquire) && rounds < 1_000_000 {
                other.unpark();
                gort::park();
                rounds += 1;
            }
            other.unpark();
            third_ran.load(Ordering::Acquire)
        })
    };
    let (a, b) = (handoff(0), handoff(1));
    assert!(a.join().unwrap());
    assert!(b.join().unwrap());
}

/// A collector cycle runs on the one processor as a goroutine: it completes beside a goroutine
/// that keeps the processor busy with yields. With 2,000 parked goroutines a cycle has several
/// batches, and between them it steps aside (sleeps) for the busy one to have its share.
#[test]
fn a_cycle_shares_the_processor_with_a_busy_goroutine() {
    one_processor();
    let (release_tx, release) = gort::chan::bounded::<()>(0);
    let parked: Vec<_> = (0..2_000)
        .map(|_| {
            let release = release.clone();
            gort::spawn(move || {
                let _ = release.recv();
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let busy = {
        let (done, rounds) = (Arc::clone(&done), Arc::clone(&rounds));
        gort::spawn(move || {
            // Bounded: gives up, and the test fails, if the cycles never let it finish.
            for _ in 0..100_000_000u64 {
                if done.load(Ordering::Acquire) {
                    return true;
                }
                rounds.fetch_add(1, Ordering::Relaxed);
                gort::yield_now();
            }
            false
        })
    };
    while rounds.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    let before = gort::mem_stats().cycles;
    for _ in 0..20 {
        gort::gc();
    }
    assert!(gort::mem_stats().cycles >= before + 20);
    assert!(gort::mem_stats().goroutines_scanned >= 2_000);
    done.store(true, Ordering::Release);
    assert!(busy.join().unwrap());
    drop(release_tx);
    parked.into_iter().for_each(|g| g.join().unwrap());
}
