//! Deadlock detection: a program in which nothing can wake any goroutine is reported like Go's
//! `all goroutines are asleep - deadlock!`, with what each goroutine waits for; a program that a
//! plain thread will still wake is left alone.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scenario(name: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scenarios"))
        .arg(name)
        .output()
        .expect("the scenarios binary runs")
}

/// Runs scenario `name` with the environment variables `env` added; kills it after `limit`
/// (its output then says so).
fn scenario_within(name: &str, env: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scenarios"))
        .arg(name)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the scenarios binary runs");
    let deadline = Instant::now() + limit;
    while child
        .try_wait()
        .expect("the scenario can be waited for")
        .is_none()
    {
        if Instant::now() >= deadline {
            child.kill().expect("the scenario can be killed");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the scenario's output")
}

/// Asserts that `out` is a process that reported a deadlock and exited with status 2; answers
/// its standard error.
fn assert_deadlock_reported(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("fatal error: all goroutines are asleep - deadlock!"),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_goroutine_parked_forever_is_a_deadlock() {
    let out = scenario("park-forever");
    let stderr = assert_deadlock_reported(&out);
    assert!(stderr.contains("(main) [park]:"), "{stderr}");
}

/// The timer thread, once a timer started it, is the runtime's own: it hides no deadlock.
#[test]
fn a_deadlock_is_reported_after_a_timer_fired() {
    let out = scenario_within("park-forever-after-a-sleep", &[], Duration::from_secs(30));
    assert_deadlock_reported(&out);
}

/// Collector cycles run as the runtime's own goroutines; frequent ones do not hide a deadlock.
#[test]
fn a_deadlock_is_reported_while_cycles_run_every_2_ms() {
    let out = scenario_within(
        "park-forever",
        &[("GORT_GC_INTERVAL", "2ms")],
        Duration::from_secs(30),
    );
    assert_deadlock_reported(&out);
}

#[test]
fn goroutines_joining_each_other_are_a_deadlock_and_each_is_listed() {
    let out = scenario("join-cycle");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let ids = stderr
        .lines()
        .find_map(|line| line.strip_prefix("a is goroutine "))
        .expect("the scenario names its goroutines");
    let (a, b) = ids.split_once(", b is goroutine ").unwrap();
    assert!(
        stderr.contains(&format!("goroutine {a} (a) [join]:")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("goroutine {b} (b) [join]:")),
        "{stderr}"
    );
    assert!(stderr.contains("(main) [park]:"), "{stderr}");
}

#[test]
fn a_goroutine_a_plain_thread_will_wake_is_not_a_deadlock() {
    let out = scenario("thread-wakes-main");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "woken");
    assert!(!stderr.contains("deadlock"), "{stderr}");
}
