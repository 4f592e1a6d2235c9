//! With one processor and `migration(false)`, a goroutine that comes back from `blocking` gets
//! its thread back even while another goroutine keeps the processor busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn a_goroutine_back_from_blocking_gets_a_processor_from_a_busy_one() {
    gort::Runtime::builder()
        .procs(1)
        .migration(false)
        .start()
        .expect("this test binary starts the runtime once");
    let released = Arc::new(AtomicBool::new(false));
    let done = gort::run({
        let released = Arc::clone(&released);
        move || {
            // Keeps the only processor busy until main sets the flag (bounded: fails if main
            // never gets its thread back).
            let spinner = gort::spawn({
                let released = Arc::clone(&released);
                move || {
                    for _ in 0..20_000_000 {
                        if released.load(Ordering::Acquire) {
                            return true;
                        }
                        gort::yield_now();
                    }
                    false
                }
            });
            // The processor goes to another thread, which starts the spinner and so keeps it.
            gort::blocking(|| std::thread::sleep(Duration::from_millis(30)));
            released.store(true, Ordering::Release);
            spinner.join().unwrap()
        }
    });
    assert!(done);
}
