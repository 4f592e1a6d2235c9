//! Join handles: how a goroutine's result or panic reaches whoever waits for it.
//!
//! The result lives in the goroutine's own record (no allocation for results of up to 32
//! bytes), which a `JoinHandle` keeps alive.
//!
//! Invariants:
//! - a goroutine completes once: the result is stored and `done` set under the record's join
//!   lock, and the waiter registered at that moment is woken after the lock is released;
//! - a result nobody will take is dropped by the goroutine (its handle was dropped first) or by
//!   the thread dropping the handle (the goroutine finished first), never by the scheduler: user
//!   `Drop` code must not run on an M that holds its P;
//! - the slot holds a value of exactly the type `thread::Result<T>` of the `JoinHandle<T>` made
//!   with the goroutine (both come from the one `Builder::spawn` call);
//! - a waiter re-checks `done` after every wake-up (wake-ups may be spurious).

use std::fmt;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};
use std::thread;

use super::g::{G, GRef, GoroutineId, WaitReason};
use super::scheduler::{self, Waiter};

/// Bytes a result is stored in without allocating.
const INLINE_WORDS: usize = 4;

/// A type-erased slot for one value.
pub(crate) struct ResultSlot {
    words: [MaybeUninit<usize>; INLINE_WORDS],
    /// Drops the value in place when the slot holds one that nobody took.
    drop: Option<unsafe fn(*mut MaybeUninit<usize>)>,
}

impl ResultSlot {
    const fn empty() -> Self {
        ResultSlot {
            words: [MaybeUninit::uninit(); INLINE_WORDS],
            drop: None,
        }
    }

    fn inline<R>() -> bool {
        size_of::<R>() <= size_of::<[usize; INLINE_WORDS]>()
            && align_of::<R>() <= align_of::<usize>()
    }

    /// Stores `value` (inline if it fits, boxed otherwise).
    fn put<R>(&mut self, value: R) {
        debug_assert!(self.drop.is_none(), "a result slot is filled once");
        let at = self.words.as_mut_ptr();
        if Self::inline::<R>() {
            // SAFETY: `R` fits the words in size and alignment (checked above).
            unsafe { at.cast::<R>().write(value) };
            self.drop = Some(drop_inline::<R>);
        } else {
            // SAFETY: a pointer fits the first word.
            unsafe { at.cast::<*mut R>().write(Box::into_raw(Box::new(value))) };
            self.drop = Some(drop_boxed::<R>);
        }
    }

    /// Takes the value out, if the slot holds one.
    ///
    /// # Safety
    ///
    /// As for `take`.
    unsafe fn take_if_full<R>(&mut self) -> Option<R> {
        // SAFETY: forwarded.
        self.drop.is_some().then(|| unsafe { self.take() })
    }

    /// Takes the value out.
    ///
    /// # Safety
    ///
    /// The slot holds a value stored by `put::<R>` with the same `R`.
    unsafe fn take<R>(&mut self) -> R {
        self.drop.take().expect("the result is taken once");
        let at = self.words.as_mut_ptr();
        if Self::inline::<R>() {
            // SAFETY: `put::<R>` wrote an `R` here and nothing has read it out.
            unsafe { at.cast::<R>().read() }
        } else {
            // SAFETY: `put::<R>` wrote a pointer from `Box::into_raw` here.
            unsafe { *Box::from_raw(at.cast::<*mut R>().read()) }
        }
    }
}

impl Drop for ResultSlot {
    fn drop(&mut self) {
        if let Some(drop) = self.drop.take() {
            // SAFETY: `drop` was chosen by `put` for the value the slot still holds.
            unsafe { drop(self.words.as_mut_ptr()) };
        }
    }
}

/// # Safety
///
/// `at` holds an `R` written by `ResultSlot::put`.
unsafe fn drop_inline<R>(at: *mut MaybeUninit<usize>) {
    // SAFETY: by the contract above.
    unsafe { at.cast::<R>().drop_in_place() };
}

/// # Safety
///
/// `at` holds a pointer to a boxed `R` written by `ResultSlot::put`.
unsafe fn drop_boxed<R>(at: *mut MaybeUninit<usize>) {
    // SAFETY: by the contract above.
    drop(unsafe { Box::from_raw(at.cast::<*mut R>().read()) });
}

/// A goroutine's completion: its result, and who waits for it.
pub(crate) struct JoinState {
    done: bool,
    /// The handle was dropped before the goroutine finished.
    detached: bool,
    waiter: Option<Waiter>,
    result: ResultSlot,
}

impl JoinState {
    pub(crate) const fn new() -> Self {
        JoinState {
            done: false,
            detached: false,
            waiter: None,
            result: ResultSlot::empty(),
        }
    }
}

/// Stores the running goroutine's result and wakes its joiner, if any; drops the result here,
/// in the goroutine, if its handle is gone.
pub(crate) fn complete<T>(g: &G, result: thread::Result<T>) {
    let (waiter, unclaimed) = {
        let mut state = g.join.lock();
        state.done = true;
        if state.detached {
            (None, Some(result))
        } else {
            state.result.put(result);
            (state.waiter.take(), None)
        }
    };
    if unclaimed.is_some() {
        // A panicking `Drop` must not unwind out of the goroutine into its M.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(unclaimed)));
    }
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}

/// An owned permission to join a goroutine (wait for it to finish and take its result).
///
/// Dropping it detaches the goroutine, which then runs to its end unobserved.
///
/// # Examples
///
/// ```
/// let handle = gort::spawn(|| 6 * 7);
/// assert_eq!(handle.join().unwrap(), 42);
///
/// let panicked = gort::spawn(|| panic!("boom"));
/// assert!(panicked.join().is_err());
/// ```
pub struct JoinHandle<T> {
    g: GRef,
    result: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    /// A handle on `g`, whose body completes with a `thread::Result<T>`.
    pub(crate) fn new(g: GRef) -> Self {
        JoinHandle {
            g,
            result: PhantomData,
        }
    }

    /// Waits for the goroutine to finish and returns its result, or the payload of its panic.
    ///
    /// From a goroutine this parks the goroutine (its OS thread runs others meanwhile); from a
    /// plain thread it blocks the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::spawn(|| "done");
    /// assert_eq!(handle.join().unwrap(), "done");
    /// ```
    pub fn join(self) -> thread::Result<T> {
        // The result is taken here, so `Drop` has nothing to do: skip its second lock.
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is neither used nor dropped after its record reference is moved out.
        let g = unsafe { std::ptr::read(&this.g) };
        loop {
            {
                let mut state = g.join.lock();
                if state.done {
                    // SAFETY: the body stored this handle's `thread::Result<T>`; taken once.
                    return unsafe { state.result.take() };
                }
                state.waiter = Some(Waiter::current());
            }
            scheduler::park_current(WaitReason::Join);
        }
    }

    /// Whether the goroutine has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::spawn(|| ());
    /// while !handle.is_finished() {
    ///     gort::yield_now();
    /// }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.g.join.lock().done
    }

    /// The goroutine's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::spawn(|| ());
    /// println!("spawned goroutine {}", handle.id());
    /// ```
    pub fn id(&self) -> GoroutineId {
        self.g.id
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let unclaimed = {
            let mut state = self.g.join.lock();
            if state.done {
                // SAFETY: the slot holds this handle's `thread::Result<T>`, if anything.
                unsafe { state.result.take_if_full::<thread::Result<T>>() }
            } else {
                state.detached = true;
                None
            }
        };
        drop(unclaimed);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}
