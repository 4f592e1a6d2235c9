//! Shared helpers of gort's examples, benchmarks and integration tests: what the process costs,
//! read from `/proc/self`, and running a test's body in a child process (for a fault that kills
//! the process, or a report that ends it).

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
/// and returns what it did.
///
/// # Examples
///
/// ```no_run
/// #[test]
/// fn dies() {
///     if gort_suite::is_child("dies") {
///         std::process::abort();
///     }
///     assert!(!gort_suite::run_child("dies").status.success());
/// }
/// ```
pub fn run_child(name: &str) -> Output {
    Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("the test binary runs as a child")
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
