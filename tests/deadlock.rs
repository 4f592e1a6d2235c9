//! Deadlock detection: a program in which nothing can wake any goroutine is reported like Go's
//! `all goroutines are asleep - deadlock!`, with what each goroutine waits for; a program that a
//! plain thread will still wake is left alone.

use std::process::{Command, Output};

fn scenario(name: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scenarios"))
        .arg(name)
        .output()
        .expect("the scenarios binary runs")
}

#[test]
fn a_goroutine_parked_forever_is_a_deadlock() {
    let out = scenario("park-forever");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("fatal error: all goroutines are asleep - deadlock!"),
        "{stderr}"
    );
    assert!(stderr.contains("(main) [park]:"), "{stderr}");
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
