//! Shared helpers of gort's examples, benchmarks and integration tests: what the process costs,
//! read from `/proc/self`, and running a test's body in a child process (for a fault that kills
//! the process, or a report that ends it).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

const CHILD_ENV: &str = "GORT_SUITE_CHILD";

/// Whether this process is the child run of test `name` (see [`run_child`]).
///
/// # Examples
///
/// ```
/// assert!(!gort_suite::is_child("some_test"));
/// ```
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|child| child == name)
}

/// Runs test `name` of the calling test binary in a child process, where [`is_child`] is true,
/// with the environment variables `env` added, and returns what it did.
///
/// # Examples
///
/// ```no_run
/// #[test]
/// fn dies() {
///     if gort_suite::is_child("dies") {
///         std::process::abort();
///     }
///     assert!(!gort_suite::run_child("dies", &[]).status.success());
/// }
/// ```
pub fn run_child(name: &str, env: &[(&str, &str)]) -> Output {
    Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .envs(env.iter().copied())
        .output()
        .expect("the test binary runs as a child")
}

/// Runs test `name` in a child process (see [`run_child`]) and panics unless its one test ran
/// and passed.
///
/// # Examples
///
/// ```no_run
/// #[test]
/// fn sees_the_variable() {
///     if gort_suite::is_child("sees_the_variable") {
///         assert_eq!(std::env::var("X").unwrap(), "1");
///         return;
///     }
///     gort_suite::assert_child_passes("sees_the_variable", &[("X", "1")]);
/// }
/// ```
pub fn assert_child_passes(name: &str, env: &[(&str, &str)]) {
    let child = run_child(name, env);
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success() && stdout.contains("1 passed"),
        "child run of {name}: {}\n{stdout}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stderr)
    );
}

/// Runs test `name` in a child process (see [`run_child`]), panics unless it ended with
/// `SIGABRT`, and answers its standard error.
///
/// # Examples
///
/// ```no_run
/// #[test]
/// fn aborts() {
///     if gort_suite::is_child("aborts") {
///         eprintln!("fatal error: on purpose");
///         std::process::abort();
///     }
///     assert!(gort_suite::child_abort_message("aborts").contains("on purpose"));
/// }
/// ```
pub fn child_abort_message(name: &str) -> String {
    let child = run_child(name, &[]);
    let stderr = String::from_utf8_lossy(&child.stderr).into_owned();
    assert_eq!(
        child.status.signal(),
        Some(libc::SIGABRT),
        "{}\n{stderr}",
        child.status
    );
    stderr
}

/// In a child run whose goroutine ends the process: spawns `body` with `builder`, prints
/// `spawned goroutine ID` on standard error, and only then lets the body start (so the
/// runtime's report cannot interleave with that line), then waits for it.
///
/// # Examples
///
/// ```no_run
/// gort_suite::announce_and_run(gort::Builder::new().name("doomed"), || std::process::abort());
/// ```
pub fn announce_and_run(builder: gort::Builder, body: impl FnOnce() + Send + 'static) {
    let (go_tx, go) = gort::chan::bounded::<()>(0);
    let handle = builder
        .spawn(move || {
            let _ = go.recv();
            body();
        })
        .expect("the child's goroutine spawns");
    eprintln!("spawned goroutine {}", handle.id());
    drop(go_tx);
    let _ = handle.join();
}

/// The id a child printed as `spawned goroutine ID` on standard error (see
/// [`announce_and_run`], [`child_abort_message`]), for matching the runtime's report about that goroutine.
///
/// # Examples
///
/// ```
/// assert_eq!(gort_suite::spawned_id("x\nspawned goroutine 17\n"), "17");
/// ```
pub fn spawned_id(stderr: &str) -> &str {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("spawned goroutine "))
        .expect("the child names its goroutine")
}

/// The resident set size of this process in bytes (`VmRSS`).
///
/// # Examples
///
/// ```
/// assert!(gort_suite::rss_bytes() > 0);
/// ```
pub fn rss_bytes() -> usize {
    status_kib("VmRSS:") * 1024
}

/// The bytes of `[addr, addr + len)` (page aligned) that are resident now, by `mincore`.
///
/// # Examples
///
/// ```
/// let page = vec![1u8; 1 << 20];
/// let addr = page.as_ptr() as usize & !4095;
/// assert!(gort_suite::resident_bytes(addr, 4096) == 4096);
/// ```
pub fn resident_bytes(addr: usize, len: usize) -> usize {
    let page = 4096;
    let mut residency = vec![0u8; len.div_ceil(page)];
    // SAFETY: mincore writes one byte per page of the range into `residency`, which has room.
    let rc = unsafe { libc::mincore(addr as *mut libc::c_void, len, residency.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    residency.iter().filter(|&&byte| byte & 1 != 0).count() * page
}

/// The page-table memory of this process in bytes (`VmPTE`).
///
/// # Examples
///
/// ```
/// assert!(gort_suite::page_table_bytes() > 0);
/// ```
pub fn page_table_bytes() -> usize {
    status_kib("VmPTE:") * 1024
}

/// The number of memory mappings of this process (lines of `/proc/self/maps`).
///
/// # Examples
///
/// ```
/// assert!(gort_suite::mapping_count() > 0);
/// ```
pub fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |maps| maps.lines().count())
}

fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
