//! The public face of stack growth: how much stack remains, and running a closure on a new
//! segment when too little does (see [`segment`](super::segment) for the mechanism).
//!
//! Invariant: the growth record used is the running goroutine's, or outside goroutines the
//! calling thread's; a goroutine's record outlives every call that runs on it.

use std::mem::MaybeUninit;

use super::StackSize;
use super::registers::stack_pointer;
use super::segment::Growth;

thread_local! {
    /// Growth outside goroutines: the thread's own stack, then its segments.
    static THREAD: Growth = const { Growth::new() };
}

/// Bytes of stack left below the caller's frame on the stack or segment it runs on: in a
/// goroutine, down to the guard of its stack (or of the segment it grew into); on a plain
/// thread, down to the thread's stack limit.
///
/// # Examples
///
/// ```
/// let remaining = gort::run(gort::stack::remaining);
/// // The default reservation is 256 KiB, and the goroutine has used little of it.
/// assert!(remaining > 200 * 1024 && remaining <= 256 * 1024);
/// assert!(gort::stack::remaining() > 0); // a plain thread's stack
/// ```
#[inline]
pub fn remaining() -> usize {
    stack_pointer().saturating_sub(current_bottom())
}

/// Runs `f` on a new stack segment of at least `segment_size` bytes if less than `red_zone`
/// bytes of stack remain ([`remaining`]), else runs it where it is.
///
/// Call it every few frames of a deep recursion: a goroutine then recurses as deep as memory
/// allows, whatever its reservation. The segment's frames link to the caller's, so panics,
/// backtraces and the collector's frame walk cross the boundary. After `f` returns the goroutine
/// keeps the segment as its spare, so a call that crosses the boundary in a loop allocates once.
///
/// `segment_size` is rounded up to a stack size class (16 KiB to 1 GiB).
///
/// # Panics
///
/// If `segment_size` is above 1 GiB, or no segment can be allocated (no address space left, or
/// the OS refuses the segment's guard); and with whatever `f` panics with.
///
/// # Examples
///
/// ```
/// /// Sums 1..=n recursively, growing the stack every 16 levels.
/// fn sum(n: u64) -> u64 {
///     if n == 0 {
///         return 0;
///     }
///     let grow = if n % 16 == 0 { 64 * 1024 } else { 0 };
///     n + gort::stack::maybe_grow(grow, 1 << 20, || sum(n - 1))
/// }
///
/// let deep = gort::Builder::new()
///     .stack_size(64 * 1024)
///     .spawn(|| sum(100_000)) // far deeper than 64 KiB of frames
///     .unwrap();
/// assert_eq!(deep.join().unwrap(), 100_000 * 100_001 / 2);
/// ```
#[inline]
pub fn maybe_grow<R>(red_zone: usize, segment_size: usize, f: impl FnOnce() -> R) -> R {
    if remaining() >= red_zone {
        f()
    } else {
        grow(segment_size, f)
    }
}

/// Runs `f` on a new stack segment of at least `segment_size` bytes, whatever remains: for a
/// caller that knows it goes deep. See [`maybe_grow`].
///
/// # Panics
///
/// As [`maybe_grow`].
///
/// # Examples
///
/// ```
/// let roomy = gort::run(|| gort::stack::grow(8 << 20, gort::stack::remaining));
/// assert!(roomy > 7 << 20);
/// ```
pub fn grow<R>(segment_size: usize, f: impl FnOnce() -> R) -> R {
    let size = StackSize::new(segment_size.max(StackSize::MIN.bytes()))
        .unwrap_or_else(|err| panic!("gort::stack::grow: {err}"));
    with_current(|growth| growth.run_on_segment(size, f))
        .expect("gort::stack::grow: called while the thread ends")
}

/// The lowest usable address of the stack or segment the caller runs on (0 if unknown).
#[inline]
fn current_bottom() -> usize {
    with_current(Growth::bottom).unwrap_or(0)
}

/// Calls `f` with the growth record of the running goroutine, or of the calling thread (`None`
/// while the thread ends).
#[inline]
fn with_current<R>(f: impl FnOnce(&Growth) -> R) -> Option<R> {
    match crate::sched::current_g() {
        Some(g) => Some(f(&g.growth)),
        None => THREAD
            .try_with(|thread| {
                ensure_thread_bottom(thread);
                f(thread)
            })
            .ok(),
    }
}

/// Records the thread's own stack limit the first time the thread asks.
fn ensure_thread_bottom(thread: &Growth) {
    if thread.bottom() == 0 {
        thread.start(thread_stack_limit(), 0, 0);
    }
}

/// The lowest usable address of the calling thread's stack, from the C library (0 if it cannot
/// tell, so that [`remaining`] errs towards growing).
fn thread_stack_limit() -> usize {
    // The attribute object is initialised by `pthread_getattr_np` before it is read, and
    // destroyed once.
    // SAFETY: as just said; the out-pointers are valid locals.
    unsafe {
        let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return 0;
        }
        let mut addr = std::ptr::null_mut();
        let mut size = 0;
        let mut guard = 0;
        let found = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0;
        libc::pthread_attr_getguardsize(attr.as_ptr(), &mut guard);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if found { addr as usize + guard } else { 0 }
    }
}
