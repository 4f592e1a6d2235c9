//! With `migration(false)` a goroutine never leaves the OS thread that first ran it, also across
//! a wait for a collector cycle (which runs as one of the runtime's own goroutines).

use std::time::Duration;

fn thread_id() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

#[test]
fn every_goroutine_stays_on_the_thread_that_first_ran_it() {
    gort::Runtime::builder()
        .migration(false)
        .start()
        .expect("this test binary starts the runtime once");
    let goroutines: Vec<_> = (0..64)
        .map(|i| {
            gort::spawn(move || {
                let home = thread_id();
                for round in 0..100 {
                    match (i + round) % 5 {
                        0 | 1 => gort::yield_now(),
                        2 => gort::spawn(|| ()).join().unwrap(),
                        3 => gort::gc(),
                        _ => gort::blocking(|| std::thread::sleep(Duration::from_micros(20))),
                    }
                    assert_eq!(thread_id(), home, "goroutine {i} moved in round {round}");
                }
            })
        })
        .collect();
    for goroutine in goroutines {
        goroutine.join().unwrap();
    }
}
