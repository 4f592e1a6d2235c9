//! A goroutine that overflows its stack ends the process with a report that names it and says
//! how to give it more stack.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;

/// Recurses with 1 KiB frames until `limit` (never reached: the stack overflows first).
#[inline(never)]
fn recurse(depth: u64, limit: u64) -> u64 {
    let frame = black_box([depth as u8; 1024]);
    if depth == limit {
        return 0;
    }
    recurse(depth + 1, limit) + u64::from(frame[0])
}

#[test]
fn a_goroutine_stack_overflow_is_reported_and_aborts() {
    let name = "a_goroutine_stack_overflow_is_reported_and_aborts";
    if gort_suite::is_child(name) {
        gort_suite::announce_and_run(
            gort::Builder::new().name("deep").stack_size(64 * 1024),
            || {
                recurse(0, u64::MAX);
            },
        );
        unreachable!("the overflow ends the process");
    }
    let stderr = gort_suite::child_abort_message(name);
    let id = gort_suite::spawned_id(&stderr);
    let expected = format!(
        "fatal error: goroutine {id} [deep] stack overflow (reserved 64 KiB); raise it with Builder::stack_size or GORT_STACK_SIZE"
    );
    assert!(stderr.contains(&expected), "no {expected:?} in\n{stderr}");
}

#[test]
fn a_fault_elsewhere_still_kills_with_sigsegv() {
    let name = "a_fault_elsewhere_still_kills_with_sigsegv";
    if gort_suite::is_child(name) {
        gort::spawn(|| ()).join().unwrap(); // the runtime and its handler are installed
        // SAFETY: none: this deliberately writes through a null pointer to fault.
        unsafe { std::ptr::write_volatile(std::ptr::null_mut::<u8>(), 1) };
        unreachable!();
    }
    let child = gort_suite::run_child(name, &[]);
    assert_eq!(
        child.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(!String::from_utf8_lossy(&child.stderr).contains("stack overflow"));
}
