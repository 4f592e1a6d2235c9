//! Channels and timers beside tokio and may in the same run, with crossbeam-channel between OS
//! threads as a reference:
//!
//! - ping-pong over two rendezvous channels between two goroutines, per round trip (tokio's
//!   smallest channel holds one value; may has no bounded channel, so it uses unbounded ones);
//! - bounded(1024) single-producer single-consumer throughput, per message;
//! - 8 producers × 8 consumers on one bounded(1024) channel, per message (tokio has no
//!   multi-consumer channel; may's is unbounded);
//! - `sleep(1 ms)` in 100,000 goroutines at once: wall time per batch, and CPU time per timer.
//!   may is left out: it cannot start 100,000 coroutines on this machine (each of its stacks is
//!   a separate memory mapping, and creating them fails with `ENOMEM` under
//!   `vm.max_map_count`).
//!
//! ```text
//! cargo bench --bench chan
//! ```
//!
//! Each runtime runs a benchmark's main side on its own threads, as a goroutine, task or
//! coroutine (`gort::run`, [`tokio_run`], `may_run`).
//!
//! may's worker threads cannot be stopped, so its measurements run last, under the same names.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/may.rs"]
mod may_support;
use cpu::cpu_time;
use may_support::{may_run, may_spawn};

/// Round trips per iteration inside a runtime: enough that starting the runtime's main side
/// and joining it from the bench thread (tens of microseconds of thread wake-ups, which no round
/// trip pays) is under 1% of an iteration.
const ROUND_TRIPS: u64 = 100_000;
/// Round trips per iteration between OS threads, which take tens of microseconds each here.
const THREAD_ROUND_TRIPS: u64 = 2_000;
const MESSAGES: u64 = 100_000;
const SLEEPERS: u64 = 100_000;
const PING_PONG: &str = "ping-pong over two rendezvous channels, per round trip";
const SPSC: &str = "bounded(1024) SPSC, per message";
const MPMC: &str = "8 x 8 MPMC bounded(1024), per message";
const SLEEP_WALL: &str = "sleep(1 ms) x 100,000 goroutines, wall time per batch";
const SLEEP_CPU: &str = "sleep(1 ms) x 100,000 goroutines, CPU time per timer";

/// The main side of a ping-pong: sends each of `round_trips` values and waits for its echo.
fn ping(round_trips: u64, send: impl Fn(u64), recv: impl Fn() -> u64) {
    for i in 0..round_trips {
        send(i);
        black_box(recv());
    }
}

/// Runs `body` as a task on `tokio`'s workers and waits for it: like `gort::run` and `may_run`,
/// so that both sides of a channel benchmark run on the runtime's threads (`block_on` alone
/// would run the main side on the bench thread, and every message would cross threads).
fn tokio_run<T: Send + 'static>(
    tokio: &tokio::runtime::Runtime,
    body: impl Future<Output = T> + Send + 'static,
) -> T {
    tokio.block_on(tokio.spawn(body)).unwrap()
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group(PING_PONG);
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    group.bench_function("gort", |b| {
        b.iter(|| {
            gort::run(|| {
                let (ping_tx, ping_rx) = gort::chan::bounded::<u64>(0);
                let (pong_tx, pong_rx) = gort::chan::bounded::<u64>(0);
                let echo = gort::spawn(move || {
                    for value in ping_rx.iter() {
                        pong_tx.send(value).unwrap();
                    }
                });
                ping(
                    ROUND_TRIPS,
                    |i| ping_tx.send(i).unwrap(),
                    || pong_rx.recv().unwrap(),
                );
                drop(ping_tx);
                echo.join().unwrap();
            })
        })
    });
    let tokio = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            tokio_run(&tokio, async {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
                let echo = tokio::spawn(async move {
                    while let Some(value) = ping_rx.recv().await {
                        pong_tx.send(value).await.unwrap();
                    }
                });
                for i in 0..ROUND_TRIPS {
                    ping_tx.send(i).await.unwrap();
                    black_box(pong_rx.recv().await.unwrap());
                }
                drop(ping_tx);
                echo.await.unwrap();
            })
        })
    });
    group.throughput(Throughput::Elements(THREAD_ROUND_TRIPS));
    group.bench_function("crossbeam (OS threads)", |b| {
        b.iter(|| {
            let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(0);
            let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(0);
            let echo = std::thread::spawn(move || {
                for value in ping_rx.iter() {
                    pong_tx.send(value).unwrap();
                }
            });
            ping(
                THREAD_ROUND_TRIPS,
                |i| ping_tx.send(i).unwrap(),
                || pong_rx.recv().unwrap(),
            );
            drop(ping_tx);
            echo.join().unwrap();
        })
    });
    group.finish();
}

fn spsc(c: &mut Criterion) {
    let mut group = c.benchmark_group(SPSC);
    group.throughput(Throughput::Elements(MESSAGES));
    group.bench_function("gort", |b| {
        b.iter(|| {
            gort::run(|| {
                let (tx, rx) = gort::chan::bounded::<u64>(1024);
                let producer = gort::spawn(move || (0..MESSAGES).for_each(|i| tx.send(i).unwrap()));
                black_box(rx.iter().sum::<u64>());
                producer.join().unwrap();
            })
        })
    });
    let tokio = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            tokio_run(&tokio, async {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1024);
                let producer = tokio::spawn(async move {
                    for i in 0..MESSAGES {
                        tx.send(i).await.unwrap();
                    }
                });
                let mut sum = 0;
                while let Some(value) = rx.recv().await {
                    sum += value;
                }
                black_box(sum);
                producer.await.unwrap();
            })
        })
    });
    group.bench_function("crossbeam (OS threads)", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
            let producer =
                std::thread::spawn(move || (0..MESSAGES).for_each(|i| tx.send(i).unwrap()));
            black_box(rx.iter().sum::<u64>());
            producer.join().unwrap();
        })
    });
    group.finish();
}

fn mpmc(c: &mut Criterion) {
    let mut group = c.benchmark_group(MPMC);
    group.throughput(Throughput::Elements(MESSAGES));
    let per_producer = MESSAGES / 8;
    group.bench_function("gort", |b| {
        b.iter(|| {
            gort::run(move || {
                let (tx, rx) = gort::chan::bounded::<u64>(1024);
                let producers: Vec<_> = (0..8)
                    .map(|_| {
                        let tx = tx.clone();
                        gort::spawn(move || (0..per_producer).for_each(|i| tx.send(i).unwrap()))
                    })
                    .collect();
                drop(tx);
                let consumers: Vec<_> = (0..8)
                    .map(|_| {
                        let rx = rx.clone();
                        gort::spawn(move || rx.iter().sum::<u64>())
                    })
                    .collect();
                producers.into_iter().for_each(|p| p.join().unwrap());
                black_box(
                    consumers
                        .into_iter()
                        .map(|c| c.join().unwrap())
                        .sum::<u64>(),
                );
            })
        })
    });
    group.bench_function("crossbeam (OS threads)", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
            let producers: Vec<_> = (0..8)
                .map(|_| {
                    let tx = tx.clone();
                    std::thread::spawn(move || (0..per_producer).for_each(|i| tx.send(i).unwrap()))
                })
                .collect();
            drop(tx);
            let consumers: Vec<_> = (0..8)
                .map(|_| {
                    let rx = rx.clone();
                    std::thread::spawn(move || rx.iter().sum::<u64>())
                })
                .collect();
            producers.into_iter().for_each(|p| p.join().unwrap());
            black_box(
                consumers
                    .into_iter()
                    .map(|c| c.join().unwrap())
                    .sum::<u64>(),
            );
        })
    });
    group.finish();
}

fn gort_sleepers() {
    gort::run(|| {
        let sleepers: Vec<_> = (0..SLEEPERS)
            .map(|_| gort::spawn(|| gort::time::sleep(Duration::from_millis(1))))
            .collect();
        sleepers.into_iter().for_each(|s| s.join().unwrap());
    })
}

fn tokio_sleepers(tokio: &tokio::runtime::Runtime) {
    tokio_run(tokio, async {
        let sleepers: Vec<_> = (0..SLEEPERS)
            .map(|_| tokio::spawn(tokio::time::sleep(Duration::from_millis(1))))
            .collect();
        for sleeper in sleepers {
            sleeper.await.unwrap();
        }
    })
}

fn sleepers(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group(SLEEP_WALL);
    group.sample_size(10);
    group.bench_function("gort", |b| b.iter(gort_sleepers));
    group.bench_function("tokio", |b| b.iter(|| tokio_sleepers(&tokio)));
    group.finish();
    let mut group = c.benchmark_group(SLEEP_CPU);
    group.sample_size(10);
    group.throughput(Throughput::Elements(SLEEPERS));
    group.bench_function("gort", |b| {
        b.iter_custom(|iters| cpu_per(iters, gort_sleepers))
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| cpu_per(iters, || tokio_sleepers(&tokio)))
    });
    group.finish();
}

/// The CPU time of `iters` runs of `batch`.
fn cpu_per(iters: u64, mut batch: impl FnMut()) -> Duration {
    let start = cpu_time();
    for _ in 0..iters {
        batch();
    }
    cpu_time() - start
}

fn may(c: &mut Criterion) {
    let mut group = c.benchmark_group(PING_PONG);
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    group.bench_function("may", |b| {
        b.iter(|| {
            may_run(|| {
                let (ping_tx, ping_rx) = may::sync::mpsc::channel::<u64>();
                let (pong_tx, pong_rx) = may::sync::mpsc::channel::<u64>();
                let echo = may_spawn(move || {
                    while let Ok(value) = ping_rx.recv() {
                        pong_tx.send(value).unwrap();
                    }
                });
                ping(
                    ROUND_TRIPS,
                    |i| ping_tx.send(i).unwrap(),
                    || pong_rx.recv().unwrap(),
                );
                drop(ping_tx);
                echo.join().unwrap();
            })
        })
    });
    group.finish();
    let mut group = c.benchmark_group(SPSC);
    group.throughput(Throughput::Elements(MESSAGES));
    group.bench_function("may (unbounded)", |b| {
        b.iter(|| {
            may_run(|| {
                let (tx, rx) = may::sync::mpsc::channel::<u64>();
                let producer = may_spawn(move || (0..MESSAGES).for_each(|i| tx.send(i).unwrap()));
                let mut sum = 0;
                while let Ok(value) = rx.recv() {
                    sum += value;
                }
                black_box(sum);
                producer.join().unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, ping_pong, spsc, mpmc, sleepers, may);
criterion_main!(benches);
