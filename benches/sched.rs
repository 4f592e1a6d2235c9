//! The scheduler beside tokio and may, in the same run: spawning and joining goroutines (tasks,
//! coroutines) in batches of 10,000, and two goroutines yielding to each other.
//!
//! ```text
//! cargo bench --bench sched
//! ```
//!
//! Every runtime runs with its defaults on this machine's cores (gort: one P per core; tokio:
//! the multi-thread scheduler with one worker per core; may: one worker per core), except the
//! yield benchmark of tokio, which uses its current-thread scheduler so that the two tasks
//! really take turns on one thread.
//!
//! may's worker threads cannot be stopped and compete for the cores with whatever runs after
//! them, so may's measurements run last, under the same group names.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/may.rs"]
mod may_support;
use may_support::{may_run, may_spawn};

const BATCH: u64 = 10_000;
const YIELDS: u64 = 100_000;

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn+join, per goroutine (batches of 10,000)");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("gort", |b| {
        b.iter(|| {
            gort::run(|| {
                let handles: Vec<_> = (0..BATCH)
                    .map(|i| gort::spawn(move || black_box(i)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
        })
    });
    let tokio = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            tokio.block_on(async {
                tokio::spawn(async {
                    let handles: Vec<_> = (0..BATCH)
                        .map(|i| tokio::spawn(async move { black_box(i) }))
                        .collect();
                    let mut sum = 0;
                    for handle in handles {
                        sum += handle.await.unwrap();
                    }
                    sum
                })
                .await
                .unwrap()
            })
        })
    });
    group.finish();
}

fn yield_ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("two goroutines yielding to each other, per yield");
    group.throughput(Throughput::Elements(2 * YIELDS));
    group.bench_function("gort", |b| {
        b.iter(|| {
            gort::run(|| {
                let pair: Vec<_> = (0..2)
                    .map(|_| {
                        gort::spawn(|| {
                            for _ in 0..YIELDS {
                                gort::yield_now();
                            }
                        })
                    })
                    .collect();
                pair.into_iter().for_each(|h| h.join().unwrap());
            })
        })
    });
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    group.bench_function("tokio (current thread)", |b| {
        b.iter(|| {
            tokio.block_on(async {
                let pair: Vec<_> = (0..2)
                    .map(|_| {
                        tokio::spawn(async {
                            for _ in 0..YIELDS {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for handle in pair {
                    handle.await.unwrap();
                }
            })
        })
    });
    group.finish();
}

fn may(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn+join, per goroutine (batches of 10,000)");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("may", |b| {
        b.iter(|| {
            may_run(|| {
                let handles: Vec<_> = (0..BATCH)
                    .map(|i| may_spawn(move || black_box(i)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
        })
    });
    group.finish();
    let mut group = c.benchmark_group("two goroutines yielding to each other, per yield");
    group.throughput(Throughput::Elements(2 * YIELDS));
    group.bench_function("may", |b| {
        b.iter(|| {
            may_run(|| {
                let pair: Vec<_> = (0..2)
                    .map(|_| {
                        may_spawn(|| {
                            for _ in 0..YIELDS {
                                may::coroutine::yield_now();
                            }
                        })
                    })
                    .collect();
                pair.into_iter().for_each(|h| h.join().unwrap());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_join, yield_ping_pong, may);
criterion_main!(benches);
