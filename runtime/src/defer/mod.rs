//! Deferred calls: [`defer!`](crate::defer!) puts a record on the goroutine's stack, [`Defers`]
//! puts records in defer spans of the span heap (for loops and other counts unknown in
//! advance). Both link their records into the goroutine's defer chain (the calling thread's,
//! outside goroutines), newest first, so the chain weaves between stack and heap records as Go's
//! does, and the collector can walk it.
//!
//! Ending a record's scope (returning, or unwinding from a panic) runs every record newer than
//! it, then it: records run in the reverse order of their registration, whichever kind they are
//! and whoever owns them. A deferred call that panics while the goroutine is already unwinding
//! from a panic ends the process with a clear message, as Rust does for a panic in a `drop`
//! during unwinding.
//!
//! Invariants:
//! - the chain is touched only by its goroutine (or thread), and by a collector holding the
//!   goroutine's scan claim (it is not running);
//! - a record is in the chain from its registration until it runs; its owner (the stack guard,
//!   or the `Defers` holding heap records) runs it, and so unlinks it, before ending. Owners are
//!   not `Send`, and stack guards are pinned, so they end in the goroutine that registered them;
//! - a record's call may borrow only if its owner cannot be leaked (stack guards, pinned in a
//!   hidden local by `defer!`); a `Defers` can be, so its calls are `'static`;
//! - a heap record's slot goes back to the slab only once it has run, when its `Defers` ends.

mod slab;

use std::cell::{Cell, UnsafeCell};
use std::marker::{PhantomData, PhantomPinned};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr;

use self::slab::HeapRecord;

/// The header every record of a defer chain starts with.
#[doc(hidden)]
#[repr(C)]
pub struct Record {
    /// The next older record, or null.
    older: Cell<*const Record>,
    /// Whether the record is in a chain: from its registration until it runs.
    in_chain: Cell<bool>,
    /// Runs the record's call, once.
    run: unsafe fn(*const Record),
}

impl Record {
    fn new(run: unsafe fn(*const Record)) -> Record {
        Record {
            older: Cell::new(ptr::null()),
            in_chain: Cell::new(false),
            run,
        }
    }
}

thread_local! {
    /// The chain of code outside goroutines.
    static THREAD_CHAIN: Chain = const { Chain::new() };
}

/// The bytes of a record, for a walk that checks a record lies whole in its span.
pub(crate) const RECORD_BYTES: usize = std::mem::size_of::<Record>();

/// The record older than the one at `record` (0 if it is the oldest), for the collector's walk.
///
/// # Safety
///
/// `record` is a record of the chain of a goroutine that is not running (the caller holds its
/// scan claim), and it lies whole in a span that is in use.
pub(crate) unsafe fn older(record: usize) -> usize {
    // SAFETY: by the caller's contract the memory is a record no one writes meanwhile.
    unsafe { (*(record as *const Record)).older.get() as usize }
}

/// A goroutine's (or thread's) defer chain: the newest record, or null.
pub(crate) struct Chain {
    head: Cell<*const Record>,
}

impl Chain {
    pub(crate) const fn new() -> Chain {
        Chain {
            head: Cell::new(ptr::null()),
        }
    }

    /// Forgets the records left in the chain (those of a leaked `Defers`), when the goroutine
    /// ends and its record is recycled.
    pub(crate) fn clear(&self) {
        self.head.set(ptr::null());
    }

    /// The newest record's address, or 0: where the collector's walk starts.
    pub(crate) fn newest(&self) -> usize {
        self.head.get() as usize
    }

    /// Calls `f` with the chain of the running goroutine, or of the calling thread.
    fn with_current<R>(f: impl FnOnce(&Chain) -> R) -> R {
        match crate::sched::current_g() {
            Some(g) => f(&g.defers),
            None => THREAD_CHAIN.with(f),
        }
    }

    fn push(&self, record: &Record) {
        record.older.set(self.head.get());
        record.in_chain.set(true);
        self.head.set(record);
    }

    /// Runs the records from the newest down to `last`, which must be in the chain. If a call
    /// panics, the rest still run while the panic unwinds.
    fn run_down_to(&self, last: *const Record) {
        /// Runs the remaining records if a call panics.
        struct Rest<'a> {
            chain: &'a Chain,
            last: *const Record,
            finished: bool,
        }
        impl Drop for Rest<'_> {
            fn drop(&mut self) {
                if !self.finished {
                    self.chain.run_down_to(self.last);
                }
            }
        }
        let mut rest = Rest {
            chain: self,
            last,
            finished: false,
        };
        loop {
            let newest = self.head.get();
            assert!(!newest.is_null(), "a deferred call's record left its chain");
            // SAFETY: records in the chain are alive: their owners unlink them before ending.
            let record = unsafe { &*newest };
            self.head.set(record.older.get());
            record.in_chain.set(false);
            if newest == last {
                rest.finished = true;
            }
            call_record(record);
            if newest == last {
                return;
            }
        }
    }
}

/// Runs `record`'s call; if the goroutine is already unwinding and the call panics too, ends
/// the process with a message.
fn call_record(record: &Record) {
    if !std::thread::panicking() {
        // SAFETY: the record just left the chain, so this is its one run.
        unsafe { (record.run)(record) };
        return;
    }
    // SAFETY: as above.
    let call = AssertUnwindSafe(|| unsafe { (record.run)(record) });
    if panic::catch_unwind(call).is_err() {
        eprintln!("fatal error: a deferred call panicked while unwinding from a panic");
        std::process::abort();
    }
}

/// A deferred call on the goroutine's stack, made by [`defer!`](crate::defer!): pinned where it
/// is declared, it runs (with every newer record) when its scope ends.
#[doc(hidden)]
#[repr(C)]
pub struct StackDefer<F: FnOnce()> {
    record: Record,
    call: UnsafeCell<Option<F>>,
    _pinned: PhantomPinned,
    /// Not `Send`: it must end in the goroutine whose chain holds it.
    _local: PhantomData<*const ()>,
}

impl<F: FnOnce()> StackDefer<F> {
    /// A deferred call, not yet registered.
    #[doc(hidden)]
    pub fn new(call: F) -> Self {
        StackDefer {
            record: Record::new(Self::run),
            call: UnsafeCell::new(Some(call)),
            _pinned: PhantomPinned,
            _local: PhantomData,
        }
    }

    /// Links the record into the current chain; it stays pinned until it runs.
    ///
    /// # Safety
    ///
    /// The record is dropped (not leaked) before anything its call borrows ends, in the
    /// goroutine (or thread) that registers it: a leaked record would stay in the chain, and a
    /// later scope end would run its call. [`defer!`](crate::defer!) guarantees it by pinning
    /// the record in a hidden local of the caller's scope.
    #[doc(hidden)]
    pub unsafe fn register(self: Pin<&Self>) {
        Chain::with_current(|chain| chain.push(&self.get_ref().record));
    }

    /// # Safety
    ///
    /// `record` is the header of a live `StackDefer<F>`, run once.
    unsafe fn run(record: *const Record) {
        // SAFETY: `record` is the first field of a `#[repr(C)]` StackDefer<F> (our contract).
        let this = unsafe { &*record.cast::<StackDefer<F>>() };
        // SAFETY: only this run touches the call, once.
        if let Some(call) = unsafe { (*this.call.get()).take() } {
            call();
        }
    }
}

impl<F: FnOnce()> Drop for StackDefer<F> {
    fn drop(&mut self) {
        if self.record.in_chain.get() {
            Chain::with_current(|chain| chain.run_down_to(&self.record));
        }
    }
}

/// Defers `expr` (or a block) to the end of the enclosing scope: it runs when the scope ends,
/// also when a panic unwinds it, after every call deferred later. Like Go's `defer`, but scoped
/// to the block rather than the function.
///
/// The record lives on the goroutine's stack and is linked into its defer chain (see
/// [`Defers`] for records on the heap).
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
///
/// let order = RefCell::new(Vec::new());
/// {
///     gort::defer!(order.borrow_mut().push("first registered, runs last"));
///     gort::defer! {
///         order.borrow_mut().push("runs first");
///     }
///     order.borrow_mut().push("body");
/// }
/// assert_eq!(*order.borrow(), ["body", "runs first", "first registered, runs last"]);
/// ```
#[macro_export]
macro_rules! defer {
    ($($body:tt)*) => {
        let __gort_defer = ::core::pin::pin!($crate::defer::StackDefer::new(|| {
            $($body)*;
        }));
        // The record is pinned in a hidden local of this scope, which nothing can leak, so it is
        // dropped (running its call) when the scope ends, in this goroutine.
        // SAFETY: as just said.
        unsafe { __gort_defer.as_ref().register() };
    };
}

/// Deferred calls on the heap, for loops and other counts unknown in advance: each
/// [`push`](Defers::push) adds a record from a defer span of the span heap to the goroutine's
/// defer chain. They run, newest first and with every record deferred after them, when the
/// `Defers` is dropped (its scope ends, or a panic unwinds it), or earlier if a record deferred
/// before them ends its scope first (the `Defers` was moved out of its scope).
///
/// The calls are `'static`: a `Defers` could be leaked (`std::mem::forget`), and its records
/// would then run when an older record's scope ends. Share state with them through `Rc` or
/// `Arc`, or use [`defer!`](crate::defer!), whose calls may borrow.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let closed = Rc::new(RefCell::new(Vec::new()));
/// {
///     let mut defers = gort::defer::Defers::new();
///     for file in ["a", "b", "c"] {
///         let closed = Rc::clone(&closed);
///         defers.push(move || closed.borrow_mut().push(file));
///     }
///     assert!(closed.borrow().is_empty());
/// }
/// assert_eq!(*closed.borrow(), ["c", "b", "a"]);
/// ```
pub struct Defers {
    /// This `Defers`' records, newest first (through their `sibling` links).
    newest: *mut HeapRecord,
    /// The oldest record, which the chain runs down to when this ends.
    oldest: *const Record,
    /// Not `Send`: it must end in the goroutine whose chain holds its records.
    _local: PhantomData<*const ()>,
}

impl Defers {
    /// No deferred calls yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let defers = gort::defer::Defers::new();
    /// assert!(defers.is_empty());
    /// ```
    pub fn new() -> Self {
        Defers {
            newest: ptr::null_mut(),
            oldest: ptr::null(),
            _local: PhantomData,
        }
    }

    /// Defers `call` to when this `Defers` is dropped.
    ///
    /// # Panics
    ///
    /// If the span heap cannot provide a defer span (no address space left).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut defers = gort::defer::Defers::new();
    /// defers.push(|| println!("deferred"));
    /// assert!(!defers.is_empty());
    /// ```
    pub fn push(&mut self, call: impl FnOnce() + 'static) {
        let record = HeapRecord::new(call, self.newest);
        // SAFETY: the slot was just made, and stays alive until this `Defers` frees it.
        let header = unsafe { HeapRecord::header(record) };
        Chain::with_current(|chain| chain.push(header));
        if self.newest.is_null() {
            self.oldest = header;
        }
        self.newest = record;
    }

    /// Whether no call has been deferred here.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::defer::Defers::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.newest.is_null()
    }
}

impl Default for Defers {
    fn default() -> Self {
        Defers::new()
    }
}

impl Drop for Defers {
    fn drop(&mut self) {
        /// Frees the records once they ran, also if a call panics.
        struct Free(*mut HeapRecord);
        impl Drop for Free {
            fn drop(&mut self) {
                // SAFETY: every record of the list has run (the chain ran down to the oldest).
                unsafe { HeapRecord::free_list(self.0) };
            }
        }
        if self.oldest.is_null() {
            return;
        }
        let _free = Free(self.newest);
        // SAFETY: the oldest record is alive until `_free` frees it.
        if unsafe { &*self.oldest }.in_chain.get() {
            Chain::with_current(|chain| chain.run_down_to(self.oldest));
        }
    }
}
