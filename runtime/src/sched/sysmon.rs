//! sysmon: a background thread that retakes the P of an M stuck in one goroutine's user code (a
//! blocking system call, a long computation) for more than 10 ms and hands it to another M, so
//! the P's other goroutines run on.
//!
//! It also reports a deadlock, like Go: when every goroutine waits and nothing can wake any of
//! them, on two consecutive checks with no scheduling or thread wake-up in between, it prints
//! each goroutine with what it waits for and exits with status 2.
//!
//! Invariant: sysmon only retakes a P it saw running user code at the same scheduling tick for
//! the whole retake interval; the ownership handshake (`ownership`) makes the retake exclusive
//! with the M taking its P back.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use super::registry;
use super::scheduler::Scheduler;

/// How long a P may stay in one goroutine's user code before sysmon retakes it.
const RETAKE_AFTER: Duration = Duration::from_millis(10);
/// sysmon's polling interval while some P runs user code, and while none does.
const BUSY_POLL: Duration = Duration::from_millis(1);
const IDLE_POLL: Duration = Duration::from_millis(10);

/// Starts sysmon for `sched`.
pub(crate) fn start(sched: &'static Scheduler) {
    super::scheduler::count_service_thread();
    thread::Builder::new()
        .name("gort-sysmon".into())
        .spawn(move || run(sched))
        .expect("cannot start the gort sysmon thread");
}

fn run(sched: &'static Scheduler) {
    // P -> (tick, when sysmon first saw it at that tick).
    let mut seen: HashMap<usize, (u64, Instant)> = HashMap::new();
    // The activity count at the last check that found every goroutine asleep.
    let mut asleep_before: Option<u64> = None;
    loop {
        let now = Instant::now();
        let mut busy = false;
        let mut still: HashMap<usize, (u64, Instant)> = HashMap::with_capacity(seen.len());
        for (p, tick) in sched.busy_ps() {
            busy = true;
            let since = match seen.get(&p) {
                Some(&(seen_tick, since)) if seen_tick == tick => since,
                _ => now,
            };
            if now.duration_since(since) >= RETAKE_AFTER && sched.retake(p, tick) {
                continue;
            }
            still.insert(p, (tick, since));
        }
        seen = still;
        if busy {
            crate::net::poll_if_stale(RETAKE_AFTER);
        }
        asleep_before = if busy {
            None
        } else {
            let activity = sched.activity();
            let asleep = sched.all_asleep() && activity == sched.activity();
            if asleep && asleep_before == Some(activity) {
                report_deadlock();
            }
            asleep.then_some(activity)
        };
        thread::sleep(if busy { BUSY_POLL } else { IDLE_POLL });
    }
}

fn report_deadlock() -> ! {
    let mut report = String::from("fatal error: all goroutines are asleep - deadlock!\n");
    let mut goroutines: Vec<_> = registry::live()
        .iter()
        .map(|g| (g.id(), g.name().map(str::to_owned), g.wait_reason()))
        .collect();
    goroutines.sort_by_key(|&(id, _, _)| id);
    for (id, name, reason) in goroutines {
        match name {
            Some(name) => report.push_str(&format!("\ngoroutine {id} ({name}) [{reason}]:")),
            None => report.push_str(&format!("\ngoroutine {id} [{reason}]:")),
        }
    }
    eprintln!("{report}");
    std::process::exit(2);
}
