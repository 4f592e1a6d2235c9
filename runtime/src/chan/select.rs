//! `select!`'s engine: waits on several channel operations at once and completes exactly one.
//!
//! Like Go's `selectgo`: the arms are polled in a random order (so when several are ready, each
//! is equally likely); if none is ready, the select locks every channel involved (in address
//! order, each once), re-polls, and registers one entry per arm under those locks, so no arm
//! can become ready unseen; then it parks once, on all of them. The shared [`Operation`] word
//! decides which arm wins; the select removes its other entries when it wakes.
//!
//! Invariants: a select holds either one channel's lock (a counterpart's side) or all of its
//! own, taken in address order, so locks never cycle; its entries live in its frame and are
//! removed before it returns.

use std::cell::{Cell, UnsafeCell};
use std::time::Instant;

use super::channel::Completion;
use super::channel::{Blocked, Channel, Entry, State};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::lock::{RawSpinLock, SpinLock};
use super::operation::Outcome;
use super::{Receiver, Sender};
use crate::sched::WaitReason;

/// How long a select may wait.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// Until an arm completes.
    Block,
    /// Not at all (a `default` arm).
    Never,
    /// Until the deadline (a `default(duration)` arm).
    Until(Instant),
}

/// One arm of a select, type-erased.
///
/// # Safety
///
/// `channel_lock` is the lock of the arm's channel; the `_locked` methods are called only while
/// the caller holds it, through `lock`/`unlock`.
pub(crate) unsafe trait Arm {
    /// The lock of the arm's channel.
    fn channel_lock(&self) -> &RawSpinLock;
    /// The channel's address: locks are taken in this order, once per channel.
    fn channel_addr(&self) -> usize {
        std::ptr::from_ref(self.channel_lock()) as usize
    }
    /// Locks the channel.
    fn lock(&self) {
        self.channel_lock().lock();
    }
    /// Unlocks the channel.
    ///
    /// # Safety
    ///
    /// The caller locked it with [`Arm::lock`].
    unsafe fn unlock(&self) {
        // SAFETY: locked by the caller through `lock`.
        unsafe { self.channel_lock().unlock() };
    }
    /// Completes the arm if that needs no waiting; answers `Some(what to finish after
    /// unlocking)` if it did.
    ///
    /// # Safety
    ///
    /// The channel is locked by the caller.
    unsafe fn try_locked(&mut self) -> Option<Option<Completion>>;
    /// Queues an entry for `blocked`'s arm `index`.
    ///
    /// # Safety
    ///
    /// The channel is locked by the caller; `blocked` and `self` stay in place until
    /// [`Arm::unregister`] returns.
    unsafe fn register_locked(&self, blocked: &Blocked, index: usize);
    /// Removes `blocked`'s entries from the channel (locking it).
    fn unregister(&self, blocked: &Blocked);
    /// Records how a blocked select ended on this arm (`moved`: a value moved; else the
    /// channel disconnected).
    fn finish(&mut self, moved: bool);
}

/// An arm, as `select` takes it.
pub struct ArmRef<'a>(&'a mut dyn Arm);

/// A receive arm.
pub struct RecvArm<'a, T> {
    channel: &'a Channel<T>,
    slot: UnsafeCell<Option<T>>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvArm<'a, T> {
    /// An arm receiving from `receiver`.
    pub fn new(receiver: &'a Receiver<T>) -> Self {
        RecvArm {
            channel: receiver.channel(),
            slot: UnsafeCell::new(None),
            result: None,
        }
    }

    /// The arm's result, once it was selected.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result.expect("the selected arm has a result")
    }

    /// The arm, for `select`.
    pub fn as_arm(&mut self) -> ArmRef<'_> {
        ArmRef(self)
    }
}

// SAFETY: `channel_lock` is the channel's lock, and the `_locked` methods touch its state only
// while it is held.
unsafe impl<T> Arm for RecvArm<'_, T> {
    fn channel_lock(&self) -> &RawSpinLock {
        self.channel.raw().raw()
    }

    unsafe fn try_locked(&mut self) -> Option<Option<Completion>> {
        // SAFETY: the caller holds the lock.
        let state: &mut State<T> = unsafe { SpinLock::data(self.channel.raw()) };
        match self.channel.try_recv_locked(state) {
            Ok((value, completion)) => {
                self.result = Some(Ok(value));
                Some(completion)
            }
            Err(TryRecvError::Disconnected) => {
                self.result = Some(Err(RecvError));
                Some(None)
            }
            Err(TryRecvError::Empty) => None,
        }
    }

    unsafe fn register_locked(&self, blocked: &Blocked, index: usize) {
        // SAFETY: the caller holds the lock.
        let state: &mut State<T> = unsafe { SpinLock::data(self.channel.raw()) };
        self.channel
            .register_receiver(state, Entry::new(blocked, index, &self.slot));
    }

    fn unregister(&self, blocked: &Blocked) {
        self.channel.unregister(&mut self.channel.lock(), blocked);
    }

    fn finish(&mut self, moved: bool) {
        self.result = Some(if moved {
            Ok(self
                .slot
                .get_mut()
                .take()
                .expect("a completed receive has its value"))
        } else {
            Err(RecvError)
        });
    }
}

/// A send arm.
pub struct SendArm<'a, T> {
    channel: &'a Channel<T>,
    slot: UnsafeCell<Option<T>>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendArm<'a, T> {
    /// An arm sending `value` on `sender`.
    pub fn new(sender: &'a Sender<T>, value: T) -> Self {
        SendArm {
            channel: sender.channel(),
            slot: UnsafeCell::new(Some(value)),
            result: None,
        }
    }

    /// The arm's result, once it was selected.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result.expect("the selected arm has a result")
    }

    /// The arm, for `select`.
    pub fn as_arm(&mut self) -> ArmRef<'_> {
        ArmRef(self)
    }
}

// SAFETY: as for `RecvArm`.
unsafe impl<T> Arm for SendArm<'_, T> {
    fn channel_lock(&self) -> &RawSpinLock {
        self.channel.raw().raw()
    }

    unsafe fn try_locked(&mut self) -> Option<Option<Completion>> {
        // SAFETY: the caller holds the lock.
        let state: &mut State<T> = unsafe { SpinLock::data(self.channel.raw()) };
        let value = self.slot.get_mut().take().expect("an unsent value");
        match self.channel.try_send_locked(state, value) {
            Ok(completion) => {
                self.result = Some(Ok(()));
                Some(completion)
            }
            Err(TrySendError::Disconnected(value)) => {
                self.result = Some(Err(SendError(value)));
                Some(None)
            }
            Err(TrySendError::Full(value)) => {
                *self.slot.get_mut() = Some(value);
                None
            }
        }
    }

    unsafe fn register_locked(&self, blocked: &Blocked, index: usize) {
        // SAFETY: the caller holds the lock.
        let state: &mut State<T> = unsafe { SpinLock::data(self.channel.raw()) };
        self.channel
            .register_sender(state, Entry::new(blocked, index, &self.slot));
    }

    fn unregister(&self, blocked: &Blocked) {
        self.channel.unregister(&mut self.channel.lock(), blocked);
    }

    fn finish(&mut self, moved: bool) {
        self.result = Some(if moved {
            Ok(())
        } else {
            Err(SendError(
                self.slot.get_mut().take().expect("an unsent value stays"),
            ))
        });
    }
}

/// Most arms a select takes (Go allows 65,536; a larger select does not fit the poll order).
pub const MAX_ARMS: usize = 256;

/// Runs a select over `arms`: completes one and answers its index, or `None` when `wait` ran
/// out (or was `Never`) with no arm ready.
pub fn select(arms: &mut [ArmRef<'_>], wait: Wait) -> Option<usize> {
    let count = arms.len();
    assert!(
        count <= MAX_ARMS,
        "select! takes at most {MAX_ARMS} arms, got {count}"
    );
    if count == 0 {
        return match wait {
            Wait::Never => None,
            Wait::Until(deadline) => {
                crate::time::sleep_until(deadline);
                None
            }
            Wait::Block => loop {
                crate::sched::park_current(WaitReason::Select);
            },
        };
    }
    let mut order = [0u8; MAX_ARMS];
    let order = &mut order[..count];
    shuffle(order);
    let mut locks = [0u8; MAX_ARMS];
    let locks = lock_order(arms, &mut locks[..count]);

    // Poll in random order under all the locks.
    for &index in locks.iter() {
        arms[usize::from(index)].0.lock();
    }
    let unlock_all = |arms: &mut [ArmRef<'_>]| {
        for &index in locks.iter().rev() {
            // SAFETY: locked above, once per channel.
            unsafe { arms[usize::from(index)].0.unlock() };
        }
    };
    for &index in order.iter() {
        // SAFETY: every arm's channel is locked.
        if let Some(completion) = unsafe { arms[usize::from(index)].0.try_locked() } {
            unlock_all(arms);
            if let Some(completion) = completion {
                completion.finish();
            }
            return Some(usize::from(index));
        }
    }
    let deadline = match wait {
        Wait::Never => {
            unlock_all(arms);
            return None;
        }
        Wait::Until(deadline) if Instant::now() >= deadline => {
            unlock_all(arms);
            return None;
        }
        Wait::Until(deadline) => Some(deadline),
        Wait::Block => None,
    };
    let blocked = Blocked::new();
    for (index, arm) in arms.iter().enumerate() {
        // `blocked` and the arms stay in place until the entries are removed below.
        // SAFETY: every arm's channel is locked, and the entries' referents outlive them.
        unsafe { arm.0.register_locked(&blocked, index) };
    }
    unlock_all(arms);
    let outcome = blocked.wait(deadline, WaitReason::Select);
    for arm in arms.iter() {
        arm.0.unregister(&blocked);
    }
    match outcome {
        Outcome::Done(index) => {
            arms[index].0.finish(true);
            Some(index)
        }
        Outcome::Closed(index) => {
            arms[index].0.finish(false);
            Some(index)
        }
        Outcome::Cancelled => None,
    }
}

/// The arms' indices sorted by channel address, one per channel.
fn lock_order<'a>(arms: &[ArmRef<'_>], locks: &'a mut [u8]) -> &'a [u8] {
    for (index, slot) in locks.iter_mut().enumerate() {
        *slot = u8::try_from(index).expect("at most MAX_ARMS arms");
    }
    locks.sort_unstable_by_key(|&index| arms[usize::from(index)].0.channel_addr());
    let mut kept = 0;
    for at in 0..locks.len() {
        let addr = arms[usize::from(locks[at])].0.channel_addr();
        if kept == 0 || arms[usize::from(locks[kept - 1])].0.channel_addr() != addr {
            locks[kept] = locks[at];
            kept += 1;
        }
    }
    &locks[..kept]
}

/// Fills `order` with a uniformly random permutation of its indices (Fisher–Yates).
fn shuffle(order: &mut [u8]) {
    for (index, slot) in order.iter_mut().enumerate() {
        *slot = u8::try_from(index).expect("at most MAX_ARMS arms");
    }
    for top in (1..order.len()).rev() {
        let pick = (random() % (top as u64 + 1)) as usize;
        order.swap(top, pick);
    }
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A fast pseudo-random number (xorshift64*), seeded per thread. Never inlined: a goroutine may
/// move between threads, and a thread-local address must not be kept across a switch.
#[inline(never)]
fn random() -> u64 {
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            let seed = std::ptr::from_ref(rng) as u64
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_nanos() as u64);
            x = seed | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}
