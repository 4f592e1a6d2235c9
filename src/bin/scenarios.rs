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
        other => {
            eprintln!("unknown scenario {other:?}: park-forever, join-cycle, thread-wakes-main");
            std::process::exit(64);
        }
    }
}
