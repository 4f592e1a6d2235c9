//! The collector: cycles on `gort::gc()` and by themselves, bad-pointer reports, shrinking a
//! stack that went deep, scavenging the stacks of goroutines that exited, and the goroutine
//! dump. Tests that measure memory or set the environment run in child processes.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use gort::chan;

/// A goroutine that went 8 MiB deep (through `maybe_grow` segments) and came back has its
/// resident stack below 64 KiB after one cycle, and the process gives back what it took.
#[test]
fn a_stack_that_went_deep_shrinks_after_one_cycle() {
    let name = "a_stack_that_went_deep_shrinks_after_one_cycle";
    if !gort_suite::is_child(name) {
        gort_suite::assert_child_passes(name, &[("GORT_GC_INTERVAL", "off")]);
        return;
    }
    const RESERVATION: usize = 256 * 1024;
    fn descend(bytes_left: usize) -> usize {
        let frame = black_box([1u8; 1024]);
        if bytes_left < 1024 {
            return 0;
        }
        gort::stack::maybe_grow(32 * 1024, 1 << 20, || descend(bytes_left - 1024))
            + frame[7] as usize
    }
    let (bottom_tx, bottom_rx) = mpsc::channel();
    let (wake, parked) = chan::bounded::<()>(0);
    let deep = gort::Builder::new()
        .stack_size(RESERVATION)
        .spawn(move || {
            assert_eq!(descend(8 << 20), (8 << 20) / 1024);
            let here = 0u8;
            let near = black_box(&here) as *const u8 as usize - gort::stack::remaining();
            let bottom = near & !(gort::heap::PAGE_SIZE - 1);
            bottom_tx.send(bottom).unwrap();
            parks_after_going_deep(&parked);
        })
        .unwrap();
    let bottom = bottom_rx.recv().unwrap();
    while gort::mem_stats().goroutines != 1
        || gort_suite::resident_bytes(bottom, RESERVATION) < RESERVATION / 2
    {
        std::thread::yield_now();
    }
    // A running goroutine is not scanned: wait until it has parked.
    wait_until_parked_in("parks_after_going_deep");
    let before = gort_suite::rss_bytes();
    let resident_before = gort_suite::resident_bytes(bottom, RESERVATION);
    gort::gc();
    let after = gort_suite::rss_bytes();
    let resident_after = gort_suite::resident_bytes(bottom, RESERVATION);
    let stats = gort::mem_stats();
    eprintln!(
        "stack resident {resident_before} -> {resident_after} bytes, RSS {before} -> {after}; {stats:?}"
    );
    assert!(
        resident_after < 64 * 1024,
        "{resident_after} bytes still resident"
    );
    assert!(stats.shrunk_bytes >= (RESERVATION - 64 * 1024) as u64);
    // The spare segment (1 MiB, mostly committed) gave its pages back too.
    assert!(before - after > 1 << 20, "RSS {before} -> {after}");
    wake.send(()).unwrap();
    deep.join().unwrap();
}

#[inline(never)]
fn parks_after_going_deep(parked: &chan::Receiver<()>) {
    parked.recv().unwrap();
}

/// Waits until the dump shows a goroutine parked in `function`.
fn wait_until_parked_in(function: &str) -> String {
    for _ in 0..2000 {
        let mut bytes = Vec::new();
        gort::dump_goroutines(&mut bytes).unwrap();
        let dump = String::from_utf8(bytes).unwrap();
        if dump.contains(function) {
            return dump;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("no goroutine parked in {function}");
}

/// 10,000 goroutines that each used 64 KiB of stack exit; two cycles later the process's RSS is
/// within 10% of what it was before they started (Go 1.19 keeps about 500 MB here).
///
/// A first burst warms what is kept for reuse by design and never returned (goroutine records
/// and span structs are type-stable, like Go's `allgs`; the allocator keeps its arenas), so the
/// start is measured in the steady state and the comparison is about stack pages.
#[test]
fn the_scavenger_returns_the_stacks_of_exited_goroutines() {
    let name = "the_scavenger_returns_the_stacks_of_exited_goroutines";
    if !gort_suite::is_child(name) {
        gort_suite::assert_child_passes(name, &[("GORT_GC_INTERVAL", "off")]);
        return;
    }
    const GOROUTINES: usize = 10_000;
    burst(GOROUTINES);
    gort::gc();
    gort::gc();
    let start = gort_suite::rss_bytes();
    let peak = burst(GOROUTINES);
    let exited = gort_suite::rss_bytes();
    gort::gc();
    gort::gc();
    let end = gort_suite::rss_bytes();
    let stats = gort::mem_stats();
    eprintln!("RSS start {start}, peak {peak}, exited {exited}, after two cycles {end}; {stats:?}");
    assert!(
        peak > start + GOROUTINES * 48 * 1024,
        "the goroutines did not use their stacks"
    );
    assert!(
        end * 10 <= start * 11,
        "RSS {end} is not within 10% of {start}"
    );
}

/// Runs `goroutines` goroutines that each use 64 KiB of stack and wait until all have; answers
/// the RSS while they all wait, and returns once they have exited.
fn burst(goroutines: usize) -> usize {
    fn use_stack(bytes_left: usize) -> u8 {
        let frame = black_box([2u8; 1024]);
        if bytes_left < 2048 {
            return frame[0];
        }
        use_stack(bytes_left - 1024).wrapping_add(frame[9])
    }
    let (release, wait) = chan::bounded::<()>(0);
    let deep = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..goroutines)
        .map(|_| {
            let (wait, deep) = (wait.clone(), Arc::clone(&deep));
            gort::spawn(move || {
                black_box(use_stack(64 * 1024));
                deep.fetch_add(1, Ordering::Relaxed);
                let _ = wait.recv();
            })
        })
        .collect();
    while deep.load(Ordering::Relaxed) < goroutines {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let peak = gort_suite::rss_bytes();
    drop(release);
    for handle in handles {
        handle.join().unwrap();
    }
    // A join returns once the result is in; the goroutine's stack goes back to its processor's
    // cache just after.
    while gort::num_goroutines() > 0 {
        std::thread::yield_now();
    }
    peak
}

/// A frame-pointer chain broken on purpose is reported like Go's `badPointer`; without
/// `GORT_DEBUG=verify` the program goes on, with it the process aborts.
#[test]
fn a_broken_frame_chain_is_reported() {
    let name = "a_broken_frame_chain_is_reported";
    if gort_suite::is_child(name) {
        let (wake, parked) = chan::bounded::<()>(0);
        let (ready_tx, ready_rx) = mpsc::channel();
        let broken = gort::spawn(move || park_with_a_broken_chain(&ready_tx, &parked));
        ready_rx.recv().unwrap();
        // A cycle scans it once it has parked (and not again: it does not run meanwhile).
        for _ in 0..1000 {
            gort::gc();
            if gort::mem_stats().bad_pointers > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(gort::mem_stats().bad_pointers, 1);
        wake.send(()).unwrap();
        broken.join().unwrap();
        eprintln!("survived");
        return;
    }
    let reported = gort_suite::run_child(name, &[("GORT_GC_INTERVAL", "off")]);
    let stderr = String::from_utf8_lossy(&reported.stderr);
    assert!(reported.status.success(), "{stderr}");
    assert!(
        stderr.contains("runtime: pointer 0x7ead0 to unallocated span (no span at this address) found in the frame-pointer chain of goroutine"),
        "{stderr}"
    );
    let aborted = gort_suite::run_child(
        name,
        &[("GORT_GC_INTERVAL", "off"), ("GORT_DEBUG", "verify")],
    );
    let stderr = String::from_utf8_lossy(&aborted.stderr);
    assert!(!aborted.status.success(), "{stderr}");
    assert!(
        stderr.contains("fatal error: found bad pointer in goroutine"),
        "{stderr}"
    );
    assert!(!stderr.contains("survived"), "{stderr}");
}

/// Overwrites the saved frame pointer of this frame's caller, parks, and puts it back.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn park_with_a_broken_chain(ready: &mpsc::Sender<()>, parked: &chan::Receiver<()>) {
    let fp: usize;
    // SAFETY: reads this frame's frame pointer (the build keeps frame pointers).
    unsafe { std::arch::asm!("mov {}, rbp", out(reg) fp) };
    let saved = fp as *mut usize;
    // `[rbp]` holds the caller's frame pointer in this frame; nothing reads it until this
    // function returns, and it is restored before then.
    // SAFETY: as just said.
    let caller = unsafe { saved.replace(0x7ead0) };
    ready.send(()).unwrap();
    parked.recv().unwrap();
    // SAFETY: as above.
    unsafe { saved.write(caller) };
}

/// The periodic cycle runs by itself at the configured interval.
/// Waits until `cycles` collector cycles have completed in this process; fails with `missing`
/// if they have not within 20 s.
fn wait_for_cycles(cycles: u64, missing: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while gort::mem_stats().cycles < cycles {
        assert!(std::time::Instant::now() < deadline, "{missing}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn cycles_run_by_themselves_at_the_interval() {
    let name = "cycles_run_by_themselves_at_the_interval";
    if gort_suite::is_child(name) {
        gort::spawn(|| ()).join().unwrap();
        wait_for_cycles(3, "no periodic cycles");
        return;
    }
    gort_suite::assert_child_passes(name, &[("GORT_GC_INTERVAL", "10ms")]);
}

/// A burst of goroutines that doubles the stacks held starts a cycle by itself, long before the
/// interval (an hour here) comes round.
#[test]
fn a_burst_that_doubles_the_stacks_starts_a_cycle() {
    let name = "a_burst_that_doubles_the_stacks_starts_a_cycle";
    if gort_suite::is_child(name) {
        // 2,000 stacks of 256 KiB: 500 MiB, several doublings past the 64 MiB least goal.
        burst(2_000);
        wait_for_cycles(1, "no paced cycle");
        return;
    }
    gort_suite::assert_child_passes(name, &[("GORT_GC_INTERVAL", "3600s")]);
}

/// With cycles off, the same burst starts none: cycles run only on `gort::gc()`.
#[test]
fn with_cycles_off_a_burst_starts_none() {
    let name = "with_cycles_off_a_burst_starts_none";
    if gort_suite::is_child(name) {
        burst(2_000);
        // A paced request would have been served within milliseconds.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(gort::mem_stats().cycles, 0);
        return;
    }
    gort_suite::assert_child_passes(name, &[("GORT_GC_INTERVAL", "off")]);
}

/// The dump lists a parked goroutine with what it waits for and its function names.
#[test]
fn the_dump_lists_a_parked_goroutines_functions() {
    let (wake, parked) = chan::bounded::<()>(0);
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiter = gort::Builder::new()
        .name("dump-me")
        .spawn(move || waits_in_a_named_function(&ready_tx, &parked))
        .unwrap();
    ready_rx.recv().unwrap();
    let dump = wait_until_parked_in("waits_in_a_named_function");
    let header = format!("goroutine {} (dump-me) [chan receive]:", waiter.id());
    assert!(dump.contains(&header), "{dump}");
    let section = &dump[dump.find(&header).unwrap()..];
    assert!(section.contains("waits_in_a_named_function"), "{section}");
    if cfg!(debug_assertions) {
        // Optimized test builds carry no line tables, so they show neither lines nor the
        // channel's frames (inlined into the function that blocks).
        assert!(
            section.contains("gort::chan::Receiver<T>::recv"),
            "{section}"
        );
        assert!(section.contains("tests/collector.rs:"), "{section}");
    }
    wake.send(()).unwrap();
    waiter.join().unwrap();
}

#[inline(never)]
fn waits_in_a_named_function(ready: &mpsc::Sender<()>, parked: &chan::Receiver<()>) {
    ready.send(()).unwrap();
    parked.recv().unwrap();
}

/// A cycle runs as one of the runtime's own goroutines, which users do not see: it is not
/// counted by `num_goroutines` and dumps do not list it, however often cycles run.
#[test]
fn a_cycles_goroutine_is_neither_counted_nor_dumped() {
    let name = "a_cycles_goroutine_is_neither_counted_nor_dumped";
    if gort_suite::is_child(name) {
        let cycling = Arc::new(AtomicBool::new(true));
        let collector = std::thread::spawn({
            let cycling = Arc::clone(&cycling);
            move || {
                for _ in 0..200 {
                    gort::gc();
                }
                cycling.store(false, Ordering::Relaxed);
            }
        });
        let mut looks = 0;
        while cycling.load(Ordering::Relaxed) {
            assert_eq!(gort::num_goroutines(), 0);
            let mut dump = Vec::new();
            gort::dump_goroutines(&mut dump).unwrap();
            assert!(dump.is_empty(), "{}", String::from_utf8_lossy(&dump));
            looks += 1;
        }
        collector.join().unwrap();
        assert!(looks > 0);
        assert!(gort::mem_stats().cycles >= 200);
        return;
    }
    gort_suite::assert_child_passes(name, &[("GORT_GC_INTERVAL", "off")]);
}

/// `SIGQUIT` prints the dump and exits with status 2, like Go.
#[test]
fn sigquit_dumps_the_goroutines_and_exits_2() {
    let name = "sigquit_dumps_the_goroutines_and_exits_2";
    if gort_suite::is_child(name) {
        // A shell that starts a job in the background makes it ignore SIGQUIT, and the runtime
        // leaves an ignored (or handled) SIGQUIT alone: undo that before the runtime starts.
        // SAFETY: no other code of this process handles SIGQUIT.
        unsafe { libc::signal(libc::SIGQUIT, libc::SIG_DFL) };
        let (_wake, parked) = chan::bounded::<()>(0);
        let (ready_tx, ready_rx) = mpsc::channel();
        let _waiter = gort::spawn(move || waits_in_a_named_function(&ready_tx, &parked));
        ready_rx.recv().unwrap();
        wait_until_parked_in("waits_in_a_named_function");
        // SAFETY: sends a signal to this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) };
        std::thread::sleep(std::time::Duration::from_secs(20));
        unreachable!("SIGQUIT did not end the process");
    }
    let out = gort_suite::run_child(name, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SIGQUIT: quit"), "{stderr}");
    assert!(stderr.contains("[chan receive]:"), "{stderr}");
    assert!(stderr.contains("waits_in_a_named_function"), "{stderr}");
}
