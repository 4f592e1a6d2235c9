//! Tests of goroutine stacks. Stack caches are per thread and the global pool is per size class,
//! so each test that depends on what a cache or the pool holds uses a size class of its own:
//! 64 KiB (warm reuse), 2 MiB (thread exit), 1 GiB (spilling).

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use corosensei::{Coroutine, Yielder};

use super::raw::{GUARD_BYTES, RawStack};
use super::*;
use crate::heap;
use crate::testing;

const KIB: usize = 1024;

fn fresh_stack(size: StackSize) -> Stack {
    Stack {
        raw: ManuallyDrop::new(RawStack::allocate(size).expect("a fresh stack")),
    }
}

/// Recurses with 1 KiB frames until `bytes` below `top` are in use; answers the deepest frame's
/// address.
#[inline(never)]
fn recurse_until(top: usize, bytes: usize) -> usize {
    let frame = black_box([0u8; KIB]);
    let here = frame.as_ptr() as usize;
    if top - here >= bytes {
        return here;
    }
    let deepest = recurse_until(top, bytes);
    black_box(&frame);
    deepest
}

#[test]
fn a_deep_recursion_commits_only_the_pages_it_touches() {
    let stack = fresh_stack(StackSize::new(1 << 20).unwrap());
    let top = stack.top();
    assert_eq!(
        stack.resident_bytes().unwrap(),
        0,
        "a new stack commits nothing"
    );
    let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
        recurse_until(top, 200 * KIB)
    });
    let deepest = coroutine
        .resume(())
        .as_return()
        .expect("the recursion returns");
    let stack = coroutine.into_stack();
    let page = heap::os_page_size();
    let used = top - deepest;
    let resident = stack.resident_bytes().unwrap();
    assert!(used >= 200 * KIB);
    assert!(
        resident >= used - page && resident <= used.next_multiple_of(page) + 2 * page,
        "{resident} bytes resident for {used} bytes used"
    );
}

#[test]
fn a_stack_released_to_the_heap_gives_back_its_pages_and_its_guard() {
    // In a child, so that no other test can take the span between its release and the checks.
    let name = "a_stack_released_to_the_heap_gives_back_its_pages_and_its_guard";
    if !testing::in_passing_child(module_path!(), name) {
        return;
    }
    let stack = RawStack::allocate(StackSize::new(64 * KIB).unwrap()).unwrap();
    let (guard, bottom, top) = (stack.guard_start(), stack.bottom(), stack.top());
    // SAFETY: the stack's usable memory is ours while we own it, and nothing runs on it.
    unsafe { (bottom as *mut u8).write_bytes(0xa5, top - bottom) };
    assert_eq!(
        memory::resident_bytes(bottom, top - bottom).unwrap(),
        top - bottom
    );
    stack.release();
    assert_eq!(
        heap::span_of(bottom),
        None,
        "the span went back to the heap"
    );
    assert_eq!(
        memory::resident_bytes(bottom, top - bottom).unwrap(),
        0,
        "its pages went back to the OS"
    );
    // SAFETY: the arena stays mapped; a still-installed guard would fail the test.
    let byte = unsafe { std::ptr::read_volatile(guard as *const u8) };
    assert_eq!(byte, 0);
}

#[test]
fn a_warm_stack_comes_back_from_the_thread_cache_with_its_pages() {
    let size = StackSize::new(64 * KIB).unwrap();
    let stack = Stack::new(size).unwrap();
    let top = stack.top();
    // SAFETY: the stack's usable memory is ours while we own the `Stack`, and nothing runs on it.
    unsafe { ((top - 8 * KIB) as *mut u8).write_bytes(0xa5, 4 * KIB) };
    let resident = stack.resident_bytes().unwrap();
    assert!(resident >= 4 * KIB);
    drop(stack);
    let again = Stack::new(size).unwrap();
    assert_eq!(
        again.top(),
        top,
        "the last stack returned is the first taken"
    );
    assert_eq!(
        again.resident_bytes().unwrap(),
        resident,
        "cached stacks stay committed"
    );
}

#[test]
fn a_full_cache_spills_to_the_pool_and_the_pool_to_the_heap() {
    let size = StackSize::MAX;
    let (cache, pool) = (pool::cache_capacity(size), pool::pool_capacity(size));
    let stacks: Vec<Stack> = (0..cache + pool + 3)
        .map(|_| Stack::new(size).unwrap())
        .collect();
    let spans: Vec<(usize, usize)> = stacks
        .iter()
        .map(|stack| (stack.guard().start, stack.top()))
        .collect();
    drop(stacks);
    let still_stacks = spans
        .iter()
        .filter(|&&(base, top)| {
            heap::span_of(base).is_some_and(|info| info.base() == base && info.limit() == top)
        })
        .count();
    // The pool fills up, the cache keeps at most its capacity, and the rest went to the heap.
    assert!(
        (pool + 1..=cache + pool).contains(&still_stacks),
        "{still_stacks} of {} stacks kept (cache {cache}, pool {pool})",
        spans.len()
    );
}

#[test]
fn an_exiting_thread_gives_its_cached_stacks_to_the_pool() {
    let size = StackSize::new(2 << 20).unwrap();
    let top = std::thread::spawn(move || Stack::new(size).unwrap().top())
        .join()
        .unwrap();
    assert_eq!(Stack::new(size).unwrap().top(), top);
}

#[test]
fn stacks_are_send_and_report_their_layout() {
    fn is_send<T: Send>() {}
    is_send::<Stack>();
    let stack = Stack::new(StackSize::DEFAULT).unwrap();
    assert_eq!(stack.top() - stack.bottom(), 256 * KIB);
    assert_eq!(stack.guard(), stack.bottom() - GUARD_BYTES..stack.bottom());
    let info = heap::span_of(stack.guard().start).expect("a stack is a span");
    assert_eq!(
        (info.kind(), info.limit()),
        (heap::SpanKind::Stack, stack.top())
    );
    let limit = corosensei::stack::Stack::limit(&stack).get();
    assert_eq!(
        limit,
        stack.guard().start,
        "corosensei's limit includes the guard"
    );
}

/// The guard the child expects its fault in: [start, end).
static EXPECTED_GUARD: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Says on stderr whether the fault hit the expected guard, then lets the default action kill
/// the process when the access faults again.
extern "C" fn report_fault(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let start = EXPECTED_GUARD[0].load(Ordering::Relaxed);
    let end = EXPECTED_GUARD[1].load(Ordering::Relaxed);
    let message: &[u8] = if (start..end).contains(&addr) {
        b"fault in the guard\n"
    } else {
        b"fault outside the guard\n"
    };
    // SAFETY: write(2) and signal(2) are async-signal-safe; the buffer is a static string.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// Runs on a 16 KiB stack until it overflows, checking that the fault hits the guard.
fn overflow_a_coroutine_stack() -> ! {
    let stack = Stack::new(StackSize::MIN).unwrap();
    let guard = stack.guard();
    EXPECTED_GUARD[0].store(guard.start, Ordering::Relaxed);
    EXPECTED_GUARD[1].store(guard.end, Ordering::Relaxed);
    // SAFETY: zeroed sigaction; an async-signal-safe handler on std's alternate stack.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = report_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
            0
        );
    }
    let top = stack.top();
    let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
        recurse_until(top, usize::MAX)
    });
    coroutine.resume(());
    unreachable!("the recursion cannot return");
}

fn assert_child_died_of_sigsegv(name: &str, mode: GuardMode) {
    let child = testing::run_child(module_path!(), name);
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert_eq!(
        child.status.signal(),
        Some(libc::SIGSEGV),
        "child: {}\n{stdout}\n{stderr}",
        child.status
    );
    assert!(stdout.contains(&format!("guards: {mode}")), "{stdout}");
    assert!(stderr.contains("fault in the guard"), "{stderr}");
}

#[test]
fn a_guard_hit_kills_the_process_with_sigsegv() {
    let name = "a_guard_hit_kills_the_process_with_sigsegv";
    if testing::is_child(module_path!(), name) {
        println!("guards: {}", guard_mode());
        overflow_a_coroutine_stack();
    }
    assert_child_died_of_sigsegv(name, guard_mode());
}

#[test]
fn mprotect_guards_work_when_forced() {
    let name = "mprotect_guards_work_when_forced";
    if testing::is_child(module_path!(), name) {
        guard::force(GuardMode::Mprotect);
        println!("guards: {}", guard_mode());
        // The first stack brings up the heap (its index zone and first arena): count after it.
        RawStack::allocate(StackSize::MIN).unwrap().release();
        let before = mapping_count();
        let stacks: Vec<RawStack> = (0..100)
            .map(|_| RawStack::allocate(StackSize::MIN).unwrap())
            .collect();
        assert!(
            mapping_count() >= before + 100,
            "each mprotect guard splits the mapping"
        );
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let guard_line = format!(
            "{:x}-{:x} ---p",
            stacks[0].guard_start(),
            stacks[0].bottom()
        );
        assert!(maps.contains(&guard_line), "no {guard_line} in\n{maps}");
        for stack in stacks {
            stack.release();
        }
        assert_eq!(
            mapping_count(),
            before,
            "removed guards merge the mapping again"
        );
        overflow_a_coroutine_stack();
    }
    assert_child_died_of_sigsegv(name, GuardMode::Mprotect);
}

fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn guard_errors_say_what_failed_and_why() {
    let err = StackError::Guard {
        addr: 0x7000_0000,
        mode: GuardMode::Mprotect,
        source: io::Error::from_raw_os_error(libc::ENOMEM),
    };
    let text = err.to_string();
    assert!(text.starts_with(
        "cannot install the guard of a goroutine stack at 0x70000000 with mprotect(PROT_NONE)"
    ));
    assert!(
        text.ends_with("(each stack costs two memory mappings; see vm.max_map_count)"),
        "{text}"
    );
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::OutOfMemory);
}

/// Touches every page of a fresh 256 KiB stack and answers it with its usable range.
fn touched_stack() -> (RawStack, usize, usize) {
    let stack = RawStack::allocate(StackSize::new(256 * KIB).unwrap()).unwrap();
    let (bottom, top) = (stack.bottom(), stack.top());
    // SAFETY: the stack's usable memory is ours while we own it, and nothing runs on it.
    unsafe { (bottom as *mut u8).write_bytes(0x5a, top - bottom) };
    (stack, bottom, top)
}

#[test]
fn release_all_gives_back_every_range_across_batches() {
    let page = heap::os_page_size();
    let (stack, bottom, top) = touched_stack();
    // Eleven ranges of two pages, one page apart: more than one batch, with pages kept between.
    let ranges: Vec<_> = (0..11).map(|i| (bottom + i * 3 * page, 2 * page)).collect();
    let mut done = Vec::new();
    // SAFETY: the ranges are page aligned parts of our stack, whose contents we give up.
    unsafe { memory::release_all(&ranges, |index, result| done.push((index, result.is_ok()))) };
    assert_eq!(done, (0..11).map(|i| (i, true)).collect::<Vec<_>>());
    let kept = (top - bottom) - 11 * 2 * page;
    assert_eq!(memory::resident_bytes(bottom, top - bottom).unwrap(), kept);
    for &(addr, len) in &ranges {
        // SAFETY: as above; released pages read as zero.
        assert_eq!(unsafe { *(addr as *const u8) }, 0);
        // SAFETY: the page after each range is part of our stack too.
        assert_eq!(unsafe { *((addr + len) as *const u8) }, 0x5a, "a kept page");
    }
    stack.release();
}

#[test]
fn release_all_reports_a_range_the_kernel_refuses() {
    let page = heap::os_page_size();
    let (stack, bottom, _) = touched_stack();
    // The second range is not page aligned: both calls refuse it, the others go back.
    let ranges = [
        (bottom, page),
        (bottom + 2 * page + 1, page),
        (bottom + 4 * page, page),
    ];
    let mut done = Vec::new();
    // SAFETY: the ranges lie in our stack, whose contents there we give up.
    unsafe { memory::release_all(&ranges, |index, result| done.push((index, result.is_ok()))) };
    assert_eq!(done, [(0, true), (1, false), (2, true)]);
    assert_eq!(memory::resident_bytes(bottom, page).unwrap(), 0);
    assert_eq!(memory::resident_bytes(bottom + 4 * page, page).unwrap(), 0);
    assert_eq!(
        memory::resident_bytes(bottom + 2 * page, page).unwrap(),
        page
    );
    stack.release();
}
