//! Join handles: how a goroutine's result or panic reaches whoever waits for it.
//!
//! Invariants:
//! - the packet goes from running to done exactly once, and the waiter registered at that moment
//!   is woken after the result is stored;
//! - a waiter re-checks the packet after every wake-up (wake-ups may be spurious).

use std::fmt;
use std::sync::Arc;
use std::thread;

use parking_lot::Mutex;

use super::g::{GoroutineId, WaitReason};
use super::scheduler::{self, Waiter};

enum State<T> {
    Running(Option<Waiter>),
    Done(Option<thread::Result<T>>),
}

/// Where a goroutine leaves its result.
pub(crate) struct Packet<T> {
    state: Mutex<State<T>>,
}

impl<T> Packet<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Packet {
            state: Mutex::new(State::Running(None)),
        })
    }

    /// Stores the result and wakes the waiter, if any.
    pub(crate) fn complete(&self, result: thread::Result<T>) {
        let waiter = {
            let mut state = self.state.lock();
            match std::mem::replace(&mut *state, State::Done(Some(result))) {
                State::Running(waiter) => waiter,
                State::Done(_) => unreachable!("a goroutine completes once"),
            }
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
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
    id: GoroutineId,
    packet: Arc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(id: GoroutineId, packet: Arc<Packet<T>>) -> Self {
        JoinHandle { id, packet }
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
        loop {
            {
                let mut state = self.packet.state.lock();
                match &mut *state {
                    State::Done(result) => return result.take().expect("joined once"),
                    State::Running(waiter) => *waiter = Some(Waiter::current()),
                }
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
        matches!(*self.packet.state.lock(), State::Done(_))
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
        self.id
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
