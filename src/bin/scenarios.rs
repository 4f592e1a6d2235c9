//! Whole programs that the integration tests run as child processes, because what they check
//! ends the process (a deadlock report) or depends on no other thread existing (the test
//! harness runs tests on threads of its own).
//!
//! ```text
//! cargo run --bin scenarios -- SCENARIO
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    match scenario.as_str() {
        // The main goroutine parks and nothing can wake it.
        "park-forever" => gort::run(|| {
            loop {
                gort::park();
            }
        }),
        // The main goroutine sleeps once (which starts the timer thread), then parks for good.
        "park-forever-after-a-sleep" => gort::run(|| {
            gort::time::sleep(Duration::from_millis(1));
            loop {
                gort::park();
            }
        }),
        // Two goroutines join each other; main joins one of them.
        "join-cycle" => gort::run(|| {
            let (to_a, from_main) = std::sync::mpsc::channel::<gort::JoinHandle<()>>();
            let a = gort::Builder::new()
                .name("a")
                .spawn(move || {
                    let b = gort::blocking(|| from_main.recv().unwrap());
                    b.join().unwrap();
                })
                .unwrap();
            let (to_b, from_main_b) = std::sync::mpsc::channel::<gort::JoinHandle<()>>();
            let b = gort::Builder::new()
                .name("b")
                .spawn(move || {
                    let a = gort::blocking(|| from_main_b.recv().unwrap());
                    a.join().unwrap();
                })
                .unwrap();
            let (a_id, b_id) = (a.id(), b.id());
            eprintln!("a is goroutine {a_id}, b is goroutine {b_id}");
            to_b.send(a).unwrap();
            to_a.send(b).unwrap();
            loop {
                gort::park();
            }
        }),
        // The main goroutine parks until a plain thread wakes it 100 ms later: not a deadlock.
        "thread-wakes-main" => {
            let done = gort::run(|| {
                let me = gort::current().unwrap();
                let woken = Arc::new(AtomicBool::new(false));
                let waker = std::thread::spawn({
                    let woken = Arc::clone(&woken);
                    move || {
                        std::thread::sleep(Duration::from_millis(100));
                        woken.store(true, Ordering::Release);
                        me.unpark();
                    }
                });
                while !woken.load(Ordering::Acquire) {
                    gort::park();
                }
                gort::blocking(|| waker.join().unwrap());
                "woken"
            });
            println!("{done}");
        }
        // With no address space left for its stack, a spawned goroutine never runs: its
        // closure is dropped and `join` reports why.
        "no-address-space-for-a-stack" => {
            let report = gort::run(|| {
                limit_address_space_to_current_plus(256 << 20);
                let dropped = Arc::new(AtomicBool::new(false));
                let guard = DropFlag(Arc::clone(&dropped));
                let handle = gort::Builder::new()
                    .stack_size(1 << 30)
                    .spawn(move || {
                        let _guard = guard;
                        "ran"
                    })
                    .expect("spawning only queues the goroutine");
                let payload = handle.join().expect_err("the goroutine cannot start");
                let reason = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default();
                // Small goroutines still run from the stacks already cached.
                let small = gort::spawn(|| 7).join().unwrap();
                format!(
                    "{reason}; closure dropped: {}; small: {small}",
                    dropped.load(Ordering::Acquire)
                )
            });
            println!("{report}");
        }
        other => {
            eprintln!(
                "unknown scenario {other:?}: park-forever, join-cycle, thread-wakes-main, \
                 no-address-space-for-a-stack"
            );
            std::process::exit(64);
        }
    }
}

/// Sets a flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Caps the process's address space (`RLIMIT_AS`) at what it uses now plus `extra` bytes.
fn limit_address_space_to_current_plus(extra: u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize in /proc/self/status");
    let limit = libc::rlimit {
        rlim_cur: kib * 1024 + extra,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    let result = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(result, 0, "setrlimit: {}", std::io::Error::last_os_error());
}
