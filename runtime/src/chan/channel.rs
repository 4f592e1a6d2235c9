//! The channel itself: a buffer and two queues of blocked operations behind one lock (Go's
//! `hchan`), shared by every sender and receiver.
//!
//! Invariants:
//! - the buffer, the wait queues and the disconnection flags change only under the lock;
//! - a queue entry points into the frame of a blocked operation ([`Blocked`] and its slot); the
//!   owner removes its entries under the lock before that frame ends, and a counterpart uses an
//!   entry only under the lock and only after winning its [`Operation`];
//! - an entry whose operation cannot be won any more (it completed elsewhere, or its owner gave
//!   up) is dropped from the queue by whoever finds it; its owner's removal then finds nothing;
//! - a value is in exactly one place at a time: the sender's slot, the buffer, or the
//!   receiver's slot (moves happen under the lock, or on the owner's side after completion);
//! - a claimed operation is finished after the lock is released: an owner waiting on its park
//!   word is woken, then told; an owner parked under the lock (a goroutine blocked without a
//!   deadline, on one channel) is told, then readied;
//! - a goroutine parked under the lock queued its entry and parked without releasing the lock;
//!   its M releases it only after recording the park (`crate::sched::park_releasing`), so
//!   whoever takes the entry finds the goroutine parked, and is the only one that can ready it.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use super::error::{SendTimeoutError, TryRecvError, TrySendError};
use super::lock::{SpinGuard, SpinLock};
use super::operation::{Operation, Outcome};
use crate::sched::{Blocker, G, WaitReason, park_current, park_releasing, ready_parked};

/// A blocked operation's shared part, on its owner's stack: the word that decides it, and who to
/// wake.
pub(crate) struct Blocked {
    pub(crate) operation: Operation,
    owner: Owner,
}

/// How a blocked operation's owner waits, and so how its counterpart finishes it.
enum Owner {
    /// Parks (or blocks its thread) on its park word, re-checking the operation after each
    /// wake-up: woken, then told. Uncounted: the owner is blocked in this frame for as long as
    /// anyone can reach it.
    Woken(Blocker),
    /// A goroutine with an exclusive operation, parked with the channel's lock held
    /// ([`park_releasing`]): its counterpart, the only party that can reach it, tells it, then
    /// readies it. No wake-up can race the park, so nobody touches a park word.
    Parked(*const G),
}

impl Blocked {
    /// A blocked operation of the calling goroutine (or thread), on one or several arms.
    pub(crate) fn new() -> Blocked {
        Blocked::with(Operation::new(), Owner::Woken(Blocker::current()))
    }

    /// A blocked send or receive, on one arm; exclusive (see `operation`) without a deadline,
    /// and then parked under the channel's lock if the caller is a goroutine.
    #[inline]
    fn single(deadline: Option<Instant>) -> Blocked {
        match (deadline, Blocker::current()) {
            (None, Blocker::Goroutine(g)) => {
                Blocked::with(Operation::exclusive(), Owner::Parked(g))
            }
            (None, blocker) => Blocked::with(Operation::exclusive(), Owner::Woken(blocker)),
            (Some(_), blocker) => Blocked::with(Operation::new(), Owner::Woken(blocker)),
        }
    }

    fn with(operation: Operation, owner: Owner) -> Blocked {
        Blocked { operation, owner }
    }

    /// Blocks a [`Blocked::single`] operation whose entry `state` (its channel's guard) has just
    /// queued, until it ends; releases the lock. Inlined down to the switch, like its callers.
    #[inline(always)]
    fn block<T>(
        &self,
        state: SpinGuard<'_, State<T>>,
        deadline: Option<Instant>,
        reason: WaitReason,
    ) -> Outcome {
        match self.owner {
            Owner::Parked(g) => {
                // The goroutine's frame refers to the channel, so its lock outlives the park.
                // SAFETY: the lock outlives the release's run; the guard's references end here.
                let release = unsafe { state.into_release() };
                // Until the release, the entry is behind the lock; after, exactly one
                // counterpart (or a disconnection) takes it and readies `g` once (`finish`).
                // SAFETY: `g` is the calling goroutine (`single`), reachable only as just said.
                unsafe { park_releasing(&*g, reason, release) };
                match self.operation.ended() {
                    Some(outcome) => outcome,
                    None => unreachable!(
                        "a goroutine parked under a channel lock resumed at {:?}",
                        self.operation.poll()
                    ),
                }
            }
            Owner::Woken(_) => {
                drop(state);
                self.wait(deadline, reason)
            }
        }
    }

    /// Parks until the operation completes or `deadline` passes (then cancels it). Once a
    /// counterpart has claimed it, waits without parking: the counterpart has already woken
    /// it, or is about to, and publishes completion right after.
    #[inline(never)]
    pub(crate) fn wait(&self, deadline: Option<Instant>, reason: WaitReason) -> Outcome {
        let mut pauses = 0u32;
        self.operation.wait_with(
            || deadline.is_some_and(|deadline| Instant::now() >= deadline),
            || match deadline {
                Some(deadline) => crate::time::park_until(reason, deadline),
                None => park_current(reason),
            },
            || {
                pauses += 1;
                if pauses.is_multiple_of(64) {
                    // The counterpart's thread may have been descheduled: let others run.
                    crate::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            },
        )
    }
}

/// A blocked operation's entry in one channel's wait queue.
pub(crate) struct Entry<T> {
    blocked: *const Blocked,
    /// Which arm of its operation this entry is (0 outside `select!`).
    arm: usize,
    /// The sender's value, or where the receiver's value goes.
    slot: *const UnsafeCell<Option<T>>,
}

impl<T> Entry<T> {
    /// An entry for `blocked`'s arm `arm`, moving values through `slot`.
    pub(crate) fn new(blocked: &Blocked, arm: usize, slot: &UnsafeCell<Option<T>>) -> Self {
        Entry { blocked, arm, slot }
    }

    fn is_for(&self, blocked: &Blocked) -> bool {
        ptr::eq(self.blocked, blocked)
    }

    /// Wins the entry's operation and lets `transfer` move the value through its slot; answers
    /// the completion to finish once the lock is released, or `None` if the operation cannot be
    /// won any more.
    fn claim(&self, moved: bool, transfer: impl FnOnce(&mut Option<T>)) -> Option<Completion> {
        // SAFETY: its queue's lock is held, so its owner has not removed it (module invariant).
        let blocked = unsafe { &*self.blocked };
        if !blocked.operation.claim(self.arm) {
            return None;
        }
        // SAFETY: the claim gives us the owner's slot until we publish completion.
        transfer(unsafe { &mut *(*self.slot).get() });
        Some(Completion {
            blocked: self.blocked,
            arm: self.arm,
            moved,
        })
    }
}

/// A claimed operation whose owner still has to be woken and told: done after the channel's
/// lock is released. Until then the owner waits for it in its frame (it cannot leave a claimed
/// operation), so its `Blocked` stays valid.
#[must_use = "a claimed operation must be completed, or its owner waits forever"]
pub(crate) struct Completion {
    blocked: *const Blocked,
    arm: usize,
    moved: bool,
}

impl Completion {
    /// Tells the owner and makes sure it runs. An owner that waits on its park word is woken
    /// first, then told: in this order it cannot return, and end its frame or even finish,
    /// before the wake-up is delivered, so the wake-up needs no reference of its own. An owner
    /// parked under the lock is told first, then readied: it cannot run before.
    pub(crate) fn finish(self) {
        // SAFETY: the owner waits for this completion in the frame holding `blocked`.
        let blocked = unsafe { &*self.blocked };
        match blocked.owner {
            Owner::Woken(ref blocker) => {
                // SAFETY: as just said: it cannot leave until `complete` below.
                unsafe { blocker.wake() };
                blocked.operation.complete(self.arm, self.moved);
            }
            Owner::Parked(g) => {
                blocked.operation.complete(self.arm, self.moved);
                // The owner parked under the lock we took its entry under, and has not finished.
                // SAFETY: so we are the one party that can ready it, and its record is live.
                unsafe { ready_parked(&*g) };
            }
        }
    }
}

/// Why [`Channel::send`]'s first part did not send.
enum Unsent<'a, T> {
    /// The send ended without sending.
    Failed(SendTimeoutError<T>),
    /// The sender must block with its value, under the channel's lock.
    Blocking(SpinGuard<'a, State<T>>, T),
}

/// The lock-protected part.
pub(crate) struct State<T> {
    buffer: VecDeque<T>,
    senders: VecDeque<Entry<T>>,
    receivers: VecDeque<Entry<T>>,
    senders_gone: bool,
    receivers_gone: bool,
}

// SAFETY: the raw pointers in the entries are used only under the lock and per the module
// invariants (their frames outlive the entries); values of `T` move between threads as with any
// channel, so `T: Send` suffices.
unsafe impl<T: Send> Send for State<T> {}

/// A channel; senders and receivers share it through an `Arc`.
pub(crate) struct Channel<T> {
    state: SpinLock<State<T>>,
    /// `None` for an unbounded channel.
    cap: Option<usize>,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

impl<T> Channel<T> {
    pub(crate) fn new(cap: Option<usize>) -> Channel<T> {
        Channel {
            state: SpinLock::new(State {
                buffer: VecDeque::with_capacity(cap.unwrap_or(0)),
                senders: VecDeque::new(),
                receivers: VecDeque::new(),
                senders_gone: false,
                receivers_gone: false,
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, State<T>> {
        self.state.lock()
    }

    /// The lock itself, for a select that holds several channels' locks at once and reaches
    /// their state through [`SpinLock::data`].
    pub(crate) fn raw(&self) -> &SpinLock<State<T>> {
        &self.state
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buffer.len()
    }

    /// Sends without blocking, under the lock: to a blocked receiver, else into the buffer.
    /// On success, answers whom to wake once the lock is released.
    pub(crate) fn try_send_locked(
        &self,
        state: &mut State<T>,
        value: T,
    ) -> Result<Option<Completion>, TrySendError<T>> {
        if state.receivers_gone {
            return Err(TrySendError::Disconnected(value));
        }
        let mut value = Some(value);
        while let Some(entry) = state.receivers.pop_front() {
            if let Some(completion) = entry.claim(true, |slot| *slot = value.take()) {
                return Ok(Some(completion));
            }
        }
        let value = value.expect("not sent yet");
        if self.cap.is_none_or(|cap| state.buffer.len() < cap) {
            state.buffer.push_back(value);
            return Ok(None);
        }
        Err(TrySendError::Full(value))
    }

    /// Receives without blocking, under the lock: from the buffer (refilling it from a blocked
    /// sender), else from a blocked sender. Answers the value and whom to wake.
    pub(crate) fn try_recv_locked(
        &self,
        state: &mut State<T>,
    ) -> Result<(T, Option<Completion>), TryRecvError> {
        let mut taken = state.buffer.pop_front();
        while let Some(entry) = state.senders.pop_front() {
            let mut moved = None;
            if let Some(completion) = entry.claim(true, |slot| moved = slot.take()) {
                let moved = moved.expect("a blocked sender holds its value");
                let value = match taken.take() {
                    Some(first) => {
                        state.buffer.push_back(moved);
                        first
                    }
                    None => moved,
                };
                return Ok((value, Some(completion)));
            }
        }
        match taken {
            Some(value) => Ok((value, None)),
            None if state.senders_gone => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    pub(crate) fn register_sender(&self, state: &mut State<T>, entry: Entry<T>) {
        state.senders.push_back(entry);
    }

    pub(crate) fn register_receiver(&self, state: &mut State<T>, entry: Entry<T>) {
        state.receivers.push_back(entry);
    }

    /// Removes `blocked`'s entries from both queues (they may be gone already).
    pub(crate) fn unregister(&self, state: &mut State<T>, blocked: &Blocked) {
        state.senders.retain(|entry| !entry.is_for(blocked));
        state.receivers.retain(|entry| !entry.is_for(blocked));
    }

    /// Sends, blocking until there is room or a receiver, `deadline` passes, or every receiver
    /// is gone.
    ///
    /// Inlined into its callers down to the switch (see [`crate::sched::park_releasing`]), and
    /// so is the path that completes without blocking: called out of line, its result came
    /// back through memory and was reloaded at once, which stalls (8 × 8 MPMC took 40% longer).
    /// The end of a blocked send is out of line.
    #[inline(always)]
    pub(crate) fn send(
        &self,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let (mut state, value) = match self.send_or_lock(value, deadline) {
            Ok(()) => return Ok(()),
            Err(Unsent::Failed(err)) => return Err(err),
            Err(Unsent::Blocking(state, value)) => (state, value),
        };
        let blocked = Blocked::single(deadline);
        let slot = UnsafeCell::new(Some(value));
        self.register_sender(&mut state, Entry::new(&blocked, 0, &slot));
        match blocked.block(state, deadline, WaitReason::ChanSend) {
            Outcome::Done(_) => Ok(()),
            outcome => self.not_sent(outcome, &blocked, slot),
        }
    }

    /// The part of [`Channel::send`] before blocking: sends if that needs no waiting, or answers
    /// `Blocking` with the locked state and the value.
    #[inline(always)]
    fn send_or_lock(&self, value: T, deadline: Option<Instant>) -> Result<(), Unsent<'_, T>> {
        let mut state = self.lock();
        match self.try_send_locked(&mut state, value) {
            Ok(completion) => {
                drop(state);
                if let Some(completion) = completion {
                    completion.finish();
                }
                Ok(())
            }
            Err(TrySendError::Disconnected(value)) => {
                Err(Unsent::Failed(SendTimeoutError::Disconnected(value)))
            }
            Err(TrySendError::Full(value)) => {
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(Unsent::Failed(SendTimeoutError::Timeout(value)));
                }
                Err(Unsent::Blocking(state, value))
            }
        }
    }

    /// The end of a [`Channel::send`] that blocked and did not send (`outcome`).
    #[inline(never)]
    fn not_sent(
        &self,
        outcome: Outcome,
        blocked: &Blocked,
        slot: UnsafeCell<Option<T>>,
    ) -> Result<(), SendTimeoutError<T>> {
        self.unregister(&mut self.lock(), blocked);
        let unsent = slot
            .into_inner()
            .expect("an unsent value stays in its slot");
        Err(match outcome {
            Outcome::Closed(_) => SendTimeoutError::Disconnected(unsent),
            _ => SendTimeoutError::Timeout(unsent),
        })
    }

    /// Receives, blocking until a value arrives, `deadline` passes (`Ok(None)`), or the channel
    /// is empty with every sender gone.
    ///
    /// Inlined into its callers down to the switch, like [`Channel::send`].
    #[inline(always)]
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Option<T>, TryRecvError> {
        let mut state = match self.recv_or_lock(deadline) {
            Ok(state) => state,
            Err(done) => return done,
        };
        let blocked = Blocked::single(deadline);
        let slot = UnsafeCell::new(None);
        self.register_receiver(&mut state, Entry::new(&blocked, 0, &slot));
        let outcome = blocked.block(state, deadline, WaitReason::ChanReceive);
        self.received(outcome, &blocked, &slot, deadline)
    }

    /// The part of [`Channel::recv`] before blocking: answers the locked state to block with,
    /// or (as `Err`) what the receive ends with if that needs no waiting (`Ok(None)` once
    /// `deadline` has passed).
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn recv_or_lock(
        &self,
        deadline: Option<Instant>,
    ) -> Result<SpinGuard<'_, State<T>>, Result<Option<T>, TryRecvError>> {
        let mut state = self.lock();
        match self.try_recv_locked(&mut state) {
            Ok((value, completion)) => {
                drop(state);
                if let Some(completion) = completion {
                    completion.finish();
                }
                Err(Ok(Some(value)))
            }
            Err(TryRecvError::Disconnected) => Err(Err(TryRecvError::Disconnected)),
            Err(TryRecvError::Empty) => {
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Err(Ok(None));
                }
                Ok(state)
            }
        }
    }

    /// The end of a [`Channel::recv`] that blocked, on `outcome`: takes the value from `slot`,
    /// or unregisters.
    #[inline(never)]
    fn received(
        &self,
        outcome: Outcome,
        blocked: &Blocked,
        slot: &UnsafeCell<Option<T>>,
        deadline: Option<Instant>,
    ) -> Result<Option<T>, TryRecvError> {
        if let Outcome::Done(_) = outcome {
            // SAFETY: the operation completed, so the sender is done with the slot.
            let value = unsafe { (*slot.get()).take() };
            return Ok(Some(value.expect("a completed receive has its value")));
        }
        self.unregister(&mut self.lock(), blocked);
        match outcome {
            // Values sent before the disconnection were handed to blocked receivers directly
            // or buffered; a receiver woken by it found the buffer empty when it blocked.
            Outcome::Closed(_) => self.recv(deadline).map_err(|_| TryRecvError::Disconnected),
            _ => Ok(None),
        }
    }

    /// The last sender is gone: wakes every blocked receiver.
    pub(crate) fn disconnect_senders(&self) {
        let mut state = self.lock();
        state.senders_gone = true;
        let woken = close_all(&mut state.receivers);
        drop(state);
        woken.into_iter().for_each(Completion::finish);
    }

    /// The last receiver is gone: wakes every blocked sender (each keeps its value).
    pub(crate) fn disconnect_receivers(&self) {
        let mut state = self.lock();
        state.receivers_gone = true;
        let woken = close_all(&mut state.senders);
        drop(state);
        woken.into_iter().for_each(Completion::finish);
    }
}

/// Claims every entry of `queue` for "disconnected"; answers the completions to finish.
fn close_all<T>(queue: &mut VecDeque<Entry<T>>) -> Vec<Completion> {
    queue
        .drain(..)
        .filter_map(|entry| entry.claim(false, |_| {}))
        .collect()
}
