//! The scheduler: processors (P) with local run queues, machines (M: OS threads) that run
//! goroutines, the global queue, idle lists, work stealing and wake-ups (Go's `proc.go` design).
//!
//! Invariants:
//! - a P's local queues (`queue`, `runnext`, `yielded`) are touched only by the M that holds the
//!   P, and only outside user code: while a goroutine runs, the P is lent to user code, and the
//!   M (or the goroutine, on a runtime call) must take it back first, because sysmon may have
//!   retaken it meanwhile (the [`ownership`] handshake);
//! - an M holds at most one P; a P is held by at most one M (or sysmon, briefly) or is on the
//!   idle list: every new holder gets a new epoch, so an M whose P was retaken cannot take it
//!   back from the next holder;
//! - work made runnable is never stranded: whoever queues it calls [`wakep`] (unless it queues
//!   it for its own next round, as a yielding system goroutine does), and an M that gives up its
//!   P re-checks every queue after announcing it (sequentially consistent counters on both
//!   sides, as in Go's `wakep`/`findrunnable`);
//! - at most one M spins looking for work for each busy P, and never more than half of them.

use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use parking_lot::{Condvar, Mutex};

use super::config::Config;
use super::g::{G, GRef, Switch, WaitReason};
use super::ownership::{self, Lease, Ownership, UserFlag};
use super::release::Release;
use super::spinner_handoff::SpinnerHandoff;
use super::status;
use super::{join, park};
use crate::stack::{Stack, StackCache};

/// How often the global queue is checked first, so that nothing in it starves (Go's 61).
const GLOBAL_QUEUE_INTERVAL: u64 = 61;
/// Goroutines an M takes from `runnext` in a row before it looks at its queue first.
const RUNNEXT_STREAK: u32 = 61;
/// How long a spinning M keeps looking for work to steal before it gives up its P and sleeps.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(30);

struct Local {
    queue: Worker<GRef>,
    runnext: Option<GRef>,
    /// Goroutines taken from `runnext` in a row; past `RUNNEXT_STREAK` the queue goes first, so
    /// two goroutines handing off to each other cannot starve it.
    runnext_streak: u32,
    /// Goroutines that yielded while no other M could have stolen them (no P idle, no M
    /// spinning): a plain FIFO that only this P runs, so a yield costs no locked instruction.
    /// It runs after `queue`, except every `GLOBAL_QUEUE_INTERVAL` ticks, and moves to `queue`
    /// as soon as a thief may want it.
    yielded: VecDeque<GRef>,
    /// Stacks for the goroutines this P spawns, from those it saw finish.
    stacks: StackCache,
    /// The collector cycle whose request to give back cached stack pages this P last answered.
    stacks_cycle: u64,
}

/// Collector cycles that asked processors to give back their cached stacks' pages: idle ones
/// and the cycle's own do it at once, busy ones when they next go idle.
static STACK_CACHE_CYCLE: AtomicU64 = AtomicU64::new(0);
/// Bytes those processors gave back, for the collector's statistics.
static STACK_CACHE_GIVEN_BACK: AtomicUsize = AtomicUsize::new(0);

impl Local {
    /// Moves the goroutines that yielded where thieves can steal them, oldest first.
    fn share_yielded(&mut self) {
        for g in self.yielded.drain(..) {
            self.queue.push(g);
        }
    }
}

/// Aligned to 128 bytes (two cache lines, as adjacent-line prefetchers pair them), with the
/// fields its holder writes on every switch on lines of their own: thieves and sysmon read `id`
/// and `stealer` all the time, and sharing a line with the hot fields (or with another P) would
/// make every switch a cross-core miss.
#[repr(align(128))]
pub(crate) struct P {
    id: usize,
    stealer: Stealer<GRef>,
    hot: Hot,
    local: UnsafeCell<Local>,
}

#[repr(align(128))]
struct Hot {
    /// Who holds the P (see [`ownership`]).
    ownership: Ownership,
    /// The M that last started holding the P: sysmon reads its user-code flag. Only a hint: the
    /// flag names the P and epoch it is about.
    holder: AtomicPtr<M>,
    /// Goroutines started on this P; sysmon compares it across its ticks.
    tick: AtomicU64,
    /// Goroutines spawned minus goroutines finished on this P (either may be negative; the sum
    /// over all Ps and `Scheduler::goroutines_off_p` is the number of live goroutines). Kept per
    /// P so that spawning on one M and finishing on another share no cache line, and written
    /// only by the holder outside user code, so without a locked instruction.
    goroutines: std::sync::atomic::AtomicI64,
}

// SAFETY: `local` is touched only by the M holding the P outside user code (module invariant);
// handing a P between Ms goes through the idle list's mutex or an M's handoff mutex, which order
// the previous holder's accesses before the next one's.
unsafe impl Sync for P {}

impl P {
    /// The local queues.
    ///
    /// # Safety
    ///
    /// The caller's M holds this P outside user code, and the reference does not outlive that.
    #[allow(clippy::mut_from_ref)]
    unsafe fn local(&self) -> &mut Local {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.local.get() }
    }

    /// Makes the caller the P's new holder (outside user code) and answers its epoch. The caller
    /// owns the P exclusively (it took it off the idle list).
    fn acquire(&self) -> u64 {
        self.hot.ownership.acquire()
    }

    /// Puts the P on the idle side of its ownership word (keeping its epoch).
    fn set_idle(&self) {
        self.hot.ownership.release();
    }

    /// Whether M `m`, the holder of `lease`, takes the P back from user code; `false` if sysmon
    /// retook it meanwhile.
    fn take_back(&self, m: &M, lease: Lease) -> bool {
        self.hot.ownership.take_back(&m.user, lease)
    }

    /// The M running user code with this P, and the P's epoch, if any.
    fn in_user_code(&self) -> Option<(&'static M, u64)> {
        let (epoch, state) = self.hot.ownership.load();
        if state != ownership::State::Held {
            return None;
        }
        // SAFETY: Ms are never freed (the scheduler leaks a reference to each).
        let holder = unsafe { self.hot.holder.load(Ordering::Acquire).as_ref() }?;
        holder.user.lent(self.id, epoch).then_some((holder, epoch))
    }

    fn has_work(&self) -> bool {
        !self.stealer.is_empty()
    }

    /// Counts goroutines spawned (`+1`) or finished (`-1`) here. Only the holder, outside
    /// user code, writes the counter, so a plain read and write suffice.
    fn count_goroutines(&self, delta: i64) {
        let count = self.hot.goroutines.load(Ordering::Relaxed);
        self.hot.goroutines.store(count + delta, Ordering::Relaxed);
    }
}

/// What an idle M is handed to start running again.
struct Handoff {
    p: usize,
    /// The new holder's epoch (see `Hot::status`).
    epoch: u64,
    spinning: bool,
}

pub(crate) struct M {
    /// What this M lent to user code (see [`ownership`]); written only by this M.
    user: UserFlag,
    handoff: Mutex<Option<Handoff>>,
    wake: Condvar,
    /// Goroutines locked to this M (`lock_os_thread`, or no-migration mode) that are runnable.
    /// Only this M runs them, so nothing steals from here.
    locked: Injector<GRef>,
}

struct Idle {
    ps: Vec<usize>,
    ms: Vec<Arc<M>>,
    /// Idle Ms with locked goroutines to run, waiting for a P; they get the next one released.
    want_p: Vec<Arc<M>>,
}

pub(crate) struct Scheduler {
    pub(crate) config: Config,
    ps: Box<[P]>,
    global: Injector<GRef>,
    /// The runtime's own goroutines (a collector cycle), which every M takes ahead of all else,
    /// like Go's GC workers: with two or more Ps such a goroutine keeps its P until it ends or
    /// sleeps (see `execute`; a cycle sleeps when it is over its share of the processors'
    /// time), and with one it shares it fairly.
    system: Injector<GRef>,
    idle: Mutex<Idle>,
    npidle: AtomicUsize,
    nmspinning: AtomicUsize,
    /// A `wakep`'s spinning count, handed to the M waiting in the netpoller.
    spinner_in_poller: SpinnerHandoff,
    /// Ms on `Idle::want_p`, readable without the lock.
    nwant_p: AtomicUsize,
    next_m: AtomicUsize,
    /// Goroutines spawned or finished where no P was held (see `P::goroutines`).
    goroutines_off_p: std::sync::atomic::AtomicI64,
}

/// Plain threads blocked in a gort wait (a join, a park): they can wake no goroutine until a
/// goroutine wakes them.
static EXTERNAL_WAITERS: AtomicUsize = AtomicUsize::new(0);
/// Wake-ups sent to plain threads (a woken thread counts as a waiter until it runs).
static EXTERNAL_WAKES: AtomicU64 = AtomicU64::new(0);
/// Runs of the runtime's own goroutines, which `Scheduler::activity` leaves out.
static SYSTEM_RUNS: AtomicU64 = AtomicU64::new(0);

static SCHEDULER: OnceLock<Scheduler> = OnceLock::new();

/// The runtime's own threads besides the Ms (sysmon, the collector, ...), which never wake a
/// user's goroutine on their own (the collector queues only its cycle, one of the runtime's own
/// goroutines, which the deadlock check does not count).
static SERVICE_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Counts a thread the runtime started for itself (see [`Scheduler::all_asleep`]).
pub(crate) fn count_service_thread() {
    SERVICE_THREADS.fetch_add(1, Ordering::SeqCst);
}

/// The running scheduler, started with `config` if it is not running yet; answers the one that
/// runs otherwise.
pub(crate) fn start(config: Config) -> &'static Scheduler {
    let mut started = false;
    let sched = SCHEDULER.get_or_init(|| {
        started = true;
        ownership::init();
        Scheduler::new(config)
    });
    if started {
        super::overflow::install();
        super::sysmon::start(sched);
        crate::collector::start(sched.config.gc_interval, sched.config.verify);
    }
    sched
}

/// The scheduler if it runs.
pub(crate) fn get() -> Option<&'static Scheduler> {
    SCHEDULER.get()
}

impl Scheduler {
    fn new(config: Config) -> Scheduler {
        let ps: Box<[P]> = (0..config.procs)
            .map(|id| {
                let queue = Worker::new_fifo();
                P {
                    id,
                    hot: Hot {
                        ownership: Ownership::new(),
                        holder: AtomicPtr::new(std::ptr::null_mut()),
                        tick: AtomicU64::new(0),
                        goroutines: std::sync::atomic::AtomicI64::new(0),
                    },
                    stealer: queue.stealer(),
                    local: UnsafeCell::new(Local {
                        queue,
                        runnext: None,
                        runnext_streak: 0,
                        yielded: VecDeque::new(),
                        stacks: StackCache::new(),
                        stacks_cycle: 0,
                    }),
                }
            })
            .collect();
        Scheduler {
            idle: Mutex::new(Idle {
                ps: (0..config.procs).rev().collect(),
                ms: Vec::new(),
                want_p: Vec::new(),
            }),
            npidle: AtomicUsize::new(config.procs),
            nmspinning: AtomicUsize::new(0),
            spinner_in_poller: SpinnerHandoff::new(),
            nwant_p: AtomicUsize::new(0),
            next_m: AtomicUsize::new(0),
            goroutines_off_p: std::sync::atomic::AtomicI64::new(0),
            global: Injector::new(),
            system: Injector::new(),
            config,
            ps,
        }
    }

    fn p(&self, id: usize) -> &P {
        &self.ps[id]
    }

    /// Queues a runnable goroutine from wherever the caller runs, and makes sure an M will run
    /// it. `next` puts it in the current P's `runnext` slot (a goroutine just spawned or readied
    /// runs next, so ping-pong stays on one P).
    ///
    /// Another M is woken only when stealable work was added (the global queue, or a local queue
    /// entry displaced from `runnext`): a goroutine in `runnext` runs on this P as soon as the
    /// caller blocks or yields, and waking an M that cannot steal it only makes it spin and
    /// sleep again. If the caller runs on instead, sysmon hands the P, `runnext` included, to
    /// another M after 10 ms.
    ///
    /// One of the runtime's own goroutines (a cycle back from a sleep) goes to the system queue
    /// instead, where every M looks first, rather than behind the goroutines it stepped aside
    /// for.
    pub(crate) fn ready(&'static self, g: GRef, next: bool) {
        if let Some(target) = g.locked_m() {
            return self.ready_locked(target, g);
        }
        if g.is_system() {
            return self.ready_system(g);
        }
        self.queue(g, next, false);
    }

    /// Counts a new goroutine live and queues it in `runnext` (see [`Scheduler::ready`]).
    pub(crate) fn ready_new(&'static self, g: GRef) {
        self.queue(g, true, true);
    }

    /// Queues one of the runtime's own goroutines (not counted live) where every M looks
    /// first, and makes sure an M will run it.
    pub(crate) fn ready_system(&'static self, g: GRef) {
        self.system.push(g);
        self.wakep();
    }

    fn queue(&'static self, g: GRef, next: bool, new: bool) {
        let mut g = Some(g);
        let mut stealable = true;
        with_current_p(|p, local| {
            if new {
                p.count_goroutines(1);
            }
            let g = g.take().expect("queued once");
            if next {
                match local.runnext.replace(g) {
                    Some(old) => local.queue.push(old),
                    None => stealable = false,
                }
            } else {
                local.queue.push(g);
            }
        });
        if let Some(g) = g {
            if new {
                self.goroutines_off_p.fetch_add(1, Ordering::SeqCst);
            }
            self.global.push(g);
        }
        if stealable {
            self.wakep();
        }
    }

    /// Whether an M may look for work to steal: a P is idle (its M may be woken) or an M spins.
    fn thief_may_look(&self) -> bool {
        self.npidle.load(Ordering::Relaxed) != 0 || self.nmspinning.load(Ordering::Relaxed) != 0
    }

    /// Starts a spinning M if there is an idle P and nobody spins (Go's `wakep`).
    fn wakep(&'static self) {
        if self.nmspinning.load(Ordering::SeqCst) != 0 || self.npidle.load(Ordering::SeqCst) == 0 {
            return;
        }
        if self
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        if !self.startm(true) {
            self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Gives an idle P to an idle or new M; `false` if no P is idle.
    fn startm(&'static self, spinning: bool) -> bool {
        let mut idle = self.idle.lock();
        if idle.ps.is_empty() {
            return false;
        }
        // No idle M to run it: the one waiting in the netpoller takes the P itself once woken
        // (rather than a new thread being started), as the spinning M if this one is to spin.
        if idle.ms.is_empty() {
            if spinning {
                if self.spinner_in_poller.offer(crate::net::interrupt_poller) {
                    return true;
                }
            } else if crate::net::interrupt_poller() {
                return false;
            }
        }
        let Some(p) = idle.ps.pop() else {
            return false;
        };
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        let epoch = self.p(p).acquire();
        if let Some(m) = self.take_waiting_m(&mut idle) {
            drop(idle);
            if spinning {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            give(
                &m,
                Handoff {
                    p,
                    epoch,
                    spinning: false,
                },
            );
            return true;
        }
        let handoff = Handoff { p, epoch, spinning };
        match idle.ms.pop() {
            Some(m) => {
                drop(idle);
                give(&m, handoff);
            }
            None => {
                drop(idle);
                self.spawn_m(handoff);
            }
        }
        true
    }

    /// Queues a goroutine locked to `target` for that M, and gets the M running if it sleeps.
    fn ready_locked(&'static self, target: &'static M, g: GRef) {
        target.locked.push(g);
        let mut idle = self.idle.lock();
        // An M that is awake looks at its locked queue whenever it schedules (and before it
        // sleeps, under this lock).
        let Some(at) = idle.ms.iter().position(|m| std::ptr::eq(&**m, target)) else {
            // It may be the M waiting in the netpoller: it looks once woken.
            drop(idle);
            crate::net::interrupt_poller();
            return;
        };
        if idle.want_p.iter().any(|m| std::ptr::eq(&**m, target)) {
            return;
        }
        match idle.ps.pop() {
            Some(p) => {
                let m = idle.ms.swap_remove(at);
                self.npidle.fetch_sub(1, Ordering::SeqCst);
                let epoch = self.p(p).acquire();
                drop(idle);
                give(
                    &m,
                    Handoff {
                        p,
                        epoch,
                        spinning: false,
                    },
                );
            }
            None => {
                let m = Arc::clone(&idle.ms[at]);
                idle.want_p.push(m);
                self.nwant_p.fetch_add(1, Ordering::Release);
            }
        }
    }

    fn spawn_m(&'static self, handoff: Handoff) {
        let id = self.next_m.fetch_add(1, Ordering::Relaxed);
        let m = Arc::new(M {
            user: UserFlag::new(),
            handoff: Mutex::new(Some(handoff)),
            wake: Condvar::new(),
            locked: Injector::new(),
        });
        // Ms never exit, and goroutines locked to one refer to it by plain reference.
        std::mem::forget(Arc::clone(&m));
        thread::Builder::new()
            .name(format!("gort-m{id}"))
            .spawn(move || self.run_m(m))
            .expect("cannot start a thread for the gort scheduler");
    }

    /// A collector cycle asks every P to give back the pages of its cached stacks: the idle
    /// ones and the caller's own (the cycle runs on a P) now, the busy ones when they next go
    /// idle. Answers the bytes given back so far.
    pub(crate) fn scavenge_stack_caches(&self) -> usize {
        let cycle = STACK_CACHE_CYCLE.fetch_add(1, Ordering::Relaxed) + 1;
        let idle = self.idle.lock();
        for &p in &idle.ps {
            // SAFETY: a P on the idle list is held by no M, and taking it off needs this lock.
            answer_stack_cache_cycle(unsafe { self.p(p).local() }, cycle);
        }
        drop(idle);
        with_current_p(|_, local| answer_stack_cache_cycle(local, cycle));
        STACK_CACHE_GIVEN_BACK.swap(0, Ordering::Relaxed)
    }

    /// Puts the P on the idle list.
    fn release_p(&self, p: usize) {
        // SAFETY: the caller holds the P outside user code until it is on the idle list.
        let local = unsafe { self.p(p).local() };
        answer_stack_cache_cycle(local, STACK_CACHE_CYCLE.load(Ordering::Relaxed));
        let mut idle = self.idle.lock();
        if let Some(m) = self.take_waiting_m(&mut idle) {
            drop(idle);
            self.hand_to(&m, p);
            return;
        }
        self.p(p).set_idle();
        idle.ps.push(p);
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }

    /// Gives up a P held outside user code: to a new M if it has work, else to the idle list
    /// (Go's `handoffp`).
    fn handoff_p(&'static self, p: usize) {
        // SAFETY: the caller holds `p` outside user code.
        let local = unsafe { self.p(p).local() };
        if let Some(next) = local.runnext.take() {
            local.queue.push(next);
        }
        local.share_yielded();
        let has_work = self.p(p).has_work() || self.shared_work();
        self.release_p(p);
        if has_work {
            self.startm(false);
        }
    }

    /// Retakes a P whose M has run one goroutine's user code since `tick`: called by sysmon.
    pub(crate) fn retake(&'static self, p: usize, tick: u64) -> bool {
        let this = self.p(p);
        let Some((holder, epoch)) = this.in_user_code() else {
            return false;
        };
        if this.hot.tick.load(Ordering::Relaxed) != tick
            || this.hot.ownership.retake(&holder.user, p, epoch).is_none()
        {
            return false;
        }
        self.handoff_p(p);
        true
    }

    /// The Ps running user code, with their ticks (for sysmon).
    pub(crate) fn busy_ps(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.ps
            .iter()
            .filter(|p| p.in_user_code().is_some())
            .map(|p| (p.id, p.hot.tick.load(Ordering::Relaxed)))
    }

    /// A number that changes whenever a user's goroutine runs or a plain thread is woken: the
    /// deadlock check requires it unchanged between its two looks. The runtime's own goroutines
    /// do not count (collector cycles would otherwise keep a deadlock from being reported).
    pub(crate) fn activity(&self) -> u64 {
        let ticks: u64 = self
            .ps
            .iter()
            .map(|p| p.hot.tick.load(Ordering::SeqCst))
            .sum();
        ticks
            .wrapping_sub(SYSTEM_RUNS.load(Ordering::SeqCst))
            .wrapping_add(EXTERNAL_WAKES.load(Ordering::SeqCst))
    }

    /// The number of live goroutines.
    pub(crate) fn goroutines(&self) -> usize {
        let on_ps: i64 = self
            .ps
            .iter()
            .map(|p| p.hot.goroutines.load(Ordering::SeqCst))
            .sum();
        usize::try_from(on_ps + self.goroutines_off_p.load(Ordering::SeqCst)).unwrap_or(0)
    }

    /// Counts a goroutine finished by an M that may have lost its P.
    fn count_finished(&self, p: Option<&P>) {
        match p {
            Some(p) => p.count_goroutines(-1),
            None => {
                self.goroutines_off_p.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Whether no goroutine can ever run again: goroutines exist, every M sleeps without work,
    /// no timer is pending and no goroutine waits for the network, and no thread outside the
    /// runtime exists that could wake one (Go's `checkdead`; a thread
    /// blocked in a gort wait counts as asleep).
    pub(crate) fn all_asleep(&self) -> bool {
        if self.goroutines() == 0
            || crate::time::timers_pending() != 0
            || crate::net::network_waiters()
        {
            return false;
        }
        let ms = self.next_m.load(Ordering::SeqCst);
        {
            let idle = self.idle.lock();
            if idle.ms.len() != ms
                || idle.ps.len() != self.ps.len()
                || self.any_work()
                || idle.ms.iter().any(|m| !m.locked.is_empty())
            {
                return false;
            }
        }
        // Every M, the runtime's own threads, and the threads waiting in gort: anyone else may
        // still act.
        let ours =
            ms + SERVICE_THREADS.load(Ordering::SeqCst) + EXTERNAL_WAITERS.load(Ordering::SeqCst);
        std::fs::read_dir("/proc/self/task").is_ok_and(|threads| threads.count() <= ours)
    }

    /// Hands P `p` (held outside user code, its queues with it) to an M that waits with locked
    /// goroutines; `false` if none waits.
    fn give_to_waiting_m(&self, p: usize) -> bool {
        let mut idle = self.idle.lock();
        let Some(m) = self.take_waiting_m(&mut idle) else {
            return false;
        };
        drop(idle);
        self.hand_to(&m, p);
        true
    }

    /// Makes idle M `m` the new holder of P `p` and wakes it.
    fn hand_to(&self, m: &M, p: usize) {
        let epoch = self.p(p).acquire();
        give(
            m,
            Handoff {
                p,
                epoch,
                spinning: false,
            },
        );
    }

    /// An idle M waiting for a P to run its locked goroutines, taken off the idle lists.
    fn take_waiting_m(&self, idle: &mut Idle) -> Option<Arc<M>> {
        let m = idle.want_p.pop()?;
        self.nwant_p.fetch_sub(1, Ordering::Release);
        idle.ms.retain(|idle_m| !Arc::ptr_eq(idle_m, &m));
        Some(m)
    }

    /// Takes an idle P, if any: its index and the caller's epoch as its holder.
    fn take_idle_p(&self) -> Option<(usize, u64)> {
        let p = self.idle.lock().ps.pop()?;
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        Some((p, self.p(p).acquire()))
    }

    /// Parks the M until it is handed a P.
    fn stopm(&self, m: &Arc<M>) -> Handoff {
        let mut slot = m.handoff.lock();
        if slot.is_none() {
            let mut idle = self.idle.lock();
            if !m.locked.is_empty() {
                // Locked goroutines wait for this M: run them with an idle P, or wait for one.
                if let Some(p) = idle.ps.pop() {
                    self.npidle.fetch_sub(1, Ordering::SeqCst);
                    let epoch = self.p(p).acquire();
                    return Handoff {
                        p,
                        epoch,
                        spinning: false,
                    };
                }
                idle.want_p.push(Arc::clone(m));
                self.nwant_p.fetch_add(1, Ordering::Release);
            }
            idle.ms.push(Arc::clone(m));
            drop(idle);
            while slot.is_none() {
                m.wake.wait(&mut slot);
            }
        }
        slot.take().expect("woken with a handoff")
    }

    /// Whether goroutines wait in a queue other Ms can see: the global or system queue, or a
    /// P's stealable queue (not a P's `runnext` or yielded goroutines, which its holder runs).
    pub(crate) fn any_work(&self) -> bool {
        self.shared_work() || self.ps.iter().any(P::has_work)
    }

    /// The number of processors.
    pub(crate) fn procs(&self) -> usize {
        self.ps.len()
    }

    /// Whether the global or the system queue holds goroutines.
    fn shared_work(&self) -> bool {
        !self.system.is_empty() || !self.global.is_empty()
    }

    /// Takes a goroutine from the system queue, or a batch from the global queue into
    /// `local` and one of it.
    fn take_shared(&self, local: &Local) -> Option<GRef> {
        steal(|| self.system.steal())
            .or_else(|| steal(|| self.global.steal_batch_and_pop(&local.queue)))
    }

    fn run_m(&'static self, m: Arc<M>) {
        super::overflow::ensure_alternate_stack();
        let local = MLocal {
            m: Arc::clone(&m),
            p: Cell::new(None),
            lease: Cell::new(Lease::default()),
            ran_with_p: Cell::new(false),
            spinning: Cell::new(false),
            current: Cell::new(std::ptr::null()),
        };
        CURRENT_M.with(|current| current.set(&local));
        loop {
            let p = match local.p.get() {
                Some(p) => p,
                None => {
                    // Without a P: if goroutines wait for the network and no M waits in the
                    // poller, this one does, taking a P for what it wakes (an M that lost its P
                    // to sysmon comes here too, so the network is never left unpolled).
                    // A new M starts with its handoff already in the slot: it takes that P
                    // (in `stopm`) rather than waiting in the poller with it. No handoff can
                    // arrive later while it waits there: handoffs go to idle Ms only.
                    if m.locked.is_empty() && m.handoff.lock().is_none() {
                        if crate::net::block_in_poller(|| {
                            self.leave_poller(&local, true);
                        }) {
                            continue;
                        }
                        // It did not wait after all, but a `wakep` may have counted on it.
                        if self.leave_poller(&local, false) {
                            continue;
                        }
                    }
                    let handoff = self.stopm(&m);
                    local.hold(self, handoff.p, handoff.epoch);
                    local.ran_with_p.set(false);
                    local.spinning.set(handoff.spinning);
                    self.p(handoff.p)
                }
            };
            if let Some(g) = self.find_runnable(&local, p) {
                self.execute(&local, g);
            }
        }
    }

    /// An M without a P leaving the netpoller (`polled`: its poll returned) or deciding not to
    /// wait in it: takes the spinning count a `wakep` handed to the M there, if any (see
    /// `spinner_handoff`), and an idle P to run what the poll woke or to spin with. `true` if it
    /// took a P.
    fn leave_poller(&'static self, local: &MLocal, polled: bool) -> bool {
        let spinner = self.spinner_in_poller.take();
        if !(polled || spinner) {
            return false;
        }
        match self.take_idle_p() {
            Some((p, epoch)) => {
                local.hold(self, p, epoch);
                local.ran_with_p.set(false);
                local.spinning.set(spinner);
                true
            }
            None => {
                if spinner {
                    self.nmspinning.fetch_sub(1, Ordering::SeqCst);
                }
                false
            }
        }
    }

    /// A goroutine to run on P `p`, or `None` after giving up the P (nothing to do, or an M with
    /// locked goroutines waits for a P).
    fn find_runnable(&'static self, m: &MLocal, this: &'static P) -> Option<GRef> {
        let p = this.id;
        // Only after running something with the P: two Ms that both have locked work would
        // otherwise hand it back and forth without either running anything.
        if m.ran_with_p.get()
            && self.nwant_p.load(Ordering::Acquire) > 0
            && self.give_to_waiting_m(p)
        {
            m.p.set(None);
            if m.spinning.replace(false) {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            return None;
        }
        // SAFETY: this M holds `p` outside user code (it just got it or kept it).
        let local = unsafe { this.local() };
        let tick = this.hot.tick.load(Ordering::Relaxed);
        // Goroutines locked to this M, every other round ahead of the rest.
        if tick.is_multiple_of(2)
            && !m.m.locked.is_empty()
            && let Some(g) = steal(|| m.m.locked.steal())
        {
            return Some(self.found_work(m, g));
        }
        if !self.system.is_empty()
            && let Some(g) = steal(|| self.system.steal())
        {
            // It may keep this P for long: what waits on the P goes to the global queue, which
            // every M looks at (at least every 61 rounds), and an idle P's M is woken for it.
            let waiting = local
                .runnext
                .take()
                .into_iter()
                .chain(local.yielded.drain(..));
            let mut moved = false;
            for waiting in waiting.chain(std::iter::from_fn(|| local.queue.pop())) {
                self.global.push(waiting);
                moved = true;
            }
            if moved {
                self.wakep();
            }
            return Some(self.found_work(m, g));
        }
        if tick.is_multiple_of(GLOBAL_QUEUE_INTERVAL) {
            if let Some(g) = steal(|| self.global.steal_batch_and_pop(&local.queue)) {
                return Some(self.found_work(m, g));
            }
            if let Some(g) = local.yielded.pop_front() {
                return Some(self.found_work(m, g));
            }
        }
        if !local.yielded.is_empty() && self.thief_may_look() {
            local.share_yielded();
        }
        if local.runnext_streak < RUNNEXT_STREAK
            && let Some(g) = local.runnext.take()
        {
            local.runnext_streak += 1;
            return Some(self.found_work(m, g));
        }
        local.runnext_streak = 0;
        if let Some(g) = local.queue.pop().or_else(|| local.runnext.take()) {
            return Some(self.found_work(m, g));
        }
        if let Some(g) = local.yielded.pop_front() {
            return Some(self.found_work(m, g));
        }
        if !m.m.locked.is_empty()
            && let Some(g) = steal(|| m.m.locked.steal())
        {
            return Some(self.found_work(m, g));
        }
        if let Some(g) = self.take_shared(local) {
            return Some(self.found_work(m, g));
        }
        // The network, without blocking: what it wakes lands on this P (Go polls here too,
        // before stealing).
        if crate::net::poll_now() {
            // SAFETY: as above; the poll's wake-ups went through the same P, and are done.
            let local = unsafe { this.local() };
            if let Some(g) = local.runnext.take().or_else(|| local.queue.pop()) {
                return Some(self.found_work(m, g));
            }
        }
        // SAFETY: as above (re-borrowed after the poll, which queued through the P).
        let local = unsafe { this.local() };
        // Steal from the other Ps, spinning, unless enough Ms spin already.
        let busy = self.ps.len() - self.npidle.load(Ordering::SeqCst);
        if m.spinning.get() || 2 * self.nmspinning.load(Ordering::SeqCst) < busy {
            if !m.spinning.get() {
                m.spinning.set(true);
                self.nmspinning.fetch_add(1, Ordering::SeqCst);
            }
            // Look for a short while before sleeping: going to sleep and being woken costs
            // microseconds of system calls and context switches, while a busy producer usually
            // has more work within a few.
            // With goroutines waiting for the network, an idle M waits in the poller instead,
            // which the kernel wakes as soon as any socket is ready: spinning would only burn
            // the CPU the network needs.
            let spin_until = if crate::net::network_waiters() {
                Instant::now()
            } else {
                Instant::now() + SPIN_BEFORE_SLEEP
            };
            loop {
                let start = tick as usize;
                for i in 0..self.ps.len() {
                    let victim = self.p((start + i) % self.ps.len());
                    if victim.id != p
                        && let Some(g) = steal(|| victim.stealer.steal_batch_and_pop(&local.queue))
                    {
                        return Some(self.found_work(m, g));
                    }
                }
                if let Some(g) = self.take_shared(local) {
                    return Some(self.found_work(m, g));
                }
                if !m.m.locked.is_empty() || Instant::now() >= spin_until {
                    break;
                }
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
        }
        // Nothing: give up the P, then look once more so that work queued meanwhile is not
        // stranded (its producer may have seen this P busy and nobody spinning).
        self.release_p(p);
        m.p.set(None);
        let was_spinning = m.spinning.replace(false);
        if was_spinning {
            self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        if self.any_work()
            && let Some((p, epoch)) = self.take_idle_p()
        {
            m.hold(self, p, epoch);
            if was_spinning {
                m.spinning.set(true);
                self.nmspinning.fetch_add(1, Ordering::SeqCst);
            }
            return None;
        }
        // Nothing anywhere: the M loop waits in the netpoller if goroutines wait for the
        // network (Go's blocking netpoll), or sleeps.
        None
    }

    /// Leaves the spinning state on finding work; if this was the last spinner, wakes another M
    /// to look for more (Go's `resetspinning`).
    fn found_work(&'static self, m: &MLocal, g: GRef) -> GRef {
        if m.spinning.replace(false) && self.nmspinning.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.wakep();
        }
        g
    }

    fn execute(&'static self, m: &MLocal, g: GRef) {
        let this = m.p.get().expect("an M runs goroutines only with a P");
        m.ran_with_p.set(true);
        let system = g.is_system();
        if system {
            SYSTEM_RUNS.fetch_add(1, Ordering::SeqCst);
        }
        this.hot
            .tick
            .store(this.hot.tick.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        g.start_running();
        // The runtime's own goroutines keep no thread-local state across a switch: they move.
        if !self.config.migration && !system {
            g.lock_to(&m.m);
        }
        // SAFETY: this M moved the status to RUNNING.
        if !unsafe { g.started() } && !self.start(this, &g) {
            return;
        }
        m.current.set(g.as_ptr());
        m.m.user.lend(m.lease.get());
        // SAFETY: this M moved the status to RUNNING.
        let outcome = unsafe { g.resume() };
        m.current.set(std::ptr::null());
        // Back in the runtime: take the P back unless sysmon retook it (or the goroutine gave it
        // away in `blocking`).
        if let Some(p) = m.p.get() {
            let kept = p.take_back(&m.m, m.lease.get());
            if !kept {
                m.p.set(None);
            }
        }
        match outcome {
            CoroutineResult::Yield(Switch::Yield) if system && self.ps.len() > 1 => {
                // Back where every M looks first: this M's next round takes it again (after a
                // goroutine locked to this M, every other round), so it keeps its P like Go's
                // GC workers (a cycle sleeps when it is over its share of the processors); an M
                // is woken for it only if this one lost its P.
                g.leave_running(status::RUNNABLE);
                self.system.push(g);
                if m.p.get().is_none() {
                    self.wakep();
                }
            }
            CoroutineResult::Yield(Switch::Yield) => {
                g.leave_running(status::RUNNABLE);
                self.requeue(m, g);
            }
            CoroutineResult::Yield(Switch::Park) => {
                g.leave_running(status::WAITING);
                // SAFETY: the goroutine suspended to this M to park.
                if let Some(g) = unsafe { G::commit_park(g) } {
                    // A wake-up raced the switch.
                    if system {
                        self.ready_system(g);
                    } else {
                        self.requeue(m, g);
                    }
                }
            }
            CoroutineResult::Yield(Switch::ParkReleasing(release)) => {
                g.leave_running(status::WAITING);
                // SAFETY: it suspended to this M with `ParkReleasing`, whose release has not run.
                unsafe { G::hold_parked(g) };
                // SAFETY: once, after the park is recorded (the contract of `park_releasing`).
                unsafe { release.run() };
            }
            CoroutineResult::Yield(Switch::Requeue) => {
                g.leave_running(status::RUNNABLE);
                self.ready(g, false);
            }
            CoroutineResult::Return(()) => {
                g.leave_running(status::DEAD);
                g.growth.release_spare();
                g.defers.clear();
                // SAFETY: this M ran the goroutine to its end.
                if let Some(coroutine) = unsafe { g.take_coroutine() } {
                    let stack = coroutine.into_stack();
                    // The record may be recycled from here on: the fault handler must not find it.
                    stack.set_owner(0);
                    match m.p.get() {
                        // SAFETY: this M holds the P outside user code (it just took it back).
                        Some(p) => stack.into_cache(&mut unsafe { p.local() }.stacks),
                        None => drop(stack),
                    }
                }
                if !system {
                    self.count_finished(m.p.get());
                }
                // SAFETY: this M ran the goroutine to its end.
                unsafe { g.finish() };
            }
        }
    }

    /// Gives goroutine `g`, about to run for the first time on P `p` (held by this M outside
    /// user code, `g` in RUNNING status), a stack from the P's cache and its coroutine. The cache
    /// is LIFO, so the stack is usually the one the last goroutine to finish here left warm.
    /// `false` if no stack could be had: `g` is then finished with the error as its panic.
    fn start(&'static self, p: &P, g: &GRef) -> bool {
        // SAFETY: this M holds the P outside user code.
        let stack = Stack::from_cache(&mut unsafe { p.local() }.stacks, g.stack_size());
        match stack {
            Ok(stack) => {
                // The fault handler finds the goroutine of a stack through the span's owner word.
                stack.set_owner(g.as_ptr() as u64);
                g.growth
                    .start(stack.bottom(), stack.top(), g.as_ptr() as u64);
                let coroutine = Coroutine::with_stack(stack, goroutine_main);
                // SAFETY: this M moved the status to RUNNING.
                unsafe { g.set_coroutine(coroutine) };
                true
            }
            Err(err) => {
                let reason = format!(
                    "goroutine {} cannot start ({} stack): {err}",
                    g.id(),
                    g.stack_size()
                );
                g.leave_running(status::DEAD);
                if !g.is_system() {
                    p.count_goroutines(-1);
                }
                let g = g.clone();
                // The body's `Drop` is user code, which must not run on an M.
                let abandoned =
                    thread::Builder::new()
                        .name("gort-abandon".into())
                        .spawn(move || {
                            // `g` is dead and never started; this thread is not an M.
                            // SAFETY: so the goroutine's own reference is dropped once, here.
                            unsafe {
                                join::abandon(&g, Box::new(reason));
                                g.finish();
                            }
                        });
                if let Err(spawn_err) = abandoned {
                    eprintln!("fatal error: out of memory: {err}; {spawn_err}");
                    std::process::abort();
                }
                false
            }
        }
    }

    /// Queues a goroutine that is runnable again at the tail of this M's P, or globally.
    fn requeue(&'static self, m: &MLocal, g: GRef) {
        if let Some(target) = g.locked_m() {
            return self.ready_locked(target, g);
        }
        match m.p.get() {
            Some(p) => {
                // SAFETY: this M holds the P outside user code (it just took it back).
                let local = unsafe { p.local() };
                if self.thief_may_look() {
                    local.queue.push(g);
                } else {
                    local.yielded.push_back(g);
                }
            }
            None => {
                self.global.push(g);
                self.wakep();
            }
        }
    }
}

/// Hands an idle M a P (and wakes it).
fn give(m: &M, handoff: Handoff) {
    *m.handoff.lock() = Some(handoff);
    m.wake.notify_one();
}

fn steal(mut attempt: impl FnMut() -> Steal<GRef>) -> Option<GRef> {
    loop {
        match attempt() {
            Steal::Success(g) => return Some(g),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

/// Per-M state, on the M's own stack; reached through `CURRENT_M` from code on its thread
/// (the M loop, and goroutines while they run on it).
struct MLocal {
    m: Arc<M>,
    p: Cell<Option<&'static P>>,
    /// This M's lease on `p` (valid while `p` is set).
    lease: Cell<Lease>,
    /// Whether this M has run a goroutine since it got its P.
    ran_with_p: Cell<bool>,
    spinning: Cell<bool>,
    current: Cell<*const G>,
}

impl MLocal {
    /// Starts holding P `p` at `epoch` (handed over, or taken off the idle list).
    fn hold(&self, sched: &'static Scheduler, p: usize, epoch: u64) {
        self.p.set(Some(sched.p(p)));
        self.lease.set(Lease::new(p, epoch));
        sched
            .p(p)
            .hot
            .holder
            .store(Arc::as_ptr(&self.m).cast_mut(), Ordering::Release);
    }
}

thread_local! {
    static CURRENT_M: Cell<*const MLocal> = const { Cell::new(std::ptr::null()) };
}

/// This thread's M state, if it is an M. Never inlined: a goroutine may resume on another
/// thread, and a thread-local address cached across a switch would be the old thread's.
#[inline(never)]
fn current_m() -> Option<&'static MLocal> {
    let m = CURRENT_M.with(Cell::get);
    // SAFETY: `run_m` points this at its own never-returning frame, on this thread.
    unsafe { m.as_ref() }
}

/// The goroutine running on this thread, if any. Never inlined, like [`current_m`], whose
/// thread-local it reads itself: one call on the paths that ask often (stack growth checks).
#[inline(never)]
pub(crate) fn current_g() -> Option<&'static G> {
    let m = CURRENT_M.with(Cell::get);
    // SAFETY: as in `current_m`.
    let g = unsafe { m.as_ref() }?.current.get();
    // SAFETY: the M holds a `GRef` to the goroutine for as long as it runs.
    unsafe { g.as_ref() }
}

/// A counted reference to the goroutine running on this thread.
pub(crate) fn current_g_ref() -> Option<GRef> {
    let g = current_m()?.current.get();
    if g.is_null() {
        return None;
    }
    // SAFETY: the M holds a `GRef` to the goroutine it runs for as long as it runs it.
    Some(unsafe { GRef::from_ptr(g) })
}

/// Runs `f` on the local queues of the P held by this thread's M, from the M loop or from a
/// goroutine (taking the P back from user status for the duration). `None` if the caller holds
/// no P: it is not an M, or sysmon retook the P.
fn with_current_p<R>(f: impl FnOnce(&P, &mut Local) -> R) -> Option<R> {
    let m = current_m()?;
    let this = m.p.get()?;
    let in_goroutine = !m.current.get().is_null();
    if in_goroutine && !this.take_back(&m.m, m.lease.get()) {
        m.p.set(None);
        return None;
    }
    // SAFETY: this M holds the P outside user code (just won back, or the M loop's).
    let result = f(this, unsafe { this.local() });
    if in_goroutine {
        m.m.user.lend(m.lease.get());
    }
    Some(result)
}

/// Gives back the pages of a P's cached stacks if collector cycle `cycle` asked and the P has
/// not answered yet (a P going idle has no use for warm stacks until work comes back).
fn answer_stack_cache_cycle(local: &mut Local, cycle: u64) {
    if local.stacks_cycle != cycle {
        local.stacks_cycle = cycle;
        let given_back = local.stacks.give_back_pages();
        STACK_CACHE_GIVEN_BACK.fetch_add(given_back, Ordering::Relaxed);
    }
}

/// Where every goroutine starts, on its own stack.
fn goroutine_main(yielder: &Yielder<(), Switch>, (): ()) {
    let g = current_g().expect("a goroutine starts on an M");
    g.set_yielder(yielder);
    g.stopped.record_entry();
    // SAFETY: this is goroutine `g`, starting.
    unsafe { join::run_body(g) };
}

/// Who to wake when something a waiter waits for happens.
#[derive(Clone)]
pub(crate) enum Waiter {
    Goroutine(GRef),
    Thread(thread::Thread),
}

impl Waiter {
    /// The calling goroutine, or the calling thread outside goroutines.
    pub(crate) fn current() -> Waiter {
        match current_g_ref() {
            Some(g) => Waiter::Goroutine(g),
            None => Waiter::Thread(thread::current()),
        }
    }

    pub(crate) fn wake(self) {
        match self {
            Waiter::Goroutine(g) => unpark(g),
            Waiter::Thread(thread) => {
                EXTERNAL_WAKES.fetch_add(1, Ordering::SeqCst);
                thread.unpark();
            }
        }
    }
}

/// The calling goroutine or thread as a blocked operation names it: uncounted, so it is valid
/// only while that goroutine is blocked in the frame holding it (which keeps it alive).
pub(crate) enum Blocker {
    Goroutine(*const G),
    Thread(thread::Thread),
}

impl Blocker {
    /// The calling goroutine, or the calling thread outside goroutines.
    pub(crate) fn current() -> Blocker {
        match current_g() {
            Some(g) => Blocker::Goroutine(g),
            None => Blocker::Thread(thread::current()),
        }
    }

    /// Wakes it (or leaves it a token).
    ///
    /// # Safety
    ///
    /// The goroutine (or thread) is still blocked in the frame holding this `Blocker`, and
    /// cannot leave it until the caller lets it (it waits for a completion the caller has not
    /// published yet).
    pub(crate) unsafe fn wake(&self) {
        match self {
            // It cannot finish during the call (the caller's contract).
            // SAFETY: a blocked goroutine has not finished, so its record is live.
            Blocker::Goroutine(g) => unpark_borrowed(unsafe { &**g }),
            Blocker::Thread(thread) => {
                EXTERNAL_WAKES.fetch_add(1, Ordering::SeqCst);
                thread.unpark();
            }
        }
    }
}

/// Makes a parked goroutine runnable, or leaves it a wake-up token.
pub(crate) fn unpark(g: GRef) {
    unpark_borrowed(&g);
}

/// [`unpark`] without a reference of its own: the caller makes sure the goroutine cannot finish
/// meanwhile (it is parked, or running toward a wait it cannot leave before the caller lets it).
fn unpark_borrowed(g: &G) {
    if park::unpark(&g.park) {
        // SAFETY: this caller won the wake-up, so it is the one party that may ready `g`.
        unsafe { ready_parked(g) };
    }
}

/// Parks the calling goroutine (or thread) until a wake-up; may return spuriously.
pub(crate) fn park_current(reason: WaitReason) {
    match current_g() {
        Some(g) => {
            if !park::take_token(&g.park) {
                // SAFETY: `g` is the calling goroutine.
                unsafe { suspend_waiting(g, reason, Switch::Park) };
            }
        }
        None => {
            EXTERNAL_WAITERS.fetch_add(1, Ordering::SeqCst);
            thread::park();
            EXTERNAL_WAITERS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Parks goroutine `g`, the caller, until the one party that can reach it readies it with
/// [`ready_parked`]. That party reaches it only through `release`, which its M runs once the
/// goroutine is off its stack and recorded as parked: so, unlike [`park_current`], no wake-up
/// can race the switch, and the park needs no park word (Go's `gopark` with an unlock
/// function, as its channels use).
///
/// # Safety
///
/// `g` is the calling goroutine. Until `release` runs, nobody can reach the goroutine to ready
/// it; after, exactly one party readies it, once (no park word protects against a second).
///
/// Inlined into its callers, which are inlined into theirs up to the public blocking call
/// (`Receiver::recv`, `Sender::send`): after a switch, the CPU's return-address predictor holds
/// the frames of the stack it came from, so each return through a frame that was live across
/// the switch mispredicts (a few nanoseconds each, twice per park). Flattening those frames
/// into the caller's took rendezvous ping-pong from about 128 to 94 ns per round trip here.
/// The work before and after the switch stays out of line, so the inlined part is small.
#[inline(always)]
pub(crate) unsafe fn park_releasing(g: &G, reason: WaitReason, release: Release) {
    // SAFETY: `g` is the calling goroutine (our contract).
    unsafe { suspend_waiting(g, reason, Switch::ParkReleasing(release)) };
}

/// Suspends goroutine `g` to its M to park (`why`), showing `reason` meanwhile.
///
/// # Safety
///
/// `g` is the calling goroutine.
#[inline(always)]
unsafe fn suspend_waiting(g: &G, reason: WaitReason, why: Switch) {
    g.set_wait_reason(reason);
    // SAFETY: called by the goroutine itself (our contract).
    unsafe { g.suspend(why) };
    g.set_wait_reason(WaitReason::None);
}

/// Makes runnable a parked goroutine `g`: one parked by [`park_releasing`], or one whose
/// wake-up the caller won on its park word.
///
/// # Safety
///
/// The caller is the one party that may ready `g` (the one its release let reach it, or the
/// winner of its wake-up), and readies it once.
pub(crate) unsafe fn ready_parked(g: &G) {
    // SAFETY: the caller's contract: the one party that may take the reference.
    let g = unsafe { g.take_parked() };
    get()
        .expect("a parked goroutine implies a running scheduler")
        .ready(g, true);
}

/// Lets other goroutines run; see [`crate::yield_now`].
pub(crate) fn yield_current() -> bool {
    match current_g() {
        Some(g) => {
            // SAFETY: called by the goroutine itself.
            unsafe { g.suspend(Switch::Yield) };
            true
        }
        None => false,
    }
}

/// Runs `f`, which may block its thread for long, without holding up other goroutines: the
/// calling goroutine's P goes to another M for the duration; see [`crate::blocking`].
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let (Some(m), Some(sched)) = (current_m(), get()) else {
        return f();
    };
    let Some(p) = m.p.get().filter(|_| !m.current.get().is_null()) else {
        return f();
    };
    if p.take_back(&m.m, m.lease.get()) {
        sched.handoff_p(p.id);
    }
    m.p.set(None);
    let result = f();
    // Back: run on with an idle P, or queue for the next M that has one. If `f` switched
    // goroutines, this one may have resumed on an M that holds a P already.
    let m = current_m().expect("still on an M");
    if m.p.get().is_some() {
        return result;
    }
    match sched.take_idle_p() {
        Some((p, epoch)) => {
            m.hold(sched, p, epoch);
            m.m.user.lend(m.lease.get());
        }
        None => {
            let g = current_g().expect("blocking runs in a goroutine");
            // SAFETY: called by the goroutine itself.
            unsafe { g.suspend(Switch::Requeue) };
        }
    }
    result
}

/// Locks the calling goroutine to its OS thread, or undoes one lock; see
/// [`crate::lock_os_thread`].
pub(crate) fn lock_current(lock: bool) {
    let (Some(m), Some(g)) = (current_m(), current_g()) else {
        return;
    };
    if lock {
        g.lock_count.set(g.lock_count.get() + 1);
        g.lock_to(&m.m);
    } else {
        g.lock_count.set(g.lock_count.get().saturating_sub(1));
        if g.lock_count.get() == 0 && get().is_some_and(|sched| sched.config.migration) {
            g.unlock();
        }
    }
}
