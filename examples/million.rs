//! Parks a million goroutines and prints what each costs in resident memory.
//!
//! Each goroutine joins the next one, so all but the last are parked in `join`; the last waits
//! for a release flag. Then the chain unwinds.
//!
//! ```text
//! cargo run --release --example million [COUNT]
//! ```

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let count: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|err| format!("COUNT {arg:?}: {err}"))?,
        None => 1_000_000,
    };
    if count < 2 {
        return Err("COUNT must be at least 2".into());
    }
    let rss_before = gort_suite::rss_bytes();
    let started = Instant::now();
    let release = Arc::new(AtomicBool::new(false));
    let parked = Arc::new(AtomicUsize::new(0));
    let depth = gort::run({
        let (release, parked) = (Arc::clone(&release), Arc::clone(&parked));
        move || {
            let mut next = gort::spawn(move || {
                while !release.load(Ordering::Acquire) {
                    gort::yield_now();
                }
                0usize
            });
            for _ in 1..count {
                let (following, parked) = (next, Arc::clone(&parked));
                next = gort::spawn(move || {
                    parked.fetch_add(1, Ordering::Relaxed);
                    following.join().expect("the chain does not panic") + 1
                });
            }
            next
        }
    });
    while parked.load(Ordering::Relaxed) < count - 1 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Let the last arrivals finish switching out.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let elapsed = started.elapsed();
    let rss = gort_suite::rss_bytes();
    println!(
        "{count} goroutines spawned and parked in {elapsed:.2?}; {} goroutines exist",
        gort::num_goroutines()
    );
    println!(
        "RSS {:.1} MiB -> {:.1} MiB: {:.2} KiB per parked goroutine (page tables {:.1} MiB more, kernel memory)",
        rss_before as f64 / (1 << 20) as f64,
        rss as f64 / (1 << 20) as f64,
        (rss - rss_before) as f64 / count as f64 / 1024.0,
        gort_suite::page_table_bytes() as f64 / (1 << 20) as f64,
    );
    release.store(true, Ordering::Release);
    let unwound = Instant::now();
    assert_eq!(depth.join().expect("the chain does not panic"), count - 1);
    println!("the chain unwound in {:.2?}", unwound.elapsed());
    Ok(())
}
