//! Spawning and joining goroutines on the default runtime: results, panics, nesting, volume.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn results_come_back_through_join() {
    let handles: Vec<_> = (0..100u64).map(|i| gort::spawn(move || i * i)).collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..100u64).map(|i| i * i).sum());
}

#[test]
fn panics_come_back_through_join_with_their_payload() {
    let number = std::hint::black_box(7);
    let handle = gort::spawn(move || -> u32 { panic!("goroutine {number} failed") });
    let payload = handle.join().unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("goroutine 7 failed")
    );
    let handle = gort::spawn(|| -> u32 { panic!("static message") });
    assert_eq!(
        handle.join().unwrap_err().downcast_ref::<&str>(),
        Some(&"static message")
    );
    // The runtime carries on.
    assert_eq!(gort::spawn(|| 5).join().unwrap(), 5);
}

#[test]
fn goroutines_spawn_and_join_goroutines() {
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let left = gort::spawn(move || tree(depth - 1));
        let right = gort::spawn(move || tree(depth - 1));
        left.join().unwrap() + right.join().unwrap()
    }
    assert_eq!(gort::run(|| tree(10)), 1024);
}

#[test]
fn a_million_goroutines_spawn_and_join() {
    let count: usize = 1_000_000;
    let ran = Arc::new(AtomicUsize::new(0));
    let total = gort::run({
        let ran = Arc::clone(&ran);
        move || {
            let mut sum = 0u64;
            // In batches, so that the handles of a million goroutines need not exist at once.
            for batch in 0..(count / 10_000) as u64 {
                let handles: Vec<_> = (0..10_000u64)
                    .map(|i| {
                        let ran = Arc::clone(&ran);
                        gort::spawn(move || {
                            ran.fetch_add(1, Ordering::Relaxed);
                            batch * 10_000 + i
                        })
                    })
                    .collect();
                sum += handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
            }
            sum
        }
    });
    assert_eq!(ran.load(Ordering::Relaxed), count);
    assert_eq!(total, (0..count as u64).sum());
}

#[test]
fn join_from_a_plain_thread_and_from_a_goroutine_agree() {
    let handle = gort::spawn(|| gort::current().map(|g| g.id()));
    let id = handle.id();
    assert_eq!(handle.join().unwrap(), Some(id));
    let inner = gort::spawn(|| gort::spawn(|| 3).join().unwrap() + 1);
    assert_eq!(inner.join().unwrap(), 4);
}

#[test]
fn is_finished_turns_true() {
    let handle = gort::spawn(|| ());
    while !handle.is_finished() {
        std::thread::yield_now();
    }
    handle.join().unwrap();
}

#[test]
fn large_results_and_unclaimed_results_are_handled() {
    // Larger than the inline slot: boxed inside the goroutine's record.
    let big = gort::spawn(|| [7u64; 64]).join().unwrap();
    assert_eq!(big.iter().sum::<u64>(), 7 * 64);
    let text = gort::spawn(|| String::from("owned")).join().unwrap();
    assert_eq!(text, "owned");

    // A detached goroutine's result is dropped exactly once, inline or boxed.
    struct Counted(Arc<AtomicUsize>, #[allow(dead_code)] [u64; 8]);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let drops = Arc::clone(&drops);
        drop(gort::spawn(move || Counted(drops, [0; 8])));
        let small = Arc::new(());
        drop(gort::spawn(move || small));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while drops.load(Ordering::SeqCst) < 100 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(drops.load(Ordering::SeqCst), 100);
}

#[test]
fn a_detached_result_whose_drop_panics_or_joins_does_not_stall_the_scheduler() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("dropping a detached result");
        }
    }
    struct JoinsOnDrop(Option<gort::JoinHandle<u32>>);
    impl Drop for JoinsOnDrop {
        fn drop(&mut self) {
            assert_eq!(self.0.take().unwrap().join().unwrap(), 5);
        }
    }
    for _ in 0..50 {
        drop(gort::spawn(|| PanicsOnDrop));
        drop(gort::spawn(|| JoinsOnDrop(Some(gort::spawn(|| 5)))));
    }
    // Everything still runs: each of these needs every processor at some point.
    let handles: Vec<_> = (0..100).map(|i| gort::spawn(move || i)).collect();
    assert_eq!(
        handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>(),
        4950
    );
}

#[test]
fn a_goroutine_without_address_space_for_its_stack_reports_why_through_join() {
    // A child process: the scenario caps its own address space.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scenarios"))
        .arg("no-address-space-for-a-stack")
        .output()
        .expect("the scenarios binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("cannot start (1 GiB stack): cannot allocate a goroutine stack"),
        "{stdout}"
    );
    assert!(
        stdout.contains("closure dropped: true; small: 7"),
        "{stdout}"
    );
}
