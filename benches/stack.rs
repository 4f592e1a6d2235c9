//! Stack growth, beside may in the same run:
//!
//! - `maybe_grow` when enough stack remains (its fast path), per call;
//! - crossing into the spare segment and back (`grow`), per crossing;
//! - 10,000 goroutines each recursing 64 KiB deep with 1 KiB frames, then parking: time per
//!   goroutine until all are parked. The first batch's time and the resident memory each of
//!   its parked goroutines holds are printed beside it (later batches reuse warm stacks; in
//!   gort's first batch the stacks double several times, so paced collector cycles run during
//!   it), and for gort also what they hold after one more cycle. may runs its coroutines on
//!   fixed 128 KiB stacks. `go run benches/go/main.go` measures Go the same way.
//!
//! ```text
//! cargo bench --bench stack
//! ```
//!
//! - a collector cycle over 100,000 parked goroutines (10,000 in debug builds, which CI runs
//!   once): the first cycle after they parked (each one ran since the last cycle, so each is
//!   walked, measured and shrunk) prints its time, the longest it held one goroutine and the
//!   spread of its holds, beside the gaps an idle thread sees over as long (the machine's noise
//!   floor); the timed cycles after it find them unchanged. may and tokio have no collector.
//!
//! may's worker threads cannot be stopped, so its measurements run last, under the same names.
//!
//! The first batch on fresh memory varies from one process to the next with the state of the
//! machine's memory more than with the runtime: `benches/stack_first_batch.sh` runs it in fresh
//! processes, taking turns with may, Go and the floor (the same bytes written to fresh memory
//! with no runtime at all), through the modes of this binary:
//!
//! ```text
//! target/release/deps/stack-HASH first-batch gort|may|floor
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};

#[path = "support/may.rs"]
mod may_support;
use may_support::{may_run, may_spawn};

const KIB: usize = 1024;
const GOROUTINES: usize = 10_000;
const DEEP: &str = "10,000 goroutines recursing 64 KiB deep then parking, per goroutine";

/// Recurses with 1 KiB frames until the stack in use below `start` (an address in the first
/// frame) reaches `bytes`: measured by address, so that larger debug frames go no deeper.
#[inline(never)]
fn recurse(start: usize, bytes: usize) -> u64 {
    let frame = black_box([0u8; KIB]);
    let here = frame.as_ptr() as usize;
    if start - here >= bytes {
        return 0;
    }
    recurse(start, bytes) + u64::from(frame[KIB - 1])
}

/// Recurses 64 KiB deep from here.
fn recurse_64k() -> u64 {
    let start = black_box(0u8);
    recurse(&start as *const u8 as usize, 64 * KIB)
}

/// Times `iters` calls of `f` in a goroutine (generic, so that `f` inlines into the loop as
/// it would in a caller's code).
fn in_goroutine(iters: u64, f: impl Fn() -> u64 + Send + 'static) -> Duration {
    gort::run(move || {
        let started = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        started.elapsed()
    })
}

fn growth(c: &mut Criterion) {
    let mut group = c.benchmark_group("maybe_grow with enough stack, per call");
    group.bench_function("gort", |b| {
        b.iter_custom(|iters| {
            in_goroutine(iters, || {
                gort::stack::maybe_grow(32 * KIB, 1 << 20, || black_box(1))
            })
        })
    });
    group.finish();
    let mut group = c.benchmark_group("crossing into the spare segment and back, per crossing");
    group.bench_function("gort", |b| {
        b.iter_custom(|iters| in_goroutine(iters, || gort::stack::grow(64 * KIB, || black_box(1))))
    });
    group.finish();
}

/// What a batch measured: the time until all parked, the resident bytes they added, and those
/// they still hold after a collector cycle (for runtimes that have one).
type Batch = (Duration, usize, Option<usize>);

/// A timed batch of gort: as [`gort_deep_batch_then_cycle`], without the cycle (whose shrinking
/// would make the next batch start on cold stacks, unlike may's).
fn gort_deep_batch() -> Batch {
    gort_deep_batch_with(false)
}

/// The first batch of gort, which also measures what parked goroutines hold after a cycle.
fn gort_deep_batch_then_cycle() -> Batch {
    gort_deep_batch_with(true)
}

/// Spawns [`GOROUTINES`] that recurse 64 KiB deep and park; answers the time until all are
/// parked and the resident bytes they added, at once and (with `cycle`) after a collector cycle.
fn gort_deep_batch_with(cycle: bool) -> Batch {
    gort::run(move || {
        let rss_before = gort_suite::rss_bytes();
        let started = Instant::now();
        let parked = Arc::new(gort::sync::WaitGroup::new());
        parked.add(GOROUTINES as i32);
        let (release_tx, release) = gort::chan::bounded::<()>(0);
        let handles: Vec<_> = (0..GOROUTINES)
            .map(|_| {
                let (parked, release) = (Arc::clone(&parked), release.clone());
                gort::spawn(move || {
                    black_box(recurse_64k());
                    parked.done();
                    let _ = release.recv();
                })
            })
            .collect();
        parked.wait();
        let elapsed = started.elapsed();
        let added = gort_suite::rss_bytes().saturating_sub(rss_before);
        // What they hold once a collector cycle has shrunk their stacks (it runs every second).
        let after_cycle = cycle.then(|| {
            gort::gc();
            gort_suite::rss_bytes().saturating_sub(rss_before)
        });
        drop(release_tx);
        handles.into_iter().for_each(|h| h.join().unwrap());
        (elapsed, added, after_cycle)
    })
}

fn may_deep_batch() -> Batch {
    may_run(|| {
        let rss_before = gort_suite::rss_bytes();
        let started = Instant::now();
        let (parked_tx, parked) = may::sync::mpsc::channel::<()>();
        let (release_tx, release) = may::sync::mpmc::channel::<()>();
        let handles: Vec<_> = (0..GOROUTINES)
            .map(|_| {
                let (parked_tx, release) = (parked_tx.clone(), release.clone());
                may_spawn(move || {
                    black_box(recurse_64k());
                    parked_tx.send(()).unwrap();
                    let _ = release.recv();
                })
            })
            .collect();
        (0..GOROUTINES).for_each(|_| parked.recv().unwrap());
        let elapsed = started.elapsed();
        let added = gort_suite::rss_bytes().saturating_sub(rss_before);
        drop(release_tx);
        handles.into_iter().for_each(|h| h.join().unwrap());
        (elapsed, added, None)
    })
}

/// Times batches with `batch`, printing the resident memory per goroutine of `first`.
fn bench_deep(c: &mut Criterion, name: &str, first: fn() -> Batch, batch: fn() -> Batch) {
    let (first_time, added, after_cycle) = first();
    let per_goroutine = |bytes: usize| bytes as f64 / GOROUTINES as f64 / KIB as f64;
    print!(
        "{DEEP}/{name}: first batch (fresh stacks) {:.2} µs per goroutine, {:.1} KiB resident \
         per parked goroutine",
        first_time.as_secs_f64() * 1e6 / GOROUTINES as f64,
        per_goroutine(added)
    );
    match after_cycle {
        Some(after) => println!(", {:.1} KiB after a collector cycle", per_goroutine(after)),
        None => println!(),
    }
    let mut group = c.benchmark_group(DEEP);
    group.sample_size(10);
    group.throughput(Throughput::Elements(GOROUTINES as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| batch().0).sum())
    });
    group.finish();
}

fn deep(c: &mut Criterion) {
    bench_deep(c, "gort", gort_deep_batch_then_cycle, gort_deep_batch);
}

/// Parked goroutines a collector cycle goes over.
const PARKED: usize = if cfg!(debug_assertions) {
    10_000
} else {
    100_000
};

/// Parks [`PARKED`] goroutines 4 KiB deep, runs `cycles` collector cycles over them and answers
/// the statistics of the first (every goroutine ran since the last cycle), then releases them.
fn parked_cycle(c: &mut Criterion) {
    let mut firsts = Vec::new();
    for _ in 0..3 {
        let (release_tx, release) = gort::chan::bounded::<()>(0);
        let parked = Arc::new(gort::sync::WaitGroup::new());
        parked.add(PARKED as i32);
        let handles: Vec<_> = (0..PARKED)
            .map(|_| {
                let (parked, release) = (Arc::clone(&parked), release.clone());
                gort::spawn(move || {
                    let start = 0u8;
                    black_box(recurse(black_box(&start) as *const u8 as usize, 4 * KIB));
                    parked.done();
                    let _ = release.recv();
                })
            })
            .collect();
        parked.wait();
        // The last ones to call `done` park right after.
        std::thread::sleep(Duration::from_millis(50));
        gort::gc();
        firsts.push(gort::mem_stats());
        if firsts.len() == 3 {
            let mut group = c.benchmark_group(format!(
                "collector cycle over {PARKED} parked goroutines, unchanged since the last"
            ));
            group.sample_size(10);
            group.bench_function("gort", |b| b.iter(gort::gc));
            group.finish();
        }
        drop(release_tx);
        handles.into_iter().for_each(|h| h.join().unwrap());
    }
    firsts.sort_by_key(|stats| stats.last_cycle);
    let median = firsts[1];
    firsts.sort_by_key(|stats| stats.last_cycle_max_pause);
    let pauses = firsts[1].last_cycle_pauses;
    let noise = Noise::over(median.last_cycle);
    println!(
        "collector cycle over {PARKED} parked goroutines that ran since the last/gort: median of 3 \
         {:?} per cycle, {} scanned; the cycle with the median longest pause: longest {:?}, 99.9% \
         of {} holds within {:?}, {} holds of {LONG:?} or more; an idle thread over as long: \
         longest gap {:?}, {} gaps of {LONG:?} or more (the machine's noise floor)",
        median.last_cycle,
        median.goroutines_scanned,
        pauses.longest(),
        pauses.holds(),
        pauses.quantile(0.999),
        pauses
            .buckets()
            .filter(|(range, _)| range.start >= LONG)
            .map(|(_, holds)| holds)
            .sum::<u64>(),
        noise.longest,
        noise.long_gaps
    );
}

/// A pause long enough to tell apart from the collector's own work (a power of two, where a
/// bucket of `PauseHistogram` starts).
const LONG: Duration = Duration::from_micros(64);

/// What the OS and the hypervisor take from a thread that does nothing else (the floor under
/// any pause): gaps between consecutive clock reads.
struct Noise {
    longest: Duration,
    long_gaps: usize,
}

impl Noise {
    fn over(span: Duration) -> Noise {
        let start = Instant::now();
        let mut last = start;
        let mut noise = Noise {
            longest: Duration::ZERO,
            long_gaps: 0,
        };
        while last - start < span {
            let now = Instant::now();
            noise.longest = noise.longest.max(now - last);
            noise.long_gaps += usize::from(now - last >= LONG);
            last = now;
        }
        noise
    }
}

fn may(c: &mut Criterion) {
    may::config().set_stack_size(128 * KIB / size_of::<usize>());
    bench_deep(c, "may (128 KiB stacks)", may_deep_batch, may_deep_batch);
}

criterion_group!(benches, growth, deep, parked_cycle, may);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("first-batch") {
        first_batch(args.get(1).map_or("", String::as_str));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// `first-batch gort|may|floor`: one first batch in this fresh process, printed as
/// `first-batch NAME MICROS_PER_GOROUTINE KIB_PER_PARKED_GOROUTINE` for the script to read.
fn first_batch(name: &str) {
    let (time, added, _) = match name {
        "gort" => gort_deep_batch(),
        "may" => {
            may::config().set_stack_size(128 * KIB / size_of::<usize>());
            may_deep_batch()
        }
        "floor" => floor_batch(),
        _ => {
            eprintln!("usage: stack first-batch gort|may|floor");
            std::process::exit(2);
        }
    };
    println!(
        "first-batch {name} {:.2} {:.1}",
        time.as_secs_f64() * 1e6 / GOROUTINES as f64,
        added as f64 / GOROUTINES as f64 / KIB as f64
    );
}

/// The floor under any runtime's first batch: as many threads as the machine has cores write
/// [`GOROUTINES`] times 64 KiB of fresh memory, 1 KiB at a time from the top down as the
/// recursion writes its frames, each 64 KiB at the top of its own 256 KiB of address space (a
/// stack's reservation). Answers the time and the resident bytes added.
fn floor_batch() -> Batch {
    const RESERVATION: usize = 256 * KIB;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let len = GOROUTINES * RESERVATION;
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "mmap of the floor's memory failed");
    let base = base as usize;
    let rss_before = gort_suite::rss_bytes();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for first in 0..threads {
            scope.spawn(move || {
                for unit in (first..GOROUTINES).step_by(threads) {
                    let top = base + (unit + 1) * RESERVATION;
                    for frame in 1..=64 {
                        let at = (top - frame * KIB) as *mut u8;
                        // SAFETY: `at..at + KIB` lies in this thread's unit of the mapping.
                        unsafe { at.write_bytes(0, black_box(KIB)) };
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let added = gort_suite::rss_bytes().saturating_sub(rss_before);
    // SAFETY: the mapping made above; the threads that wrote to it have ended.
    unsafe { libc::munmap(base as *mut libc::c_void, len) };
    (elapsed, added, None)
}
