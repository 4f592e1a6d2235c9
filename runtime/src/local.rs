//! Goroutine-local storage: [`goroutine_local!`](crate::goroutine_local) values that follow
//! their goroutine from thread to thread, where a `thread_local!` would not.
//!
//! Each goroutine keeps a small table from keys to its values, created on first use and dropped
//! when the goroutine's body returns (or unwinds), on the goroutine itself. Outside goroutines
//! the same keys use a table per thread, dropped when the thread exits.
//!
//! Invariants:
//! - a table is touched only by its owner: the running goroutine, or the thread;
//! - a value is boxed once and never moves or is dropped before its table is cleared, so a
//!   reference handed to `with` stays valid for the whole call, even if the call switches
//!   goroutines or creates other values in the table.

use std::any::Any;
use std::cell::UnsafeCell;
use std::marker::PhantomData;

use crate::sched;

/// One goroutine's (or thread's) values: each key's address, and its boxed value.
#[derive(Default)]
pub(crate) struct Table {
    values: UnsafeCell<Vec<(usize, *mut dyn Any)>>,
}

impl Table {
    pub(crate) const fn new() -> Table {
        Table {
            values: UnsafeCell::new(Vec::new()),
        }
    }

    /// The value of `key`, made with `init` if the table has none yet.
    ///
    /// # Safety
    ///
    /// The caller is the table's owner (module invariant), and the reference is not used after
    /// the table is cleared.
    unsafe fn get_or_init<T: 'static>(&self, key: usize, init: fn() -> T) -> *const T {
        // Values are reached through their own boxes, so no reference into the vector escapes.
        // SAFETY: only the owner touches the table, and this reference ends within the call.
        let found = unsafe { &*self.values.get() }
            .iter()
            .find(|&&(at, _)| at == key)
            .map(|&(_, value)| value);
        let value = match found {
            Some(value) => value,
            None => {
                // `init` may itself use goroutine-locals: run it before touching the vector.
                let value: *mut dyn Any = Box::into_raw(Box::new(init()));
                // SAFETY: as above.
                unsafe { &mut *self.values.get() }.push((key, value));
                value
            }
        };
        // SAFETY: the box holds a `T`: it was made for this key, whose type is `T`.
        unsafe { (*value).downcast_ref::<T>() }.expect("a key's value has the key's type")
    }

    /// Drops every value (the owner is done with them).
    ///
    /// # Safety
    ///
    /// The caller is the table's owner, and no reference from [`Table::get_or_init`] is live.
    pub(crate) unsafe fn clear(&self) {
        loop {
            // A value's `Drop` may use goroutine-locals again: take one entry at a time.
            // SAFETY: the owner's exclusive access, per the contract.
            let Some((_, value)) = (unsafe { &mut *self.values.get() }).pop() else {
                return;
            };
            // SAFETY: made by `Box::into_raw` in `get_or_init`, dropped once here.
            drop(unsafe { Box::from_raw(value) });
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: the owner, with no reference left.
        unsafe { self.clear() };
    }
}

// SAFETY: a table moves with its goroutine between threads; only its owner touches it (module
// invariant), and the values are `Send` (required by `LocalKey`).
unsafe impl Send for Table {}
// SAFETY: as above: a goroutine record is shared, but only its running goroutine uses the table.
unsafe impl Sync for Table {}

thread_local! {
    static THREAD_TABLE: Table = const { Table::new() };
}

/// A key to a goroutine-local value; made by [`goroutine_local!`](crate::goroutine_local).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// gort::goroutine_local! {
///     static COUNT: Cell<u32> = Cell::new(0);
/// }
///
/// let a = gort::spawn(|| {
///     COUNT.with(|c| c.set(c.get() + 1));
///     gort::yield_now(); // may resume on another thread: the value follows
///     COUNT.with(Cell::get)
/// });
/// let b = gort::spawn(|| COUNT.with(Cell::get));
/// assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 0));
/// ```
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    value: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            value: PhantomData,
        }
    }

    /// Runs `f` with the calling goroutine's value (the calling thread's outside goroutines),
    /// made by the key's initialiser on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    ///
    /// gort::goroutine_local! {
    ///     static LOG: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
    /// }
    ///
    /// let log = gort::spawn(|| {
    ///     LOG.with(|log| log.borrow_mut().push("hello"));
    ///     LOG.with(|log| log.borrow().clone())
    /// });
    /// assert_eq!(log.join().unwrap(), ["hello"]);
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = std::ptr::from_ref(self) as usize;
        match sched::current_locals() {
            // The value is dropped only when the goroutine's body is over.
            // SAFETY: this goroutine owns its table, and the value outlives this call.
            Some(table) => f(unsafe { &*table.get_or_init(key, self.init) }),
            None => {
                // The value lives until the thread exits, after this call.
                let value = THREAD_TABLE
                    // SAFETY: this thread owns its table, and its value outlives this call.
                    .with(|table| unsafe { table.get_or_init(key, self.init) });
                // SAFETY: as just said.
                f(unsafe { &*value })
            }
        }
    }
}

impl<T: 'static> std::fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKey { .. }")
    }
}

/// Declares goroutine-local statics: like `thread_local!`, but each goroutine has its own value,
/// which follows it across threads. Outside goroutines, each thread has its own.
///
/// The value type must be `Send` (a goroutine may move between threads); interior mutability
/// (`Cell`, `RefCell`) works as with `thread_local!`, because a goroutine runs on one thread at
/// a time.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// gort::goroutine_local! {
///     /// Requests this goroutine has served.
///     pub static SERVED: Cell<u64> = Cell::new(0);
/// }
///
/// let served = gort::spawn(|| {
///     for _ in 0..3 {
///         SERVED.with(|s| s.set(s.get() + 1));
///         gort::yield_now();
///     }
///     SERVED.with(Cell::get)
/// });
/// assert_eq!(served.join().unwrap(), 3);
/// ```
#[macro_export]
macro_rules! goroutine_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $ty:ty = $init:expr;)+) => {
        $(
            $(#[$attr])*
            $vis static $name: $crate::LocalKey<$ty> = $crate::LocalKey::new({
                fn init() -> $ty {
                    $init
                }
                init
            });
        )+
    };
}
