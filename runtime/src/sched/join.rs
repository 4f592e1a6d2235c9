//! Join handles: how a goroutine's body reaches the goroutine, and its result or panic whoever
//! waits for it.
//!
//! One type-erased slot in the goroutine's own record holds the body from the spawn until the
//! goroutine starts, then the result (no allocation for either up to 32 bytes); a `JoinHandle`
//! keeps the record alive. The [`completion`] protocol hands the slot over without a lock.
//!
//! Invariants:
//! - a goroutine completes once, and the waiter registered by then is woken once;
//! - a result nobody will take is dropped by the goroutine (its handle was dropped first) or by
//!   the thread dropping the handle (the goroutine finished first), never by the scheduler: user
//!   `Drop` code must not run on an M that holds its P;
//! - the slot holds the body, of exactly the type `F` given to [`set_body`], until the goroutine
//!   takes it out; then a value of exactly the type `thread::Result<T>` of the `JoinHandle<T>`
//!   made with the goroutine (all come from the one `Builder::spawn` call);
//! - a waiter re-checks completion after every wake-up (wake-ups may be spurious).

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;

use super::completion::{self, Finished};
use super::g::{G, GRef, GoroutineId, WaitReason};
use super::scheduler::{self, Waiter};

/// Words a body or a result is stored in without allocating.
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

/// How to run a goroutine's body and deliver its result, for the body's and result's types.
struct BodyFns {
    /// Moves the body out of the slot, runs it, and completes with its result.
    run: unsafe fn(&G),
    /// Drops the body unrun and completes with a panic payload.
    abandon: unsafe fn(&G, Box<dyn Any + Send>),
}

struct Erased<F, T>(PhantomData<(F, T)>);

impl<F, T> Erased<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    const FNS: &'static BodyFns = &BodyFns {
        run: Self::run,
        abandon: Self::abandon,
    };

    /// # Safety
    ///
    /// The caller is the goroutine `g`, starting; its slot holds its body, an `F`.
    unsafe fn run(g: &G) {
        // SAFETY: by the contract above; the running goroutine owns its slot.
        let body: F = unsafe { (*g.join.slot.get()).take() };
        let result = panic::catch_unwind(AssertUnwindSafe(body));
        // Goroutine-local values go with the body, on the goroutine (their `Drop` is user code).
        // SAFETY: the goroutine owns its table, and no `with` call is running any more.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe { g.locals.clear() }));
        complete::<T>(g, result);
    }

    /// # Safety
    ///
    /// `g` never started and never will; its slot holds its body, an `F`; the caller is not an
    /// M (the body's `Drop` is user code).
    unsafe fn abandon(g: &G, payload: Box<dyn Any + Send>) {
        // SAFETY: by the contract above, the caller is the only one touching the slot.
        let body: F = unsafe { (*g.join.slot.get()).take() };
        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(body)));
        complete::<T>(g, Err(payload));
    }
}

/// A goroutine's completion: its body until it starts, then its result, and who waits for it
/// (see [`completion`] for the protocol).
pub(crate) struct JoinState {
    state: AtomicU8,
    body: Cell<Option<&'static BodyFns>>,
    waiter: UnsafeCell<Option<Waiter>>,
    /// The body until the goroutine starts, its result once it finished.
    slot: UnsafeCell<ResultSlot>,
}

impl JoinState {
    pub(crate) const fn new() -> Self {
        JoinState {
            state: AtomicU8::new(completion::PENDING),
            body: Cell::new(None),
            waiter: UnsafeCell::new(None),
            slot: UnsafeCell::new(ResultSlot::empty()),
        }
    }

    /// Empties the state for the record's next goroutine, dropping what is left in it.
    ///
    /// # Safety
    ///
    /// Nothing refers to the record.
    pub(crate) unsafe fn reset(&self) {
        self.state.store(completion::PENDING, Ordering::Relaxed);
        self.body.set(None);
        // SAFETY: exclusive by the caller's contract.
        unsafe {
            *self.waiter.get() = None;
            *self.slot.get() = ResultSlot::empty();
        }
    }
}

/// Stores `body` as what new goroutine `g` runs when it starts.
///
/// # Safety
///
/// `g` is not queued yet: nothing else touches it.
pub(crate) unsafe fn set_body<F, T>(g: &G, body: F)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: exclusive by the caller's contract.
    unsafe { (*g.join.slot.get()).put(body) };
    g.join.body.set(Some(Erased::<F, T>::FNS));
}

/// Runs the body of goroutine `g` and completes it with the result.
///
/// # Safety
///
/// The caller is goroutine `g`, starting (once).
pub(crate) unsafe fn run_body(g: &G) {
    let fns = g.join.body.get().expect("a spawned goroutine has a body");
    // SAFETY: forwarded.
    unsafe { (fns.run)(g) };
}

/// Completes goroutine `g`, which can never start, with `payload` as its panic.
///
/// # Safety
///
/// `g` was spawned, never started, and never will; the caller is not an M.
pub(crate) unsafe fn abandon(g: &G, payload: Box<dyn Any + Send>) {
    let fns = g.join.body.get().expect("a spawned goroutine has a body");
    // SAFETY: forwarded.
    unsafe { (fns.abandon)(g, payload) };
}

/// Stores the running goroutine's result and wakes its joiner, if any; drops the result here,
/// in the goroutine, if its handle is gone.
fn complete<T>(g: &G, result: thread::Result<T>) {
    let join = &g.join;
    // SAFETY: the running goroutine owns its slot until it finishes (completion invariants).
    unsafe { (*join.slot.get()).put(result) };
    match completion::finish(&join.state) {
        Finished::Stored => {}
        Finished::Wake => {
            // SAFETY: finishing found `WAITING`: the waiter slot is the goroutine's now.
            let waiter = unsafe { (*join.waiter.get()).take() };
            waiter.expect("a registered waiter").wake();
        }
        Finished::Unclaimed => {
            // SAFETY: the handle is gone, so the result is the goroutine's to drop.
            let unclaimed = unsafe { (*join.slot.get()).take::<thread::Result<T>>() };
            drop_unclaimed(unclaimed);
        }
    }
}

/// Drops a result nobody will take. A panicking `Drop` goes no further: in a goroutine it must
/// not unwind into its M, and the thread dropping a handle did not ask for the value.
fn drop_unclaimed<T>(unclaimed: thread::Result<T>) {
    let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(unclaimed)));
}

/// An owned permission to join a goroutine (wait for it to finish and take its result).
///
/// Dropping it detaches the goroutine, which then runs to its end unobserved. Its result is
/// dropped by whichever of the two finishes last: the goroutine, or the thread dropping the
/// handle. A panic in that `Drop` is reported (by the panic hook) and goes no further, on either
/// side.
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
        // The result is taken here, so `Drop` has nothing to do.
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is neither used nor dropped after its record reference is moved out.
        let g = unsafe { std::ptr::read(&this.g) };
        let join = &g.join;
        if !completion::is_done(&join.state) {
            // SAFETY: before registering, the waiter slot is the handle's.
            unsafe { *join.waiter.get() = Some(Waiter::current()) };
            if completion::register_waiter(&join.state) {
                while !completion::is_done(&join.state) {
                    scheduler::park_current(WaitReason::Join);
                }
            } else {
                // SAFETY: the goroutine finished first: the waiter slot is still the handle's.
                drop(unsafe { (*join.waiter.get()).take() });
            }
        }
        // SAFETY: `DONE`: the slot holds this handle's `thread::Result<T>`, taken once.
        unsafe { (*join.slot.get()).take() }
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
        completion::is_done(&self.g.join.state)
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
        self.g.id()
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if completion::detach(&self.g.join.state) {
            // SAFETY: `DONE`: the slot holds this handle's `thread::Result<T>`.
            let unclaimed = unsafe { (*self.g.join.slot.get()).take::<thread::Result<T>>() };
            drop_unclaimed(unclaimed);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}
