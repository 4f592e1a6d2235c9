//! The collector: a background thread that, every `GORT_GC_INTERVAL` (1 s by default), when
//! the goroutine stacks have doubled since the last cycle (`pacer`) and on [`gc`], starts a
//! cycle. The cycle runs on a processor, as one of the runtime's own goroutines (like Go's GC
//! workers), not on the collector thread: a third runnable thread on a machine whose processors
//! are all busy is preempted by the kernel, and preempted inside a hold it would keep a
//! goroutine from running for a whole time slice. Between batches of goroutines it yields, and
//! while goroutines wait to run it keeps to a quarter of the processors' time (at most one
//! processor), as Go's collector does (`share`): with two processors, a cycle that had one to
//! itself took a third of the throughput of a burst of spawns. It takes the goroutines one at a
//! time with their scan claim and
//!
//! - walks each one's frame-pointer chain and defer chain, resolving every pointer with
//!   `span_of` (a pointer that does not lie in the goroutine's stack spans, or a defer record
//!   outside them and the defer spans, is reported like Go's `badPointer`; with
//!   `GORT_DEBUG=verify` the process aborts);
//! - measures the stack depth in use, and shrinks a stack that uses less than a quarter of its
//!   committed pages by giving back the pages far below its stack pointer;
//! - gives back a spare segment unused for a cycle, and the pages of one used since;
//! - then scavenges: gives back the pages of pooled stacks no one took for a whole cycle, and
//!   asks the processors to give back those of their cached stacks (idle ones at once, busy
//!   ones when they next go idle);
//! - and publishes [`MemStats`].
//!
//! It never stops the world: other goroutines spawn, run, grow their stacks into new segments
//! and exit on every other thread meanwhile. That is the race of the two seed commits: a segment
//! a goroutine grew into is published by the heap's protocol before any link points into it,
//! and the goroutine's scan claim orders its links before the scan (see `sched::status`).
//!
//! The frame walk needs frame pointers: build with `-C force-frame-pointers=yes` (this
//! repository's `.cargo/config.toml` does). Without them the collector still walks defer
//! chains, measures depth from the stack pointer, shrinks and scavenges. A frame of foreign code
//! built without frame pointers (a C library calling back into Rust that then parks) can break
//! the chain; the walk then reports the pointer it could not place.
//!
//! Invariants:
//! - one cycle or dump at a time (the `SCANNER` lock, goroutine-aware since a cycle yields and
//!   sleeps while it holds it): a goroutine's claim is taken by one scanner, never by two;
//! - a cycle the collector thread started completes (`Completes`) even if its goroutine never
//!   runs, so callers of [`gc`] are not left waiting;
//! - a goroutine is held only for its own scan, and for its own shrink or that of its group of
//!   at most eight (one system call): claims are announced a batch at a time, but each is
//!   confirmed just before its goroutine's scan or shrink and released right after (`claims`).

mod claims;
mod dump;
pub(crate) mod pacer;
mod pauses;
mod scan;
mod share;
mod shrink;
mod stats;
mod stopped;

use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

pub use self::dump::dump_goroutines;
pub use self::pauses::PauseHistogram;
use self::share::Share;
pub use self::stats::{MemStats, mem_stats};
pub(crate) use self::stopped::Stopped;
use crate::sched::{self, G, GRef, status};
use crate::stack::SpareAge;

/// Cycles requested by [`gc`] and cycles completed.
struct Control {
    requested: u64,
    completed: u64,
}

static CONTROL: Mutex<Control> = Mutex::new(Control {
    requested: 0,
    completed: 0,
});
/// Wakes the collector for a requested cycle.
static REQUEST: Condvar = Condvar::new();
/// Wakes the callers of [`gc`] when a cycle completes.
static COMPLETED: Condvar = Condvar::new();

/// Held by whoever takes goroutines' scan claims: a cycle, or a dump.
static SCANNER: crate::sync::Mutex<Scanner> = crate::sync::Mutex::new(Scanner { verify: false });

/// The reservation of a cycle's goroutine stack (it commits a few pages).
const CYCLE_STACK: usize = 256 << 10;

/// The collector's settings.
struct Scanner {
    /// Abort on a bad pointer (`GORT_DEBUG=verify`).
    verify: bool,
}

/// The instant the collector started, which wait times count from.
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Starts the collector thread: a cycle every `interval` (never if `None`) and on [`gc`].
pub(crate) fn start(interval: Option<Duration>, verify: bool) {
    EPOCH.get_or_init(Instant::now);
    SCANNER.lock().verify = verify;
    dump::install_sigquit_handler();
    sched::count_service_thread();
    if interval.is_some() {
        pacer::start();
    }
    thread::Builder::new()
        .name("gort-collector".into())
        .spawn(move || run(interval))
        .expect("cannot start the gort collector thread");
}

/// Milliseconds since the collector started.
fn now_ms() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn run(interval: Option<Duration>) {
    loop {
        let target = {
            let mut control = CONTROL.lock();
            if control.requested == control.completed {
                match interval {
                    Some(interval) => {
                        REQUEST.wait_for(&mut control, interval);
                    }
                    None => REQUEST.wait(&mut control),
                }
            }
            control.requested
        };
        let completes = Completes(target);
        let spawned = sched::spawn_system("gort-gc", CYCLE_STACK, move || {
            cycle();
            drop(completes);
        });
        if let Err(err) = spawned {
            eprintln!("runtime: cannot start a collector cycle: {err}");
        }
        let mut control = CONTROL.lock();
        while control.completed < target {
            COMPLETED.wait(&mut control);
        }
    }
}

/// Completes the cycles up to its ticket when dropped: when its cycle ends, or when its cycle's
/// goroutine is dropped without running (no stack could be had for it).
struct Completes(u64);

impl Drop for Completes {
    fn drop(&mut self) {
        let mut control = CONTROL.lock();
        control.completed = control.completed.max(self.0);
        COMPLETED.notify_all();
    }
}

/// Runs a full collector cycle that starts after the call, and returns when it is done (like
/// Go's `runtime.GC`). The runtime starts if it is not running. In a goroutine, the wait hands
/// the goroutine's processor to others, as [`gort::blocking`](crate::blocking) does.
///
/// # Panics
///
/// If the runtime cannot start (a bad `GORT_*` variable).
///
/// # Examples
///
/// ```
/// let before = gort::mem_stats().cycles;
/// gort::gc();
/// assert!(gort::mem_stats().cycles > before);
/// ```
pub fn gc() {
    if let Err(err) = crate::sched::ensure_running() {
        panic!("gort::gc: {err}");
    }
    crate::blocking(|| {
        let ticket = request_cycle();
        let mut control = CONTROL.lock();
        while control.completed < ticket {
            COMPLETED.wait(&mut control);
        }
    });
}

/// Asks the collector for a cycle that starts after the call, without waiting for it; answers
/// the ticket that cycle completes.
fn request_cycle() -> u64 {
    let mut control = CONTROL.lock();
    control.requested += 1;
    REQUEST.notify_one();
    control.requested
}

/// What a cycle adds up.
#[derive(Default)]
struct Totals {
    scanned: usize,
    frames: usize,
    in_use: usize,
    max_in_use: usize,
    resident: usize,
    shrunk: u64,
    scavenged: u64,
    bad: u64,
}

fn cycle() {
    let started = Instant::now();
    let scanner = SCANNER.lock();
    let now = now_ms();
    let mut totals = Totals::default();
    let goroutines = sched::live_goroutines();
    let mut share = Share::start(sched::procs());
    // Reserved up front: growing it would copy it while a goroutine is held.
    let mut scanned = Vec::with_capacity(goroutines.len());
    let mut bad = Vec::new();
    let mut pauses = claims::visit_claimed(
        &goroutines,
        |g| g,
        || share.pause(),
        |g, status| {
            let Some(status) = status else {
                // Running (or just finished): its last measure stands.
                totals.resident += g.stopped.measured().1;
                return;
            };
            if let Some(measure) = scan_one(g, status, now, &mut totals, &mut bad) {
                scanned.push((g.clone(), measure));
            }
        },
    );
    for (id, bad) in &bad {
        report(&scanner, *id, bad);
    }
    let mut shrinkable = Vec::new();
    for (measured, (g, measure)) in scanned.into_iter().enumerate() {
        if measured % claims::BATCH == claims::BATCH - 1 {
            share.pause();
        }
        match measure_stack(&measure) {
            (resident, Some(cut)) => shrinkable.push(Shrinkable {
                g,
                measure,
                resident,
                cut,
            }),
            (resident, None) => remember(&g, &measure, resident, &mut totals),
        }
    }
    let mut failed = Vec::new();
    let shrink_pauses = claims::visit_claimed_groups(
        &shrinkable,
        |item| &item.g,
        || share.pause(),
        |rest| shrink::group_len(rest.iter().map(|item| item.cut.below)),
        |group| {
            let mut shrunk = [false; shrink::GROUP];
            shrink_group(group, &mut shrunk, &mut failed);
            for (&(item, _), shrunk) in group.iter().zip(shrunk) {
                let mut resident = item.resident;
                if shrunk {
                    totals.shrunk += item.cut.below as u64;
                    resident -= item.cut.below;
                }
                remember(&item.g, &item.measure, resident, &mut totals);
            }
        },
    );
    pauses.add(&shrink_pauses);
    drop(scanner);
    for (address, err) in failed {
        log::warn!("gort: shrinking a goroutine stack at {address:#x} failed: {err}");
    }
    totals.scavenged += sched::scavenge_stack_caches() as u64;
    totals.scavenged += crate::stack::scavenge() as u64;
    pacer::cycle_ended();
    let last = stats::last();
    stats::publish(MemStats {
        stack_resident_bytes: totals.resident,
        stack_in_use_bytes: totals.in_use,
        max_stack_in_use_bytes: totals.max_in_use,
        cycles: last.cycles + 1,
        goroutines_scanned: totals.scanned,
        frames_walked: last.frames_walked + totals.frames as u64,
        shrunk_bytes: last.shrunk_bytes + totals.shrunk,
        scavenged_bytes: last.scavenged_bytes + totals.scavenged,
        bad_pointers: last.bad_pointers + totals.bad,
        last_cycle: started.elapsed(),
        last_cycle_max_pause: pauses.longest(),
        last_cycle_pauses: pauses,
        ..stats::mem_stats()
    });
}

/// What remains to do for a scanned goroutine once its claim is released: measure its stack
/// and maybe shrink it.
struct Measure {
    bottom: usize,
    top: usize,
    sp: usize,
    in_use: usize,
    on_segment: bool,
}

/// Scans goroutine `g`, whose scan claim the caller holds (it had `status`), adding the bad
/// pointers it finds to `bad` for the caller to report once the claim is released; answers what
/// to measure then.
fn scan_one(
    g: &G,
    status: u32,
    now: u64,
    totals: &mut Totals,
    bad: &mut Vec<(sched::GoroutineId, scan::BadPointer)>,
) -> Option<Measure> {
    if status == status::WAITING {
        g.stopped.waiting_since(now);
    }
    let (fp, _) = g.stopped.frames();
    if fp == 0 {
        return None; // not started: no stack yet
    }
    match g.growth.age_spare() {
        Some(SpareAge::Released { resident }) => totals.scavenged += resident as u64,
        Some(SpareAge::Kept { resident }) => totals.shrunk += resident as u64,
        None => {}
    }
    totals.scanned += 1;
    if !g.stopped.take_ran() {
        let (in_use, resident) = g.stopped.measured();
        totals.add_stack(in_use, resident);
        return None;
    }
    let found = scan::scan(g);
    totals.frames += found.frames + found.defers;
    totals.bad += found.bad.len() as u64;
    bad.extend(found.bad.into_iter().map(|pointer| (g.id(), pointer)));
    let (bottom, top) = g.growth.stack();
    Some(Measure {
        bottom,
        top,
        sp: g.stopped.sp(),
        in_use: found.in_use,
        on_segment: g.growth.segments().next().is_some(),
    })
}

/// A scanned goroutine whose stack should shrink: what its scan found, the bytes resident, and
/// the pages to give back.
struct Shrinkable {
    g: GRef,
    measure: Measure,
    resident: usize,
    cut: shrink::Cut,
}

/// Measures a scanned stack without its claim: the bytes resident, and the pages to give back
/// if it uses less than a quarter of what is committed.
fn measure_stack(measure: &Measure) -> (usize, Option<shrink::Cut>) {
    let Measure {
        bottom, top, sp, ..
    } = *measure;
    if measure.on_segment {
        // On a segment: its pages and the stack's stay as they are.
        let resident = crate::stack::memory::resident_bytes(bottom, top - bottom).unwrap_or(0);
        return (resident, None);
    }
    let plan = shrink::plan(bottom, top, sp);
    (plan.resident, plan.cut)
}

/// Gives back the pages of each member's cut below its goroutine's stack pointer, if the
/// member's claim is held (its status is known) and it has not run since its scan read `sp`;
/// marks in `shrunk` the members it did, and adds to `failed` the cuts (address and error) the
/// kernel refused, for the caller to report once the claims are released.
fn shrink_group(
    group: &[(&Shrinkable, Option<u32>)],
    shrunk: &mut [bool; shrink::GROUP],
    failed: &mut Vec<(usize, std::io::Error)>,
) {
    let mut ranges = [(0, 0); shrink::GROUP];
    let mut members = [0; shrink::GROUP];
    let mut count = 0;
    for (member, (item, status)) in group.iter().enumerate() {
        let g = &item.g;
        if status.is_some() && !g.stopped.ran() && g.stopped.sp() == item.measure.sp {
            (ranges[count], members[count]) = (item.cut.range(), member);
            count += 1;
        }
    }
    // We hold each one's claim, it has not run since its scan read `sp`, it runs on its own
    // stack, and `cut.end <= sp`; cuts are page aligned (see `shrink::plan`).
    // SAFETY: as just said, nothing lives in any of the cuts.
    unsafe {
        crate::stack::memory::release_all(&ranges[..count], |index, result| match result {
            Ok(()) => shrunk[members[index]] = true,
            Err(err) => failed.push((ranges[index].0, err)),
        })
    };
}

/// Records what the cycle measured of goroutine `g`'s stack.
fn remember(g: &G, measure: &Measure, resident: usize, totals: &mut Totals) {
    g.stopped.remember(measure.in_use, resident);
    totals.add_stack(measure.in_use, resident);
}

impl Totals {
    fn add_stack(&mut self, in_use: usize, resident: usize) {
        self.in_use += in_use;
        self.max_in_use = self.max_in_use.max(in_use);
        self.resident += resident;
    }
}

/// Reports a bad pointer found in goroutine `id`'s stack like Go's `badPointer`; with
/// `GORT_DEBUG=verify`, aborts.
fn report(scanner: &Scanner, id: sched::GoroutineId, bad: &scan::BadPointer) {
    eprintln!("runtime: {bad}");
    if scanner.verify {
        eprintln!("fatal error: found bad pointer in goroutine {id}'s stack (GORT_DEBUG=verify)");
        std::process::abort();
    }
}
