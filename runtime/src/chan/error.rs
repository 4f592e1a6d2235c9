//! Errors of channel operations, following crossbeam-channel: a failed send hands its value back
//! (nothing is lost), and a receive reports disconnection only once the buffer is drained.

use std::error::Error;
use std::fmt;

/// `send` failed because every receiver is gone; the value is handed back.
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// drop(rx);
/// let err = tx.send(5).unwrap_err();
/// assert_eq!(err.into_inner(), 5);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = gort::chan::SendError("unsent");
    /// assert_eq!(err.into_inner(), "unsent");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// `try_send` failed: the channel was full, or every receiver is gone.
///
/// # Examples
///
/// ```
/// use gort::chan::TrySendError;
///
/// let (tx, _rx) = gort::chan::bounded(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// No room, and no receiver waiting; the value is handed back.
    Full(T),
    /// Every receiver is gone; the value is handed back.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = gort::chan::TrySendError::Full(3);
    /// assert_eq!(err.into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(value) | TrySendError::Disconnected(value) => value,
        }
    }

    /// Whether the channel was full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether every receiver was gone.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::TrySendError::Disconnected(()).is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Disconnected(_))
    }
}

/// `send_timeout` or `send_deadline` failed: time ran out, or every receiver is gone.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use gort::chan::SendTimeoutError;
///
/// let (tx, _rx) = gort::chan::bounded(0);
/// let err = tx.send_timeout(1, Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err, SendTimeoutError::Timeout(1));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// Time ran out; the value is handed back.
    Timeout(T),
    /// Every receiver is gone; the value is handed back.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = gort::chan::SendTimeoutError::Timeout('x');
    /// assert_eq!(err.into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(value) | SendTimeoutError::Disconnected(value) => value,
        }
    }

    /// Whether time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::SendTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// Whether every receiver was gone.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::SendTimeoutError::Disconnected(()).is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }
}

/// `recv` failed: the channel is empty and every sender is gone.
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::unbounded::<i32>();
/// drop(tx);
/// assert_eq!(rx.recv(), Err(gort::chan::RecvError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// `try_recv` failed: the channel was empty, or empty with every sender gone.
///
/// # Examples
///
/// ```
/// let (_tx, rx) = gort::chan::unbounded::<i32>();
/// assert_eq!(rx.try_recv(), Err(gort::chan::TryRecvError::Empty));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// Nothing to receive, ever: the channel is empty and every sender is gone.
    Disconnected,
}

impl TryRecvError {
    /// Whether the channel was empty.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::TryRecvError::Empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// Whether every sender was gone.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::TryRecvError::Disconnected.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Disconnected)
    }
}

/// `recv_timeout` or `recv_deadline` failed: time ran out, or the channel is empty and every
/// sender is gone.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let (_tx, rx) = gort::chan::unbounded::<i32>();
/// let err = rx.recv_timeout(Duration::from_millis(1)).unwrap_err();
/// assert!(err.is_timeout());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Time ran out.
    Timeout,
    /// The channel is empty and every sender is gone.
    Disconnected,
}

impl RecvTimeoutError {
    /// Whether time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::RecvTimeoutError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether every sender was gone.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(gort::chan::RecvTimeoutError::Disconnected.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Disconnected)
    }
}

// Like crossbeam and std, the value is not shown: `T` need not be `Debug`.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a disconnected channel")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Disconnected(_) => f.write_str("sending on a disconnected channel"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Disconnected(_) => f.write_str("sending on a disconnected channel"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty and disconnected channel")
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => {
                f.write_str("receiving on an empty and disconnected channel")
            }
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on receive operation"),
            RecvTimeoutError::Disconnected => {
                f.write_str("receiving on an empty and disconnected channel")
            }
        }
    }
}

impl<T> Error for SendError<T> {}
impl<T> Error for TrySendError<T> {}
impl<T> Error for SendTimeoutError<T> {}
impl Error for RecvError {}
impl Error for TryRecvError {}
impl Error for RecvTimeoutError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> Self {
        TrySendError::Disconnected(err.0)
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(err: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(err.0)
    }
}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Disconnected
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Disconnected
    }
}
