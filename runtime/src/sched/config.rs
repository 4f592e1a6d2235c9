//! Runtime configuration: `Runtime::builder()`, the `GORT_*` environment variables, and the
//! errors that name a bad value.
//!
//! Invariant: the process has one runtime, started once with one [`Config`]; starting it again
//! succeeds only with the same settings.

use std::fmt;
use std::io;
use std::time::Duration;

use super::scheduler;
use crate::stack::{StackSize, StackSizeError};

/// The most processors a runtime may have.
const MAX_PROCS: usize = 4096;

/// The settings a runtime runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) procs: usize,
    pub(crate) stack_size: StackSize,
    pub(crate) migration: bool,
    /// How often the collector runs a cycle by itself; `None`: only on `gort::gc()`.
    pub(crate) gc_interval: Option<Duration>,
    /// `GORT_DEBUG=verify`: a bad pointer found by the collector aborts the process.
    pub(crate) verify: bool,
}

/// The collector's default interval between cycles.
const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(1);

/// The process's runtime. It starts by itself, with defaults and the environment, on first use;
/// [`Runtime::builder`] configures it before that.
///
/// # Examples
///
/// ```standalone_crate
/// gort::Runtime::builder().procs(2).start()?;
/// assert_eq!(gort::run(|| 1 + 1), 2);
/// # Ok::<(), gort::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Runtime(());

impl Runtime {
    /// A builder for the runtime's settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = gort::Runtime::builder().stack_size(512 * 1024).migration(true);
    /// # let _ = builder;
    /// ```
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }
}

/// Settings for the runtime, applied by [`RuntimeBuilder::start`].
///
/// Unset values come from the environment (`GORT_PROCS`, `GORT_STACK_SIZE`, `GORT_GC_INTERVAL`),
/// then from defaults: one processor per available core, 256 KiB stacks, migration allowed, a
/// collector cycle every second. `GORT_DEBUG=verify` makes a bad pointer found by the collector
/// abort the process (it is reported either way).
///
/// # Examples
///
/// ```standalone_crate
/// gort::Runtime::builder().procs(2).start()?;
/// # Ok::<(), gort::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a runtime builder does nothing until started"]
pub struct RuntimeBuilder {
    procs: Option<usize>,
    stack_size: Option<usize>,
    migration: Option<bool>,
    gc_interval: Option<Option<Duration>>,
}

impl RuntimeBuilder {
    /// The number of processors: goroutines running at once (Go's `GOMAXPROCS`), 1 to 4096.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = gort::Runtime::builder().procs(0).start().unwrap_err();
    /// assert_eq!(err.to_string(), "procs 0 is out of range: 1 to 4096");
    /// ```
    pub fn procs(mut self, procs: usize) -> Self {
        self.procs = Some(procs);
        self
    }

    /// The default stack reservation of goroutines, in bytes (rounded up to a power of two from
    /// 16 KiB to 1 GiB).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = gort::Runtime::builder().stack_size(1024).start().unwrap_err();
    /// assert!(err.to_string().contains("1024"));
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Whether a goroutine may resume on another OS thread than the one it last ran on (the
    /// default). With `false` a goroutine stays on the thread that first ran it, so thread-local
    /// storage keeps working across blocking calls, at the cost of load balance.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = gort::Runtime::builder().migration(false);
    /// # let _ = builder;
    /// ```
    pub fn migration(mut self, allowed: bool) -> Self {
        self.migration = Some(allowed);
        self
    }

    /// How often the collector runs a cycle by itself (default: every second, or
    /// `GORT_GC_INTERVAL` such as `500ms`, `2s` or `off`). Between two, a cycle also starts when
    /// the goroutine stacks held from the heap have doubled since the last one ended (at least
    /// 64 MiB of them), like Go's `GOGC=100`. `None` runs cycles only on
    /// [`gort::gc`](crate::gc).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let builder = gort::Runtime::builder().gc_interval(Some(Duration::from_millis(250)));
    /// # let _ = builder;
    /// ```
    pub fn gc_interval(mut self, interval: Option<Duration>) -> Self {
        self.gc_interval = Some(interval);
        self
    }

    /// Starts the runtime with these settings.
    ///
    /// # Errors
    ///
    /// A value out of range, a bad `GORT_*` variable, or a runtime already running with other
    /// settings (starting it again with the same settings succeeds).
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// gort::Runtime::builder().procs(2).start()?;
    /// gort::Runtime::builder().procs(2).start()?; // same settings: fine
    /// assert!(gort::Runtime::builder().procs(3).start().is_err());
    /// # Ok::<(), gort::ConfigError>(())
    /// ```
    pub fn start(self) -> Result<(), ConfigError> {
        let config = self.resolve()?;
        let running = scheduler::start(config).config;
        if running == config {
            Ok(())
        } else {
            Err(ConfigError::AlreadyStarted {
                running: describe(running),
                requested: describe(config),
            })
        }
    }

    fn resolve(&self) -> Result<Config, ConfigError> {
        let procs = match self.procs {
            Some(procs) => procs,
            None => match env("GORT_PROCS")? {
                Some(text) => text.trim().parse().map_err(|_| ConfigError::Env {
                    variable: "GORT_PROCS",
                    value: text.clone(),
                    reason: "not a whole number".into(),
                })?,
                None => std::thread::available_parallelism().map_or(1, usize::from),
            },
        };
        if !(1..=MAX_PROCS).contains(&procs) {
            if self.procs.is_none() {
                return Err(ConfigError::Env {
                    variable: "GORT_PROCS",
                    value: procs.to_string(),
                    reason: format!("out of range: 1 to {MAX_PROCS}"),
                });
            }
            return Err(ConfigError::Procs { value: procs });
        }
        let stack_size = match self.stack_size {
            Some(bytes) => StackSize::new(bytes).map_err(ConfigError::StackSize)?,
            None => match env("GORT_STACK_SIZE")? {
                Some(text) => text
                    .parse()
                    .map_err(|err: StackSizeError| ConfigError::Env {
                        variable: "GORT_STACK_SIZE",
                        value: text.clone(),
                        reason: err.to_string(),
                    })?,
                None => StackSize::DEFAULT,
            },
        };
        let gc_interval = match self.gc_interval {
            Some(interval) => interval,
            None => match env("GORT_GC_INTERVAL")? {
                Some(text) => parse_interval(&text).map_err(|reason| ConfigError::Env {
                    variable: "GORT_GC_INTERVAL",
                    value: text.clone(),
                    reason,
                })?,
                None => Some(DEFAULT_GC_INTERVAL),
            },
        };
        let verify = match env("GORT_DEBUG")? {
            Some(text) => parse_debug(&text).map_err(|reason| ConfigError::Env {
                variable: "GORT_DEBUG",
                value: text.clone(),
                reason,
            })?,
            None => false,
        };
        Ok(Config {
            procs,
            stack_size,
            migration: self.migration.unwrap_or(true),
            gc_interval,
            verify,
        })
    }
}

/// Parses a collector interval: `off`, `0`, or a number with a unit (`ns`, `us`, `ms`, `s`,
/// `m`), like Go's durations.
fn parse_interval(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text == "off" || text == "0" {
        return Ok(None);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| "missing a unit: write it like 500ms, 2s or off".to_owned())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let seconds_per_unit = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("unknown unit {unit:?}: use ns, us, ms, s or m")),
    };
    let interval = Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| "out of range".to_owned())?;
    Ok((!interval.is_zero()).then_some(interval))
}

/// Parses `GORT_DEBUG`: a comma-separated list of debug options (only `verify` for now).
fn parse_debug(text: &str) -> Result<bool, String> {
    let mut verify = false;
    for option in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match option {
            "verify" | "verify=1" => verify = true,
            "verify=0" => verify = false,
            other => return Err(format!("unknown option {other:?}: the options are verify")),
        }
    }
    Ok(verify)
}

fn env(variable: &'static str) -> Result<Option<String>, ConfigError> {
    match std::env::var(variable) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => Err(ConfigError::Env {
            variable,
            value: value.to_string_lossy().into_owned(),
            reason: "not valid Unicode".into(),
        }),
    }
}

fn describe(config: Config) -> String {
    format!(
        "procs {}, stack size {}, migration {}, gc interval {}",
        config.procs,
        config.stack_size,
        if config.migration { "allowed" } else { "off" },
        match config.gc_interval {
            Some(interval) => format!("{interval:?}"),
            None => "off".to_owned(),
        }
    )
}

/// The running scheduler, started from the environment and defaults if it is not running.
pub(crate) fn runtime() -> Result<&'static scheduler::Scheduler, ConfigError> {
    match scheduler::get() {
        Some(running) => Ok(running),
        None => Ok(scheduler::start(RuntimeBuilder::default().resolve()?)),
    }
}

/// Why the runtime could not start with the requested settings.
///
/// # Examples
///
/// ```standalone_crate
/// use gort::{ConfigError, Runtime};
///
/// match Runtime::builder().procs(100_000).start() {
///     Err(ConfigError::Procs { value }) => assert_eq!(value, 100_000),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A processor count out of range.
    Procs {
        /// The requested count.
        value: usize,
    },
    /// A stack size out of range.
    StackSize(StackSizeError),
    /// An environment variable with a bad value.
    Env {
        /// The variable's name.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The runtime already runs with other settings.
    AlreadyStarted {
        /// The settings it runs with.
        running: String,
        /// The settings requested.
        requested: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Procs { value } => {
                write!(f, "procs {value} is out of range: 1 to {MAX_PROCS}")
            }
            ConfigError::StackSize(err) => err.fmt(f),
            ConfigError::Env {
                variable,
                value,
                reason,
            } => write!(f, "{variable}={value:?} is invalid: {reason}"),
            ConfigError::AlreadyStarted { running, requested } => write!(
                f,
                "the gort runtime already runs with {running}; cannot start it with {requested}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for io::Error {
    fn from(err: ConfigError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_intervals_parse_like_go_durations() {
        assert_eq!(parse_interval("1s"), Ok(Some(Duration::from_secs(1))));
        assert_eq!(
            parse_interval(" 250ms "),
            Ok(Some(Duration::from_millis(250)))
        );
        assert_eq!(parse_interval("1.5m"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_interval("20us"), Ok(Some(Duration::from_micros(20))));
        assert_eq!(parse_interval("off"), Ok(None));
        assert_eq!(parse_interval("0"), Ok(None));
        assert_eq!(parse_interval("0ms"), Ok(None));
        assert!(parse_interval("10").unwrap_err().contains("missing a unit"));
        assert!(parse_interval("10 h").unwrap_err().contains("unknown unit"));
        assert!(parse_interval("ms").unwrap_err().contains("not a number"));
        assert!(parse_interval("1e99s").is_err());
    }

    #[test]
    fn debug_options_parse() {
        assert_eq!(parse_debug("verify"), Ok(true));
        assert_eq!(parse_debug("verify=1,"), Ok(true));
        assert_eq!(parse_debug("verify,verify=0"), Ok(false));
        assert_eq!(parse_debug(""), Ok(false));
        assert!(parse_debug("trace").unwrap_err().contains("unknown option"));
    }
}
