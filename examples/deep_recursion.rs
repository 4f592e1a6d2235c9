//! Recurses 64 MiB deep in a goroutine whose stack reservation is 256 KiB: every few frames the
//! recursion calls `gort::stack::maybe_grow`, which moves it onto a new 1 MiB segment when less
//! than 64 KiB remain.
//!
//! ```text
//! cargo run --release --example deep_recursion [MIB]
//! ```

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

/// Bytes of locals in each frame of the recursion.
const FRAME: usize = 1024;

/// Recurses `depth` frames of about [`FRAME`] bytes, checking growth every 16 frames; answers
/// the number of frames it went through.
fn descend(depth: u64) -> u64 {
    let frame = black_box([depth as u8; FRAME]);
    if depth == 0 {
        return 0;
    }
    let below = if depth.is_multiple_of(16) {
        gort::stack::maybe_grow(64 * 1024, 1 << 20, || descend(depth - 1))
    } else {
        descend(depth - 1)
    };
    below + 1 + u64::from(black_box(frame)[0].wrapping_sub(depth as u8))
}

fn main() -> Result<(), Box<dyn Error>> {
    let mib: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|err| format!("MIB {arg:?}: {err}"))?,
        None => 64,
    };
    let frames = mib * (1 << 20) / FRAME as u64;
    let started = Instant::now();
    let deep = gort::Builder::new()
        .name("deep")
        .stack_size(256 * 1024)
        .spawn(move || descend(frames))?;
    let depth = deep.join().map_err(|_| "the recursion panicked")?;
    assert_eq!(depth, frames);
    println!(
        "recursed {depth} frames of {FRAME} bytes ({mib} MiB and more) on a 256 KiB reservation in {:.1?}",
        started.elapsed()
    );
    Ok(())
}
