//! Time: sleeping, and timers whose channels receive the time they fired at (Go's `time`).
//!
//! In a goroutine, [`sleep`] parks the goroutine, not its thread; on a plain thread it sleeps
//! the thread. Timers are kept in sharded min-heaps served by one timer thread, with a
//! resolution well under a millisecond; a million pending timers cost a million heap entries.
//!
//! Invariant: a timer's channel has room for one value; a tick that finds it full is dropped,
//! and [`Timer::reset`] and [`Timer::stop`] empty it, so no stale time is received after them.

mod timers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::sched::{WaitReason, Waiter, park_current};

pub(crate) use self::timers::pending as timers_pending;
use self::timers::{Action, Entry};

/// Parks the caller (a goroutine, or a plain thread) until it is woken or `deadline` passes;
/// may return early, so callers re-check their condition.
pub(crate) fn park_until(reason: WaitReason, deadline: Instant) {
    match Waiter::current() {
        waiter @ Waiter::Goroutine(_) => {
            let entry = Entry::new(Action::Wake(waiter));
            timers::add(deadline, Arc::clone(&entry));
            park_current(reason);
            entry.cancel();
        }
        Waiter::Thread(_) => {
            let now = Instant::now();
            if deadline > now {
                std::thread::park_timeout(deadline - now);
            }
        }
    }
}

/// Sleeps for `duration`: parks the calling goroutine (other goroutines run on its thread), or
/// sleeps the calling thread outside goroutines. It never returns early.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// gort::spawn(|| gort::time::sleep(Duration::from_millis(5))).join().unwrap();
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
pub fn sleep(duration: Duration) {
    sleep_until(Instant::now() + duration);
}

/// Sleeps until `deadline` (at once if it passed); see [`sleep`].
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(2);
/// gort::time::sleep_until(deadline);
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) {
    while Instant::now() < deadline {
        park_until(WaitReason::Sleep, deadline);
    }
}

/// A channel that receives the time once, after `duration` (Go's `time.After`), for `select!`
/// timeouts.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let fired = gort::time::after(Duration::from_millis(1)).recv().unwrap();
/// assert!(fired.elapsed() < Duration::from_secs(60));
/// ```
pub fn after(duration: Duration) -> Receiver<Instant> {
    let (tx, rx) = chan::bounded(1);
    arm_once(tx, duration);
    rx
}

/// A channel that receives the time every `period`, dropping ticks that find the previous one
/// still unreceived (Go's `time.Tick`). It stops when the receiver is dropped.
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let ticks = gort::time::tick(Duration::from_millis(1));
/// let first = ticks.recv().unwrap();
/// let second = ticks.recv().unwrap();
/// assert!(second > first);
/// ```
pub fn tick(period: Duration) -> Receiver<Instant> {
    let (tx, rx) = chan::bounded(1);
    arm_ticker(tx, period);
    rx
}

/// Arms a timer entry that sends the time on `tx` every `period` until `tx`'s receivers are
/// gone; answers the entry (to stop it).
fn arm_ticker(tx: Sender<Instant>, period: Duration) -> Arc<Entry> {
    assert!(
        !period.is_zero(),
        "gort::time: a ticker needs a non-zero period"
    );
    let first = Instant::now() + period;
    let mut next = first;
    let entry = Entry::new(Action::Fire(Box::new(move |now| {
        if let Err(TrySendError::Disconnected(_)) = tx.try_send(now) {
            return None;
        }
        // Missed ticks are dropped: the next one is the first period boundary after now.
        next += period;
        if next <= now {
            let behind = now - next;
            let periods = behind.as_nanos() / period.as_nanos() + 1;
            next += period * u32::try_from(periods).unwrap_or(u32::MAX);
        }
        Some(next)
    })));
    timers::add(first, Arc::clone(&entry));
    entry
}

/// A single-shot timer whose channel receives the time it fires at (Go's `time.Timer`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use gort::time::Timer;
///
/// let timer = Timer::new(Duration::from_millis(1));
/// timer.receiver().recv().unwrap();
///
/// let timer = Timer::new(Duration::from_secs(3600));
/// assert!(timer.stop()); // stopped before it fired
/// ```
pub struct Timer {
    armed: Armed,
}

impl Timer {
    /// A timer that fires once, after `duration`.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = gort::time::Timer::new(std::time::Duration::from_millis(1));
    /// assert!(timer.receiver().recv().is_ok());
    /// ```
    pub fn new(duration: Duration) -> Timer {
        Timer {
            armed: Armed::new(|tx| arm_once(tx, duration)),
        }
    }

    /// The channel the firing time arrives on (Go's `timer.C`).
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = gort::time::Timer::new(std::time::Duration::ZERO);
    /// let fired_at = timer.receiver().recv().unwrap();
    /// # let _ = fired_at;
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.armed.rx
    }

    /// Stops the timer; `true` if it had not fired yet. Its channel is emptied either way.
    ///
    /// # Examples
    ///
    /// ```
    /// let timer = gort::time::Timer::new(std::time::Duration::from_secs(60));
    /// assert!(timer.stop());
    /// assert!(!timer.stop());
    /// ```
    pub fn stop(&self) -> bool {
        self.armed.stop()
    }

    /// Re-arms the timer to fire after `duration`; `true` if it had not fired yet. A time sent
    /// before the reset is not received after it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timer = gort::time::Timer::new(Duration::from_secs(60));
    /// assert!(timer.reset(Duration::from_millis(1)));
    /// timer.receiver().recv().unwrap();
    /// ```
    pub fn reset(&self, duration: Duration) -> bool {
        self.armed.rearm(|tx| arm_once(tx, duration))
    }
}

/// Arms an entry that sends the time on `tx` once, after `duration`.
fn arm_once(tx: Sender<Instant>, duration: Duration) -> Arc<Entry> {
    let entry = Entry::new(Action::Fire(Box::new(move |now| {
        let _ = tx.try_send(now);
        None
    })));
    timers::add(Instant::now() + duration, Arc::clone(&entry));
    entry
}

/// A periodic timer whose channel receives the time every period, dropping ticks a slow
/// receiver missed (Go's `time.Ticker`). Dropping it stops it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let ticker = gort::time::Ticker::new(Duration::from_millis(1));
/// for _ in 0..3 {
///     ticker.receiver().recv().unwrap();
/// }
/// ticker.stop();
/// ```
pub struct Ticker {
    armed: Armed,
}

impl Ticker {
    /// A ticker with `period`.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let ticker = gort::time::Ticker::new(std::time::Duration::from_millis(1));
    /// ticker.receiver().recv().unwrap();
    /// ```
    pub fn new(period: Duration) -> Ticker {
        Ticker {
            armed: Armed::new(|tx| arm_ticker(tx, period)),
        }
    }

    /// The channel the ticks arrive on (Go's `ticker.C`).
    ///
    /// # Examples
    ///
    /// ```
    /// let ticker = gort::time::Ticker::new(std::time::Duration::from_millis(1));
    /// let at = ticker.receiver().recv().unwrap();
    /// # let _ = at;
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.armed.rx
    }

    /// Stops the ticker; no tick is received after it.
    ///
    /// # Examples
    ///
    /// ```
    /// let ticker = gort::time::Ticker::new(std::time::Duration::from_millis(1));
    /// ticker.stop();
    /// assert!(ticker.receiver().try_recv().is_err());
    /// ```
    pub fn stop(&self) {
        self.armed.stop();
    }

    /// Restarts the ticker with a new `period`, counted from now.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ticker = gort::time::Ticker::new(Duration::from_secs(60));
    /// ticker.reset(Duration::from_millis(1));
    /// ticker.receiver().recv().unwrap();
    /// ```
    pub fn reset(&self, period: Duration) {
        self.armed.rearm(|tx| arm_ticker(tx, period));
    }
}

/// What [`Timer`] and [`Ticker`] share: their channel, and the timer entry armed to send on it.
struct Armed {
    tx: Sender<Instant>,
    rx: Receiver<Instant>,
    entry: Mutex<Arc<Entry>>,
}

impl Armed {
    /// A channel with room for one time, and the entry `arm` arms to send on it.
    fn new(arm: impl FnOnce(Sender<Instant>) -> Arc<Entry>) -> Armed {
        let (tx, rx) = chan::bounded(1);
        let entry = Mutex::new(arm(tx.clone()));
        Armed { tx, rx, entry }
    }

    /// Disarms the entry and empties the channel; `true` if the entry had not fired.
    fn stop(&self) -> bool {
        let stopped = self.entry.lock().cancel();
        while self.rx.try_recv().is_ok() {}
        stopped
    }

    /// Disarms the entry, empties the channel and arms a new entry with `arm`; `true` if the old
    /// entry had not fired.
    fn rearm(&self, arm: impl FnOnce(Sender<Instant>) -> Arc<Entry>) -> bool {
        let mut entry = self.entry.lock();
        let was_pending = entry.cancel();
        while self.rx.try_recv().is_ok() {}
        *entry = arm(self.tx.clone());
        was_pending
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.entry.get_mut().cancel();
    }
}
