//! A randomized stress of spawn, yield, join, panic, park/unpark and blocking calls. Every
//! goroutine is accounted for: spawned = finished + panicked, and none is left over.
//!
//! Short by default; `GORT_LONG_TESTS=1` runs it for 10 seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counts {
    spawned: AtomicU64,
    finished: AtomicU64,
    panicked: AtomicU64,
}

/// xorshift64*: deterministic per goroutine.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn spawn_worker(counts: &Arc<Counts>, seed: u64, depth: u32) -> gort::JoinHandle<u64> {
    counts.spawned.fetch_add(1, Ordering::Relaxed);
    let counts = Arc::clone(counts);
    gort::spawn(move || worker(&counts, seed, depth))
}

/// Does random steps; answers the number of goroutines below it that finished normally.
fn worker(counts: &Arc<Counts>, seed: u64, depth: u32) -> u64 {
    let mut state = seed | 1;
    let mut children = Vec::new();
    let mut finished_below = 0;
    for _ in 0..next(&mut state) % 16 {
        match next(&mut state) % 10 {
            0..=2 => gort::yield_now(),
            3..=4 if depth < 4 => children.push(spawn_worker(counts, next(&mut state), depth + 1)),
            5 => {
                if let Some(child) = children.pop() {
                    finished_below += join(counts, child);
                }
            }
            6 => {
                // Park until a helper goroutine wakes us.
                let me = gort::current().unwrap();
                let woken = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let helper = gort::spawn({
                    let woken = Arc::clone(&woken);
                    move || {
                        woken.store(true, Ordering::Release);
                        me.unpark();
                    }
                });
                while !woken.load(Ordering::Acquire) {
                    gort::park();
                }
                helper.join().unwrap();
            }
            7 => {
                gort::blocking(|| std::thread::sleep(Duration::from_micros(next(&mut state) % 50)))
            }
            8 if next(&mut state).is_multiple_of(8) => {
                // Children are joined (and counted) before the planned panic.
                for child in children {
                    join(counts, child);
                }
                panic!("planned panic");
            }
            _ => std::hint::black_box(()),
        }
    }
    for child in children {
        finished_below += join(counts, child);
    }
    counts.finished.fetch_add(1, Ordering::Relaxed);
    finished_below
}

fn join(counts: &Counts, child: gort::JoinHandle<u64>) -> u64 {
    match child.join() {
        Ok(below) => below + 1,
        Err(_) => {
            counts.panicked.fetch_add(1, Ordering::Relaxed);
            0
        }
    }
}

#[test]
fn spawn_yield_join_panic_stress_accounts_for_every_goroutine() {
    let long = std::env::var_os("GORT_LONG_TESTS").is_some_and(|v| v == "1");
    let budget = if long {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(500)
    };
    // The panics are planned: keep their messages out of the output.
    std::panic::set_hook(Box::new(|_| {}));
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rounds = 0u64;
    let mut finished_roots = 0;
    while started.elapsed() < budget {
        let roots: Vec<_> = (0..32)
            .map(|_| spawn_worker(&counts, next(&mut seed), 0))
            .collect();
        for root in roots {
            finished_roots += join(&counts, root);
        }
        rounds += 1;
    }
    let _ = std::panic::take_hook();
    let (spawned, finished, panicked) = (
        counts.spawned.load(Ordering::Relaxed),
        counts.finished.load(Ordering::Relaxed),
        counts.panicked.load(Ordering::Relaxed),
    );
    assert!(rounds > 0 && spawned > 0);
    assert_eq!(spawned, finished + panicked, "{rounds} rounds");
    // Finishes reported up the tree (those below a panicking goroutine are lost with its
    // result, so this is a bound, not an equality).
    assert!(finished_roots <= finished);
    assert!(panicked > 0, "the seeds plan some panics");
    // Helpers and workers are all gone (helpers are joined; `num_goroutines` may briefly count
    // a goroutine that is finishing, so wait for it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while gort::num_goroutines() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(gort::num_goroutines(), 0);
    eprintln!("{rounds} rounds, {spawned} goroutines, {panicked} panicked");
}

/// The pattern of the spawn+join benchmark: a goroutine spawns a batch and joins it in order, so
/// the joiner often finds its goroutine finished just after registering (leaving a stale
/// wake-up token behind) while the next one finishes on the other processor. A lost wake-up
/// here ends the process with the deadlock report.
#[test]
fn joining_batches_from_a_goroutine_never_loses_a_wake_up() {
    let long = std::env::var_os("GORT_LONG_TESTS").is_some_and(|v| v == "1");
    let rounds = if long { 5_000 } else { 200 };
    for _ in 0..rounds {
        let sum: u64 = gort::spawn(|| {
            let batch: Vec<_> = (0..10_000u64).map(|i| gort::spawn(move || i)).collect();
            batch.into_iter().map(|h| h.join().unwrap()).sum()
        })
        .join()
        .unwrap();
        assert_eq!(sum, 10_000 * 9_999 / 2);
    }
}
