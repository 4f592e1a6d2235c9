//! Helpers for unit tests: stress tests' long mode, and tests that must run in a child process
//! (a fault that kills the process, a process-wide mode forced before first use, a resource
//! limit).
//!
//! Stress tests run a short mode by default and a long one with `GORT_LONG_TESTS=1`.
//!
//! The parent re-runs the current test binary on exactly one test with `GORT_TEST_CHILD` naming
//! that test; the test sees the variable and plays the child's part.

use std::process::{Command, Output};

const CHILD_ENV: &str = "GORT_TEST_CHILD";

/// `short` normally, `long` with `GORT_LONG_TESTS=1`.
pub(crate) fn short_or_long(short: usize, long: usize) -> usize {
    if std::env::var_os("GORT_LONG_TESTS").is_some_and(|value| value == "1") {
        long
    } else {
        short
    }
}

/// The harness name of test `name` in module `module` (as given by `module_path!()`).
fn test_path(module: &str, name: &str) -> String {
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    format!("{module}::{name}")
}

/// Whether this process is the child run of test `name` of `module`.
pub(crate) fn is_child(module: &str, name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|child| child == test_path(module, name))
}

/// Runs test `name` of `module` in a child process and returns what it did.
pub(crate) fn run_child(module: &str, name: &str) -> Output {
    let path = test_path(module, name);
    Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([path.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .output()
        .expect("the test binary runs as a child")
}

/// Whether the caller is the child run of test `name` of `module`. In the parent this runs the
/// child, asserts that its one test passed, and answers `false`: the test body runs only in the
/// child.
pub(crate) fn in_passing_child(module: &str, name: &str) -> bool {
    if is_child(module, name) {
        return true;
    }
    let child = run_child(module, name);
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success() && stdout.contains("1 passed"),
        "child run of {name}: {}\n{stdout}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stderr)
    );
    false
}
