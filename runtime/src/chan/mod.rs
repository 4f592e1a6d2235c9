//! Channels: multi-producer multi-consumer queues that park goroutines, with crossbeam-channel's
//! API and Go's semantics.
//!
//! [`bounded`] makes a channel with a buffer of `cap` values; `bounded(0)` is a rendezvous
//! channel (Go's unbuffered channel): a send waits for a receiver. [`unbounded`] never blocks
//! senders. [`Sender`] and [`Receiver`] are both `Clone`. A blocked operation parks the calling
//! goroutine (its thread runs other goroutines), or blocks the calling thread outside
//! goroutines. [`select!`](crate::select) waits on several operations at once.
//!
//! When every receiver is gone, sends fail and hand their value back; when every sender is
//! gone, receives drain what is buffered and then fail.
//!
//! ```
//! let (tx, rx) = gort::chan::bounded(0);
//! let producer = gort::spawn(move || {
//!     for i in 0..5 {
//!         tx.send(i).unwrap();
//!     }
//! });
//! assert_eq!(rx.iter().sum::<i32>(), 10); // ends when the producer drops `tx`
//! producer.join().unwrap();
//! ```
//!
//! Invariants of the parts: `operation` (how a blocked operation is won exactly once), `channel`
//! (where a value is at any time, and when queue entries may be touched) and `select` (lock
//! order).

mod channel;
mod error;
mod lock;
pub(crate) mod operation;
mod select;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use self::channel::Channel;
pub use self::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

/// A channel with room for `cap` values; `cap == 0` makes a rendezvous channel, where each send
/// waits for a receiver (Go's unbuffered channel).
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::bounded(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert!(tx.try_send(3).unwrap_err().is_full());
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(cap))
}

/// A channel whose sends never block.
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

fn make<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let channel = Arc::new(Channel::new(cap));
    (
        Sender {
            channel: Arc::clone(&channel),
        },
        Receiver { channel },
    )
}

fn deadline_after(timeout: Duration) -> Option<Instant> {
    // A timeout too large to represent waits forever.
    Instant::now().checked_add(timeout)
}

/// The sending side of a channel.
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// let tx2 = tx.clone();
/// gort::spawn(move || tx2.send("from a goroutine").unwrap()).join().unwrap();
/// tx.send("from the caller").unwrap();
/// assert_eq!(rx.recv(), Ok("from a goroutine"));
/// ```
pub struct Sender<T> {
    channel: Arc<Channel<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room or a receiver; fails, handing `value` back, once every
    /// receiver is gone.
    ///
    /// # Errors
    ///
    /// [`SendError`] when every receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(1);
    /// tx.send(1).unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);
    /// ```
    #[inline(always)]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.channel
            .send(value, None)
            .map_err(|err| SendError(err.into_inner()))
    }

    /// Sends `value` if that needs no waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when there is no room and no receiver waits,
    /// [`TrySendError::Disconnected`] when every receiver is gone; both hand `value` back.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = gort::chan::bounded(0);
    /// assert!(tx.try_send(1).unwrap_err().is_full()); // nobody is receiving
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.channel.lock();
        let completion = self.channel.try_send_locked(&mut state, value)?;
        drop(state);
        if let Some(completion) = completion {
            completion.finish();
        }
        Ok(())
    }

    /// Sends `value`, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] when time ran out, [`SendTimeoutError::Disconnected`] when
    /// every receiver is gone; both hand `value` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (tx, _rx) = gort::chan::bounded(0);
    /// let err = tx.send_timeout(1, Duration::from_millis(5)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.channel.send(value, deadline_after(timeout))
    }

    /// Sends `value`, waiting until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As [`Sender::send_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = gort::chan::bounded(1);
    /// tx.send_deadline(1, Instant::now() + Duration::from_millis(5)).unwrap();
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.channel.send(value, Some(deadline))
    }

    pub(crate) fn channel(&self) -> &Channel<T> {
        &self.channel
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.channel.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            channel: Arc::clone(&self.channel),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.channel.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.channel.disconnect_senders();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

/// The receiving side of a channel.
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// let rx2 = rx.clone();
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.recv().unwrap() + rx2.recv().unwrap(), 3);
/// ```
pub struct Receiver<T> {
    channel: Arc<Channel<T>>,
}

impl<T> Receiver<T> {
    /// Receives a value, waiting for one; fails once the channel is empty and every sender is
    /// gone.
    ///
    /// # Errors
    ///
    /// [`RecvError`] when the channel is empty and every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(1);
    /// tx.send(7).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(7)); // buffered values come first
    /// assert!(rx.recv().is_err());
    /// ```
    #[inline(always)]
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.channel.recv(None) {
            Ok(Some(value)) => Ok(value),
            Ok(None) | Err(_) => Err(RecvError),
        }
    }

    /// Receives a value if one is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing is there, [`TryRecvError::Disconnected`] when the
    /// channel is empty and every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// assert!(rx.try_recv().unwrap_err().is_empty());
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.channel.lock();
        let (value, completion) = self.channel.try_recv_locked(&mut state)?;
        drop(state);
        if let Some(completion) = completion {
            completion.finish();
        }
        Ok(value)
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when time ran out, [`RecvTimeoutError::Disconnected`] when
    /// the channel is empty and every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_tx, rx) = gort::chan::unbounded::<u8>();
    /// assert!(rx.recv_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    /// Receives a value, waiting until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As [`Receiver::recv_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = gort::chan::unbounded();
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_millis(5)), Ok(1));
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        match self.channel.recv(deadline) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(RecvTimeoutError::Timeout),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// A blocking iterator over received values; it ends when the channel is empty and every
    /// sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// (1..=3).for_each(|i| tx.send(i).unwrap());
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2, 3]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// An iterator over the values there now; it never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().count(), 2);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { receiver: self }
    }

    pub(crate) fn channel(&self) -> &Channel<T> {
        &self.channel
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.channel.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            channel: Arc::clone(&self.channel),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.channel.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.channel.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// The state queries both ends share, with examples on the end `$side` names (`tx` or `rx`).
macro_rules! buffer_queries {
    ($end:ident, $side:literal) => {
        impl<T> $end<T> {
            #[doc = concat!(
                "Values buffered now.\n\n# Examples\n\n```\n",
                "let (tx, rx) = gort::chan::bounded(3);\n",
                "tx.send(1).unwrap();\n",
                "assert_eq!(", $side, ".len(), 1);\n```"
            )]
            pub fn len(&self) -> usize {
                self.channel.len()
            }

            #[doc = concat!(
                "Whether nothing is buffered now.\n\n# Examples\n\n```\n",
                "let (tx, rx) = gort::chan::bounded::<u8>(3);\n",
                "assert!(", $side, ".is_empty());\n```"
            )]
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            #[doc = concat!(
                "Whether the buffer is full now (always for a rendezvous channel, never for an ",
                "unbounded one).\n\n# Examples\n\n```\n",
                "let (tx, rx) = gort::chan::bounded(1);\n",
                "tx.send(()).unwrap();\n",
                "assert!(", $side, ".is_full());\n```"
            )]
            pub fn is_full(&self) -> bool {
                self.channel.capacity().is_some_and(|cap| self.len() >= cap)
            }

            #[doc = concat!(
                "The buffer's capacity; `None` for an unbounded channel.\n\n# Examples\n\n```\n",
                "let (tx, rx) = gort::chan::bounded::<u8>(4);\n",
                "assert_eq!(", $side, ".capacity(), Some(4));\n",
                "assert_eq!(gort::chan::unbounded::<u8>().0.capacity(), None);\n```"
            )]
            pub fn capacity(&self) -> Option<usize> {
                self.channel.capacity()
            }
        }
    };
}

buffer_queries!(Sender, "tx");
buffer_queries!(Receiver, "rx");

/// A blocking iterator over a [`Receiver`] (from [`Receiver::iter`]).
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// tx.send(1).unwrap();
/// drop(tx);
/// let mut values = rx.iter();
/// assert_eq!(values.next(), Some(1));
/// assert_eq!(values.next(), None);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

/// A non-blocking iterator over a [`Receiver`] (from [`Receiver::try_iter`]).
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded::<u8>();
/// assert_eq!(rx.try_iter().next(), None);
/// # drop(tx);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

/// An owning blocking iterator over a [`Receiver`] (from `into_iter`).
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// tx.send('a').unwrap();
/// drop(tx);
/// assert_eq!(rx.into_iter().collect::<String>(), "a");
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    receiver: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { receiver: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// What `select!` expands to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{ArmRef, MAX_ARMS, RecvArm, SendArm, Wait, select};
    use super::{Receiver, Sender};

    /// A receiver, or a reference to one (what a `recv` arm names).
    pub trait AsReceiver<T> {
        fn as_receiver(&self) -> &Receiver<T>;
    }

    impl<T> AsReceiver<T> for Receiver<T> {
        fn as_receiver(&self) -> &Receiver<T> {
            self
        }
    }

    impl<T, R: AsReceiver<T> + ?Sized> AsReceiver<T> for &R {
        fn as_receiver(&self) -> &Receiver<T> {
            (**self).as_receiver()
        }
    }

    /// A sender, or a reference to one (what a `send` arm names).
    pub trait AsSender<T> {
        fn as_sender(&self) -> &Sender<T>;
    }

    impl<T> AsSender<T> for Sender<T> {
        fn as_sender(&self) -> &Sender<T> {
            self
        }
    }

    impl<T, S: AsSender<T> + ?Sized> AsSender<T> for &S {
        fn as_sender(&self) -> &Sender<T> {
            (**self).as_sender()
        }
    }

    /// The deadline of a `default(timeout)` arm.
    pub fn deadline(timeout: std::time::Duration) -> Wait {
        super::deadline_after(timeout).map_or(Wait::Block, Wait::Until)
    }
}
