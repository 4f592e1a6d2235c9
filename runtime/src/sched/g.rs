//! Goroutines (G): identity, status word, park word, and the coroutine that runs them.
//!
//! Goroutine records are recycled and never freed (Go's `allgs`): a [`GRef`] counts references
//! like an `Arc`, and the last one dropped puts the record on a per-thread free list (spilling to
//! a global one), so spawning allocates nothing in the steady state, a record made on one thread
//! and dropped on another costs no cross-thread `free`, and the registry can list every record
//! without a lock on the spawn path.
//!
//! A goroutine gets its stack when it first runs, not when it is spawned: a queued goroutine
//! costs only its record, and a goroutine starting on a P usually gets the stack that the last
//! one to finish there left warm in the P's cache.
//!
//! Invariants:
//! - a record is reset, and only then reused, after its count reached zero: nothing refers to
//!   it. Its non-atomic fields (`id`, `name`, the stack size, `system`) are written only then,
//!   so anyone holding a `GRef` reads them unchanged;
//! - a goroutine that has not finished holds a reference to its own record (released by the M
//!   that runs it to its end, [`GRef::finish`]), so a parked goroutine nobody else refers to
//!   stays parked;
//! - the coroutine and the yielder pointer are touched only by the one M that moved the status
//!   to `RUNNING` (resuming it) or by the goroutine itself while it runs (suspending);
//! - a goroutine starts running through [`G::start_running`], which waits while a scan holds
//!   its claim, so a collector holding the claim never sees a goroutine start running; only the
//!   M running a goroutine moves it out of `RUNNING` ([`G::leave_running`]);
//! - a parked goroutine's status stays `WAITING` when it is woken, until it runs again: its park
//!   word, not its status, tells a parked goroutine from a woken one, so a wake-up costs no
//!   write to the status word (both states are scannable, and nothing runs in between);
//! - a goroutine's stack never moves: the yielder, which lives on it, stays valid for the
//!   coroutine's whole life.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::num::NonZeroU64;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use parking_lot::Mutex;

use super::join::JoinState;
use super::registry;
use super::release::Release;
use super::scheduler::M;
use super::status::{self, StatusWord};
use crate::collector::Stopped;
use crate::defer::Chain;
use crate::local::Table;
use crate::stack::{Growth, Stack, StackSize};

/// Why a goroutine suspended back to its M.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Switch {
    /// `yield_now`: runnable again at once.
    Yield,
    /// Parking (see `park`): the M commits the park.
    Park,
    /// Parking where exactly one party can reach the goroutine, once the M has run the
    /// [`Release`] (see [`super::scheduler::park_releasing`]): no park word is involved.
    ParkReleasing(Release),
    /// Back from `blocking` without a P: the M queues it globally (the runtime's own
    /// goroutines in the system queue).
    Requeue,
}

pub(crate) type GoroutineCoroutine = Coroutine<(), Switch, (), Stack>;

/// What a waiting goroutine waits for, as deadlock reports and dumps print it (Go's wait
/// reasons where Go has the concept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WaitReason {
    None = 0,
    Join = 1,
    Park = 2,
    ChanSend = 3,
    ChanReceive = 4,
    Select = 5,
    Sleep = 6,
    Semacquire = 7,
    MutexLock = 8,
    RwLockRead = 9,
    RwLockWrite = 10,
    CondvarWait = 11,
    WaitGroupWait = 12,
    BarrierWait = 13,
    OnceWait = 14,
    IoWait = 15,
}

impl WaitReason {
    const ALL: [WaitReason; 16] = [
        WaitReason::None,
        WaitReason::Join,
        WaitReason::Park,
        WaitReason::ChanSend,
        WaitReason::ChanReceive,
        WaitReason::Select,
        WaitReason::Sleep,
        WaitReason::Semacquire,
        WaitReason::MutexLock,
        WaitReason::RwLockRead,
        WaitReason::RwLockWrite,
        WaitReason::CondvarWait,
        WaitReason::WaitGroupWait,
        WaitReason::BarrierWait,
        WaitReason::OnceWait,
        WaitReason::IoWait,
    ];

    fn from_u8(raw: u8) -> Self {
        Self::ALL
            .get(usize::from(raw))
            .copied()
            .unwrap_or(WaitReason::None)
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitReason::None => "running",
            WaitReason::Join => "join",
            WaitReason::Park => "park",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::Select => "select",
            WaitReason::Sleep => "sleep",
            WaitReason::Semacquire => "semacquire",
            WaitReason::MutexLock => "sync.Mutex.Lock",
            WaitReason::RwLockRead => "sync.RWMutex.RLock",
            WaitReason::RwLockWrite => "sync.RWMutex.Lock",
            WaitReason::CondvarWait => "sync.Cond.Wait",
            WaitReason::WaitGroupWait => "sync.WaitGroup.Wait",
            WaitReason::BarrierWait => "sync.Barrier.Wait",
            WaitReason::OnceWait => "sync.Once.Do",
            WaitReason::IoWait => "IO wait",
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
/// Ids a thread takes from `NEXT_ID` at a time (Go's per-P `goidcache`).
const ID_BATCH: u64 = 16;

thread_local! {
    /// The next id this thread hands out, and the end of its batch.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A new goroutine id, unique in the process.
fn next_id() -> GoroutineId {
    let id = IDS
        .try_with(|ids| {
            let (mut next, mut end) = ids.get();
            if next == end {
                next = NEXT_ID.fetch_add(ID_BATCH, Ordering::Relaxed);
                end = next + ID_BATCH;
            }
            ids.set((next + 1, end));
            next
        })
        .unwrap_or_else(|_| NEXT_ID.fetch_add(1, Ordering::Relaxed));
    GoroutineId(NonZeroU64::new(id).expect("goroutine ids start at 1"))
}

pub(crate) struct G {
    refs: AtomicUsize,
    /// Written only while the record is free (see the module invariants).
    id: Cell<GoroutineId>,
    /// Written only while the record is free.
    name: UnsafeCell<Option<Box<str>>>,
    /// The stack the goroutine gets when it first runs; written only while the record is free.
    stack_size: Cell<StackSize>,
    /// Whether the runtime spawned it for itself (a collector cycle): such a goroutine is not
    /// counted in `num_goroutines` and not listed by dumps, deadlock reports or the collector,
    /// as Go hides its system goroutines. Written only while the record is free.
    system: Cell<bool>,
    status: StatusWord,
    pub(crate) park: AtomicU8,
    wait_reason: AtomicU8,
    /// The M this goroutine must run on (`lock_os_thread`, or the no-migration mode), or null.
    locked_to: AtomicPtr<M>,
    /// Nesting depth of `lock_os_thread`; touched only by the goroutine itself.
    pub(crate) lock_count: Cell<u32>,
    /// The goroutine's body until it starts, then its result and whoever waits for it.
    pub(crate) join: JoinState,
    coroutine: UnsafeCell<Option<GoroutineCoroutine>>,
    yielder: Cell<*const Yielder<(), Switch>>,
    /// Goroutine-local values; touched only by the goroutine itself.
    pub(crate) locals: Table,
    /// While parked, the run-queue reference its M held, handed to whoever makes it runnable
    /// again (so a wake-up needs no reference of its own). Written by the M before it commits
    /// the park, taken by the waker that wins `PARKED -> EMPTY` or by the M if the commit
    /// fails; the park word orders the two. For a `ParkReleasing` park, written by the M before
    /// the release and taken by the one party the release lets reach the goroutine; whatever
    /// the release synchronises with (a lock) orders the two.
    parked: UnsafeCell<Option<GRef>>,
    /// Which stack or segment the goroutine runs on, and its segments (see `crate::stack`):
    /// touched by the goroutine itself, by its M before it first runs and after it ends, and by
    /// a collector holding its scan claim.
    pub(crate) growth: Growth,
    /// The goroutine's defer chain (see `crate::defer`): touched by the goroutine itself, by
    /// its M after it ends, and by a collector holding its scan claim.
    pub(crate) defers: Chain,
    /// Where its frames are while it is stopped (see `crate::collector`): written by the
    /// goroutine as it suspends, read by a collector holding its scan claim.
    pub(crate) stopped: Stopped,
}

// SAFETY: `coroutine` and `yielder` are touched only by the M running the goroutine or by the
// goroutine itself (module invariant); the status protocol makes that one thread at a time, with
// acquire/release ordering between consecutive runners. `id`, `name`, `stack_size` and
// `system` are written only while no reference exists, and published by the count's
// release/acquire pair.
// `join` guards itself; everything else is atomic.
unsafe impl Send for G {}
// SAFETY: as above.
unsafe impl Sync for G {}

impl G {
    fn new() -> G {
        G {
            refs: AtomicUsize::new(0),
            id: Cell::new(GoroutineId(NonZeroU64::MIN)),
            name: UnsafeCell::new(None),
            stack_size: Cell::new(StackSize::DEFAULT),
            system: Cell::new(false),
            status: StatusWord::new(status::IDLE),
            park: AtomicU8::new(super::park::EMPTY),
            wait_reason: AtomicU8::new(WaitReason::None as u8),
            locked_to: AtomicPtr::new(std::ptr::null_mut()),
            lock_count: Cell::new(0),
            join: JoinState::new(),
            coroutine: UnsafeCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            locals: Table::new(),
            parked: UnsafeCell::new(None),
            growth: Growth::new(),
            defers: Chain::new(),
            stopped: Stopped::new(),
        }
    }

    /// The goroutine's id.
    pub(crate) fn id(&self) -> GoroutineId {
        self.id.get()
    }

    /// The goroutine's name; the caller holds a reference, or is the goroutine.
    pub(crate) fn name(&self) -> Option<&str> {
        // SAFETY: the name changes only while no reference to the record exists.
        unsafe { (*self.name.get()).as_deref() }
    }

    /// The stack reservation the goroutine runs on.
    pub(crate) fn stack_size(&self) -> StackSize {
        self.stack_size.get()
    }

    /// Whether the goroutine has its coroutine (it has started).
    ///
    /// # Safety
    ///
    /// As for [`G::resume`].
    pub(crate) unsafe fn started(&self) -> bool {
        // SAFETY: the caller runs the goroutine, so it has the only access (module invariant).
        unsafe { (*self.coroutine.get()).is_some() }
    }

    /// Gives the goroutine its coroutine, when it first runs.
    ///
    /// # Safety
    ///
    /// As for [`G::resume`].
    pub(crate) unsafe fn set_coroutine(&self, coroutine: GoroutineCoroutine) {
        // SAFETY: the caller runs the goroutine, so it has the only access (module invariant).
        unsafe { *self.coroutine.get() = Some(coroutine) };
    }

    /// Moves the status from `RUNNING` to `to` (see [`StatusWord::leave_running`]).
    pub(crate) fn leave_running(&self, to: u32) {
        self.status.leave_running(to);
    }

    /// Moves the status of a queued goroutine to `RUNNING`, waiting while a scan holds it.
    pub(crate) fn start_running(&self) {
        if let Err(actual) = self.status.start_running() {
            panic!(
                "goroutine {}: status {actual:#x}, expected a queued goroutine",
                self.id()
            );
        }
    }

    /// The status word, for the collector's claim.
    pub(crate) fn status(&self) -> &StatusWord {
        &self.status
    }

    /// Parks the goroutine's run-queue reference `g` in its own record and commits the park:
    /// `None` if it is parked (the reference stays with it), or `Some(g)` back if a wake-up
    /// raced the switch.
    ///
    /// # Safety
    ///
    /// The caller is the M the goroutine just suspended to, to park; `g` refers to it.
    pub(crate) unsafe fn commit_park(g: GRef) -> Option<GRef> {
        let record: *const G = g.as_ptr();
        // SAFETY: before the commit nobody else touches the slot (see `parked`).
        unsafe { G::hold_parked(g) };
        // SAFETY: the reference just stored keeps the record alive through the commit.
        let record = unsafe { &*record };
        if super::park::commit_park(&record.park) {
            return None;
        }
        // SAFETY: the commit failed, so no waker won the goroutine: the slot is still ours.
        Some(unsafe { record.take_parked() })
    }

    /// Parks the goroutine's run-queue reference `g` in its own record, for a goroutine that
    /// parked with [`Switch::ParkReleasing`]: no wake-up can race this (nobody can reach the
    /// goroutine before the M runs its [`Release`]), so nothing is committed.
    ///
    /// # Safety
    ///
    /// The caller is the M the goroutine just suspended to with `ParkReleasing`, before it runs
    /// the release; `g` refers to it.
    pub(crate) unsafe fn hold_parked(g: GRef) {
        let record: *const G = g.as_ptr();
        // SAFETY: nobody else touches the slot until the release (see `parked`).
        unsafe { *(*record).parked.get() = Some(g) };
    }

    /// The run-queue reference of a parked goroutine the caller just woke.
    ///
    /// # Safety
    ///
    /// The caller won `PARKED -> EMPTY` on this goroutine's park word, or is the one party that
    /// can reach a goroutine that parked with `ParkReleasing`.
    pub(crate) unsafe fn take_parked(&self) -> GRef {
        // SAFETY: the winner of the wake-up is the only one to take it (see `parked`).
        unsafe { (*self.parked.get()).take() }.expect("a parked goroutine holds its reference")
    }

    /// Whether the goroutine has been spawned and has not finished.
    pub(crate) fn is_live(&self) -> bool {
        self.status.is_live()
    }

    /// Whether the runtime spawned it for itself (see `system`).
    pub(crate) fn is_system(&self) -> bool {
        self.system.get()
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
        // SAFETY: Ms are never freed (the scheduler leaks a reference to each).
        unsafe { self.locked_to.load(Ordering::Acquire).as_ref() }
    }

    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }

    #[inline]
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
    #[inline(always)]
    pub(crate) unsafe fn suspend(&self, why: Switch) {
        let yielder = self.yielder.get();
        debug_assert!(!yielder.is_null());
        self.stopped.record_suspend();
        // SAFETY: the yielder lives on this never-moving stack; the caller is the goroutine.
        unsafe { (*yielder).suspend(why) }
    }
}

/// A counted reference to a goroutine record (an `Arc` whose last drop recycles the record).
pub(crate) struct GRef(NonNull<G>);

// SAFETY: the record is shared like an `Arc<G>`, and `G` is `Send + Sync`.
unsafe impl Send for GRef {}
// SAFETY: as above.
unsafe impl Sync for GRef {}

impl GRef {
    /// A new goroutine's record, recycled if one is free: one reference for its handle, one for
    /// the run queue, and the goroutine's own (see [`GRef::finish`]). `system`: the runtime
    /// spawns it for itself.
    pub(crate) fn spawn(
        name: Option<Box<str>>,
        stack_size: StackSize,
        system: bool,
    ) -> (GRef, GRef) {
        let record = FREE
            .try_with(|free| free.borrow_mut().pop())
            .ok()
            .flatten()
            .or_else(|| FREE_GLOBAL.lock().pop())
            .unwrap_or_else(|| {
                let record: &'static G = Box::leak(Box::new(G::new()));
                registry::add(record);
                record
            });
        record.id.set(next_id());
        // SAFETY: the record is free: nothing else refers to it (module invariant).
        unsafe { *record.name.get() = name };
        record.stack_size.set(stack_size);
        record.system.set(system);
        record.park.store(super::park::EMPTY, Ordering::Relaxed);
        record
            .wait_reason
            .store(WaitReason::None as u8, Ordering::Relaxed);
        record
            .locked_to
            .store(std::ptr::null_mut(), Ordering::Relaxed);
        record.lock_count.set(0);
        record.stopped.reset();
        record.status.set_unshared(status::RUNNABLE);
        record.refs.store(3, Ordering::Release);
        (GRef(NonNull::from(record)), GRef(NonNull::from(record)))
    }

    /// Drops this reference and the one the goroutine held on its own record while it ran, in
    /// one step.
    ///
    /// # Safety
    ///
    /// The caller is the M that ran the goroutine to its end, and calls this once.
    pub(crate) unsafe fn finish(self) {
        let this = std::mem::ManuallyDrop::new(self);
        if this.refs.fetch_sub(2, Ordering::Release) != 2 {
            return;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        recycle(&this);
    }

    /// A reference to `record` if it is in use (its count is not zero), like `Weak::upgrade`.
    pub(crate) fn upgrade(record: &'static G) -> Option<GRef> {
        let mut refs = record.refs.load(Ordering::Relaxed);
        while refs != 0 {
            match record.refs.compare_exchange_weak(
                refs,
                refs + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(GRef(NonNull::from(record))),
                Err(actual) => refs = actual,
            }
        }
        None
    }

    pub(crate) fn as_ptr(&self) -> *const G {
        self.0.as_ptr()
    }

    /// Another reference to the record behind `g`.
    ///
    /// # Safety
    ///
    /// `g` is the address of a record that a live `GRef` refers to.
    pub(crate) unsafe fn from_ptr(g: *const G) -> GRef {
        // SAFETY: by the caller's contract the record is alive; adding a count keeps it so.
        unsafe { (*g).refs.fetch_add(1, Ordering::Relaxed) };
        GRef(NonNull::new(g.cast_mut()).expect("a goroutine record is not null"))
    }
}

impl Clone for GRef {
    fn clone(&self) -> Self {
        self.refs.fetch_add(1, Ordering::Relaxed);
        GRef(self.0)
    }
}

impl Drop for GRef {
    fn drop(&mut self) {
        if self.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        recycle(self);
    }
}

impl std::ops::Deref for GRef {
    type Target = G;

    fn deref(&self) -> &G {
        // SAFETY: records are never freed.
        unsafe { self.0.as_ref() }
    }
}

/// Records a thread keeps for reuse before spilling half to the global list.
const FREE_PER_THREAD: usize = 256;

thread_local! {
    static FREE: RefCell<FreeList> = const { RefCell::new(FreeList(Vec::new())) };
}

static FREE_GLOBAL: Mutex<Vec<&'static G>> = Mutex::new(Vec::new());

struct FreeList(Vec<&'static G>);

impl FreeList {
    fn pop(&mut self) -> Option<&'static G> {
        if self.0.is_empty() {
            let mut global = FREE_GLOBAL.lock();
            let keep = global.len().saturating_sub(FREE_PER_THREAD / 2);
            self.0.extend(global.drain(keep..));
        }
        self.0.pop()
    }
}

impl Drop for FreeList {
    fn drop(&mut self) {
        FREE_GLOBAL.lock().append(&mut self.0);
    }
}

/// Takes back a record nothing refers to: what it still holds (name, an unclaimed result) is
/// dropped now, and the record waits for reuse.
fn recycle(record: &GRef) {
    // SAFETY: records are leaked by `GRef::spawn` and never freed.
    let record: &'static G = unsafe { &*record.0.as_ptr() };
    record.status.set_unshared(status::IDLE);
    // SAFETY: nothing refers to the record (its count is zero).
    unsafe {
        *record.name.get() = None;
        record.join.reset();
    }
    let mut record = Some(record);
    let _ = FREE.try_with(|free| {
        let free = &mut free.borrow_mut().0;
        free.extend(record.take());
        if free.len() > FREE_PER_THREAD {
            let mut global = FREE_GLOBAL.lock();
            global.extend(free.drain(FREE_PER_THREAD / 2..));
        }
    });
    if let Some(record) = record {
        FREE_GLOBAL.lock().push(record);
    }
}
