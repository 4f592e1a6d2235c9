//! Reserves a million goroutine stacks, runs a coroutine on one of them that recurses 200 KiB
//! deep, and prints what that costs: resident memory, page tables and memory mappings.
//!
//! ```text
//! cargo run --release --example million_stacks [COUNT]
//! ```

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use corosensei::{Coroutine, Yielder};
use gort::stack::{self, Stack, StackSize};

const KIB: usize = 1024;
const MIB: f64 = 1024.0 * 1024.0;

fn report(when: &str) {
    println!(
        "{when:<24} RSS {:>8.1} MiB, page tables {:>7.1} MiB, {} mappings",
        gort_suite::rss_bytes() as f64 / MIB,
        gort_suite::page_table_bytes() as f64 / MIB,
        gort_suite::mapping_count()
    );
}

/// Recurses with 1 KiB frames until `bytes` below `top` are in use; answers the depth reached.
#[inline(never)]
fn recurse(top: usize, bytes: usize) -> usize {
    let frame = black_box([1u8; KIB]);
    if top - frame.as_ptr() as usize >= bytes {
        return 1;
    }
    let depth = 1 + recurse(top, bytes);
    black_box(&frame);
    depth
}

fn main() -> Result<(), Box<dyn Error>> {
    let count: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|err| format!("COUNT {arg:?}: {err}"))?,
        None => 1_000_000,
    };
    println!("stack guards: {}", stack::guard_mode());
    report("start");

    let started = Instant::now();
    let mut stacks = (0..count)
        .map(|_| Stack::new(StackSize::DEFAULT))
        .collect::<Result<Vec<_>, _>>()?;
    let elapsed = started.elapsed();
    println!(
        "reserved {count} stacks of {} in {elapsed:.2?} ({:.0} ns each), {:.1} GiB of address space",
        StackSize::DEFAULT,
        elapsed.as_nanos() as f64 / count as f64,
        gort::heap::stats().reserved_bytes as f64 / (1 << 30) as f64,
    );
    report("after reserving");

    let stack = stacks.pop().ok_or("COUNT must be at least 1")?;
    let top = stack.top();
    let stack_before = stack.resident_bytes()?;
    let rss_before = gort_suite::rss_bytes();
    let mut coroutine = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
        recurse(top, 200 * KIB)
    });
    let depth = coroutine
        .resume(())
        .as_return()
        .ok_or("the coroutine returns")?;
    let rss_after = gort_suite::rss_bytes();
    let stack = coroutine.into_stack();
    println!(
        "a coroutine recursed {depth} frames (200 KiB) deep on one of them: its stack went from {} KiB to {} KiB \
         resident, the process RSS grew by {} KiB",
        stack_before / KIB,
        stack.resident_bytes()? / KIB,
        rss_after.saturating_sub(rss_before) / KIB
    );
    report("after the recursion");

    drop(stack);
    drop(stacks);
    report("after dropping them");
    Ok(())
}
