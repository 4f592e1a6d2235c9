//! Goroutines (G): identity, status word, park word, and the coroutine that runs them.
//!
//! Invariants:
//! - the coroutine and the yielder pointer are touched only by the one M that moved the status
//!   to `RUNNING` (resuming it) or by the goroutine itself while it runs (suspending);
//! - status changes go through [`G::cas_status`], which waits while the `SCAN` bit is held, so
//!   a collector holding the bit never sees a goroutine start running;
//! - a goroutine's stack never moves: the yielder, which lives on it, stays valid for the
//!   coroutine's whole life.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::scheduler::M;
use crate::stack::Stack;

/// Why a goroutine suspended back to its M.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    /// `yield_now`: runnable again at once.
    Yield,
    /// Parking (see `park`): the M commits the park.
    Park,
    /// Back from `blocking` without a P: the M queues it globally.
    Requeue,
}

pub(crate) type GoroutineCoroutine = Coroutine<(), Switch, (), Stack>;

/// Status values (Go's `_Gidle` … `_Gdead`) and the scan bit.
pub(crate) mod status {
    pub(crate) const RUNNABLE: u32 = 1;
    pub(crate) const RUNNING: u32 = 2;
    pub(crate) const WAITING: u32 = 3;
    pub(crate) const DEAD: u32 = 4;
    /// Held by the collector while it scans the goroutine's stack.
    pub(crate) const SCAN: u32 = 0x1000;
}

/// What a waiting goroutine waits for, as deadlock reports and dumps print it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WaitReason {
    None = 0,
    Join = 1,
    Park = 2,
}

impl WaitReason {
    fn from_u8(raw: u8) -> Self {
        match raw {
            1 => WaitReason::Join,
            2 => WaitReason::Park,
            _ => WaitReason::None,
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitReason::None => "running",
            WaitReason::Join => "join",
            WaitReason::Park => "park",
        })
    }
}

/// A goroutine's unique id, like `std::thread::ThreadId`.
///
/// # Examples
///
/// ```
/// let handle = gort::spawn(|| gort::current().unwrap().id());
/// let id = handle.id();
/// assert_eq!(handle.join().unwrap(), id);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoroutineId(NonZeroU64);

impl GoroutineId {
    /// The id as a number (goroutine 1 is the first spawned).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::spawn(|| ()).id().as_u64() >= 1);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for GoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct G {
    pub(crate) id: GoroutineId,
    pub(crate) name: Option<Box<str>>,
    status: AtomicU32,
    pub(crate) park: AtomicU8,
    wait_reason: AtomicU8,
    /// Where the registry keeps this goroutine.
    pub(crate) registry_slot: AtomicUsize,
    /// The M this goroutine must run on (`lock_os_thread`, or the no-migration mode), or null.
    locked_to: AtomicPtr<M>,
    /// Nesting depth of `lock_os_thread`; touched only by the goroutine itself.
    pub(crate) lock_count: Cell<u32>,
    coroutine: UnsafeCell<Option<GoroutineCoroutine>>,
    yielder: Cell<*const Yielder<(), Switch>>,
}

// SAFETY: `coroutine` and `yielder` are touched only by the M running the goroutine or by the
// goroutine itself (module invariant); the status protocol makes that one thread at a time, with
// acquire/release ordering between consecutive runners. Everything else is atomic or immutable.
unsafe impl Send for G {}
// SAFETY: as above.
unsafe impl Sync for G {}

impl G {
    pub(crate) fn new(name: Option<Box<str>>) -> G {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        G {
            id: GoroutineId(NonZeroU64::new(id).expect("goroutine ids start at 1")),
            name,
            status: AtomicU32::new(status::RUNNABLE),
            park: AtomicU8::new(super::park::EMPTY),
            wait_reason: AtomicU8::new(WaitReason::None as u8),
            registry_slot: AtomicUsize::new(0),
            locked_to: AtomicPtr::new(std::ptr::null_mut()),
            lock_count: Cell::new(0),
            coroutine: UnsafeCell::new(None),
            yielder: Cell::new(std::ptr::null()),
        }
    }

    /// Gives the goroutine its coroutine.
    ///
    /// # Safety
    ///
    /// The goroutine has not been queued yet: nothing else can reach it.
    pub(crate) unsafe fn set_coroutine(&self, coroutine: GoroutineCoroutine) {
        // SAFETY: exclusive by the caller's contract.
        unsafe { *self.coroutine.get() = Some(coroutine) };
    }

    /// Moves the status from `from` to `to`, waiting while a scan holds the `SCAN` bit.
    pub(crate) fn cas_status(&self, from: u32, to: u32) {
        while let Err(actual) =
            self.status
                .compare_exchange_weak(from, to, Ordering::AcqRel, Ordering::Acquire)
        {
            assert!(
                actual & !status::SCAN == from,
                "goroutine {}: status {actual:#x}, expected {from:#x}",
                self.id
            );
            std::hint::spin_loop();
        }
    }

    /// Binds the goroutine to M `m` (which never exits).
    pub(crate) fn lock_to(&self, m: &M) {
        self.locked_to
            .store(std::ptr::from_ref(m).cast_mut(), Ordering::Release);
    }

    pub(crate) fn unlock(&self) {
        self.locked_to
            .store(std::ptr::null_mut(), Ordering::Release);
    }

    /// The M this goroutine must run on, if any.
    pub(crate) fn locked_m(&self) -> Option<&'static M> {
        // SAFETY: Ms are never freed (the scheduler leaks a reference to each), so a pointer to
        // one is valid for the rest of the process.
        unsafe { self.locked_to.load(Ordering::Acquire).as_ref() }
    }

    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }

    pub(crate) fn set_wait_reason(&self, reason: WaitReason) {
        self.wait_reason.store(reason as u8, Ordering::Relaxed);
    }

    /// Runs the goroutine until it suspends or returns.
    ///
    /// # Safety
    ///
    /// The caller is the M that moved the status to `RUNNING`.
    pub(crate) unsafe fn resume(&self) -> CoroutineResult<Switch, ()> {
        // SAFETY: the caller runs the goroutine, so it has the only access (module invariant).
        let coroutine = unsafe { &mut *self.coroutine.get() };
        coroutine
            .as_mut()
            .expect("a runnable goroutine has its coroutine")
            .resume(())
    }

    /// Takes the finished coroutine (to recycle its stack).
    ///
    /// # Safety
    ///
    /// The caller is the M that ran the goroutine to its end.
    pub(crate) unsafe fn take_coroutine(&self) -> Option<GoroutineCoroutine> {
        // SAFETY: as in `resume`.
        unsafe { (*self.coroutine.get()).take() }
    }

    /// Called once by the goroutine when it starts: where to suspend to.
    pub(crate) fn set_yielder(&self, yielder: &Yielder<(), Switch>) {
        self.yielder.set(yielder);
    }

    /// Suspends the running goroutine back to its M.
    ///
    /// # Safety
    ///
    /// Only the goroutine itself may call this, while it runs.
    pub(crate) unsafe fn suspend(&self, why: Switch) {
        let yielder = self.yielder.get();
        debug_assert!(!yielder.is_null());
        // SAFETY: the yielder lives on this goroutine's stack, which never moves, for as long as
        // the coroutine runs; the caller is the goroutine itself.
        unsafe { (*yielder).suspend(why) }
    }
}
