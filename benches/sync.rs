//! gort's locks beside tokio's and may's, in the same run: an uncontended mutex lock+unlock
//! (with `parking_lot` and `std` as references), and one mutex contended by 16 goroutines
//! (tasks, coroutines) that each increment a counter under it.
//!
//! ```text
//! cargo bench --bench sync
//! ```
//!
//! The uncontended loop runs 1,000 lock+unlock pairs per iteration on the benchmark thread;
//! tokio's runs inside one `block_on` of a current-thread runtime, so only its lock's own cost
//! is counted. The contended benchmark runs every runtime with its defaults on this machine's
//! cores and reports the time per increment.
//!
//! may's worker threads cannot be stopped and compete for the cores with whatever runs after
//! them, so may's measurements run last, under the same group names.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/may.rs"]
mod may_support;
use may_support::{may_run, may_spawn};

const OPS: u64 = 1_000;
const GOROUTINES: u64 = 16;
const INCREMENTS: u64 = 2_000;

const UNCONTENDED: &str = "uncontended mutex lock+unlock, per pair";
const CONTENDED: &str = "mutex contended by 16 goroutines, per increment";

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group(UNCONTENDED);
    group.throughput(Throughput::Elements(OPS));
    let mutex = gort::sync::Mutex::new(0u64);
    group.bench_function("gort", |b| {
        b.iter(|| {
            for _ in 0..OPS {
                *black_box(&mutex).lock() += 1;
            }
        })
    });
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mutex = tokio::sync::Mutex::new(0u64);
    group.bench_function("tokio", |b| {
        b.iter(|| {
            tokio.block_on(async {
                for _ in 0..OPS {
                    *black_box(&mutex).lock().await += 1;
                }
            })
        })
    });
    let mutex = parking_lot::Mutex::new(0u64);
    group.bench_function("parking_lot (reference)", |b| {
        b.iter(|| {
            for _ in 0..OPS {
                *black_box(&mutex).lock() += 1;
            }
        })
    });
    let mutex = std::sync::Mutex::new(0u64);
    group.bench_function("std (reference)", |b| {
        b.iter(|| {
            for _ in 0..OPS {
                *black_box(&mutex).lock().unwrap() += 1;
            }
        })
    });
    group.finish();
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group(CONTENDED);
    group.throughput(Throughput::Elements(GOROUTINES * INCREMENTS));
    group.sample_size(20);
    group.bench_function("gort", |b| {
        b.iter(|| {
            gort::run(|| {
                let counter = Arc::new(gort::sync::Mutex::new(0u64));
                let workers: Vec<_> = (0..GOROUTINES)
                    .map(|_| {
                        let counter = Arc::clone(&counter);
                        gort::spawn(move || {
                            for _ in 0..INCREMENTS {
                                *counter.lock() += 1;
                            }
                        })
                    })
                    .collect();
                workers.into_iter().for_each(|w| w.join().unwrap());
                assert_eq!(*counter.lock(), GOROUTINES * INCREMENTS);
            })
        })
    });
    let tokio = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            tokio.block_on(async {
                let counter = Arc::new(tokio::sync::Mutex::new(0u64));
                let workers: Vec<_> = (0..GOROUTINES)
                    .map(|_| {
                        let counter = Arc::clone(&counter);
                        tokio::spawn(async move {
                            for _ in 0..INCREMENTS {
                                *counter.lock().await += 1;
                            }
                        })
                    })
                    .collect();
                for worker in workers {
                    worker.await.unwrap();
                }
                assert_eq!(*counter.lock().await, GOROUTINES * INCREMENTS);
            })
        })
    });
    group.finish();
}

fn may(c: &mut Criterion) {
    let mut group = c.benchmark_group(UNCONTENDED);
    group.throughput(Throughput::Elements(OPS));
    let mutex = may::sync::Mutex::new(0u64);
    group.bench_function("may", |b| {
        b.iter(|| {
            for _ in 0..OPS {
                *black_box(&mutex).lock().unwrap() += 1;
            }
        })
    });
    group.finish();
    let mut group = c.benchmark_group(CONTENDED);
    group.throughput(Throughput::Elements(GOROUTINES * INCREMENTS));
    group.sample_size(20);
    group.bench_function("may", |b| {
        b.iter(|| {
            may_run(|| {
                let counter = Arc::new(may::sync::Mutex::new(0u64));
                let workers: Vec<_> = (0..GOROUTINES)
                    .map(|_| {
                        let counter = Arc::clone(&counter);
                        may_spawn(move || {
                            for _ in 0..INCREMENTS {
                                *counter.lock().unwrap() += 1;
                            }
                        })
                    })
                    .collect();
                workers.into_iter().for_each(|w| w.join().unwrap());
                assert_eq!(*counter.lock().unwrap(), GOROUTINES * INCREMENTS);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, uncontended, contended, may);
criterion_main!(benches);
