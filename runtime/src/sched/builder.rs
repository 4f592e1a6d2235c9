//! Spawning goroutines: [`Builder`] and [`spawn()`].
//!
//! Invariant: a goroutine is counted live before it is queued and uncounted by the M that runs
//! it to its end, so `num_goroutines` never undercounts a goroutine that can still run; the
//! runtime's own goroutines (`spawn_system`) are never counted.

use std::io;

use super::config;
use super::g::GRef;
use super::join::{self, JoinHandle};
use crate::stack::StackSize;

/// Configuration for a new goroutine: its name and stack size.
///
/// # Examples
///
/// ```
/// let handle = gort::Builder::new()
///     .name("worker")
///     .stack_size(1 << 20)
///     .spawn(|| gort::current().unwrap().name().map(str::to_owned))?;
/// assert_eq!(handle.join().unwrap().as_deref(), Some("worker"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a goroutine builder does nothing until it spawns"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::Builder::new().spawn(|| 1)?;
    /// assert_eq!(handle.join().unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine (shown by `gort::current()`, panics and deadlock reports).
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::Builder::new().name("named").spawn(|| ())?;
    /// # handle.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The goroutine's stack reservation in bytes, rounded up to a power of two from 16 KiB to
    /// 1 GiB. Only the pages it touches are committed.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = gort::Builder::new().stack_size(0).spawn(|| ()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the goroutine.
    ///
    /// # Errors
    ///
    /// An invalid stack size or runtime configuration (`InvalidInput`). The stack is taken when
    /// the goroutine first runs; if no memory or address space is left for it then, the
    /// goroutine finishes without running, and `join` returns the reason as its panic payload
    /// (a `String`).
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gort::Builder::new().spawn(|| "hello")?;
    /// assert_eq!(handle.join().unwrap(), "hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_as(false, f)
    }

    /// Spawns the goroutine, counted live unless it is one of the runtime's own (`system`).
    fn spawn_as<F, T>(self, system: bool, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let sched = config::runtime()?;
        let size = match self.stack_size {
            Some(bytes) => StackSize::new(bytes)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
            None => sched.config.stack_size,
        };
        let (g, queued) = GRef::spawn(self.name.map(String::into_boxed_str), size, system);
        // SAFETY: `g` is not queued yet.
        unsafe { join::set_body(&g, f) };
        if system {
            sched.ready_system(queued);
        } else {
            sched.ready_new(queued);
        }
        let handle = JoinHandle::new(g);
        Ok(handle)
    }
}

/// Spawns one of the runtime's own goroutines (a collector cycle), with a stack of `stack_size`
/// bytes: it runs on a processor like any other, but is neither counted by
/// [`num_goroutines`](crate::num_goroutines) nor listed by dumps, deadlock reports or the
/// collector.
pub(crate) fn spawn_system(
    name: &str,
    stack_size: usize,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    Builder::new()
        .name(name)
        .stack_size(stack_size)
        .spawn_as(true, f)
        .map(drop)
}

/// Spawns a goroutine running `f` and returns a handle to join it, like
/// [`std::thread::spawn`].
///
/// # Panics
///
/// If the goroutine cannot be created (see [`Builder::spawn`] for the error instead).
///
/// # Examples
///
/// ```
/// let handles: Vec<_> = (0..10).map(|i| gort::spawn(move || i * i)).collect();
/// let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 285);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn goroutine")
}
