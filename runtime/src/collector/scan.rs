//! Scanning one stopped goroutine: its frame-pointer chain and its defer chain, every pointer
//! resolved with `span_of` before it is followed.
//!
//! Invariants:
//! - the caller holds the goroutine's scan claim, so its stack, segment links and defer chain
//!   stay as they are for the whole scan;
//! - nothing is read through a pointer until `span_of` placed it, whole, in the usable part of
//!   a span that is in use and may hold it: a frame in one of the goroutine's own stack or
//!   segment spans (its owner word names the goroutine), a defer record there or in a defer
//!   span. A pointer that fails is a bad pointer, and the walk stops at it;
//! - a frame walk ends at the goroutine's entry frame, and each step moves up its span (a walk
//!   cannot loop).

use std::fmt;

use crate::heap::{self, SpanInfo, SpanKind};
use crate::sched::G;
use crate::stack::raw::GUARD_BYTES;

/// Whether the build keeps frame pointers (`-C force-frame-pointers=yes`, which this
/// repository's `.cargo/config.toml` sets): without them there is no chain to walk.
pub(crate) const FRAME_POINTERS: bool = cfg!(gort_frame_pointers);

/// The most frames (or defer records) a walk follows before it calls the chain a loop.
const MAX_FRAMES: usize = 1 << 24;

/// What a scan found.
#[derive(Default)]
pub(crate) struct Scan {
    /// Frames walked.
    pub(crate) frames: usize,
    /// Defer records walked.
    pub(crate) defers: usize,
    /// Stack bytes in use, over the stack and its segments.
    pub(crate) in_use: usize,
    /// The bad pointers found, at most one per chain (a walk stops at one).
    pub(crate) bad: Vec<BadPointer>,
}

/// A pointer found in a goroutine's chains that does not lie where it must.
pub(crate) struct BadPointer {
    report: String,
}

impl fmt::Display for BadPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

/// Scans goroutine `g`, whose scan claim the caller holds.
pub(crate) fn scan(g: &G) -> Scan {
    let mut scan = Scan::default();
    match walk_frames_from(g, None, |_| ()) {
        Ok(walk) => {
            scan.frames = walk.frames;
            scan.in_use = walk.in_use;
        }
        Err(bad) => scan.bad.push(bad),
    }
    match walk_defers(g) {
        Ok(defers) => scan.defers = defers,
        Err(bad) => scan.bad.push(bad),
    }
    scan
}

/// What a frame walk measured.
pub(crate) struct FrameWalk {
    pub(crate) frames: usize,
    pub(crate) in_use: usize,
}

/// Walks the frame-pointer chain of `g` to its entry frame, calling `visit` with each frame's
/// return address:
/// from the frame that suspended (the caller holds its scan claim), or from frame pointer
/// `from` in the caller's own frames (`g` is the caller).
pub(crate) fn walk_frames_from(
    g: &G,
    from: Option<usize>,
    mut visit: impl FnMut(usize),
) -> Result<FrameWalk, BadPointer> {
    let (suspended, entry) = g.stopped.frames();
    let (mut fp, sp) = match from {
        Some(fp) => (fp, crate::stack::registers::stack_pointer()),
        None => (suspended, g.stopped.sp()),
    };
    let owner = std::ptr::from_ref(g) as u64;
    let mut walk = FrameWalk {
        frames: 0,
        in_use: 0,
    };
    if fp == 0 {
        return Ok(walk); // it never ran: no frames
    }
    // The span being walked and the lowest address seen in it.
    let mut current = stack_span(sp, owner, 1, g, "the stack pointer")?;
    let mut lowest = sp;
    // Each crossing moves out one segment: more crossings than segments would be a loop.
    let mut crossings_left = g.growth.segments().count();
    if !FRAME_POINTERS {
        walk.in_use = current.limit() - sp;
        return Ok(walk);
    }
    loop {
        let span = stack_span(
            fp,
            owner,
            2 * size_of::<usize>(),
            g,
            "the frame-pointer chain",
        )?;
        if span.base() != current.base() {
            if crossings_left == 0 {
                return Err(bad(
                    g,
                    fp,
                    &span,
                    "the frame-pointer chain (a loop across segments)",
                ));
            }
            crossings_left -= 1;
            walk.in_use += current.limit() - lowest;
            current = span;
            lowest = fp;
        } else if fp < lowest {
            // A frame below the stack pointer, or a chain that went down.
            return Err(bad(
                g,
                fp,
                &span,
                "the frame-pointer chain (a frame below the last)",
            ));
        }
        // `fp` and the word above it lie in the usable part of a span in use, owned by the
        // stopped goroutine (checked just above); its frames do not change meanwhile.
        // SAFETY: as just said, both words are readable and stable.
        let (caller_fp, return_address) = unsafe {
            let words = fp as *const usize;
            (words.read(), words.add(1).read())
        };
        visit(return_address);
        walk.frames += 1;
        if fp == entry {
            walk.in_use += current.limit() - lowest;
            return Ok(walk);
        }
        if walk.frames >= MAX_FRAMES || caller_fp == fp {
            return Err(bad(g, caller_fp, &span, "the frame-pointer chain (a loop)"));
        }
        if span.contains(caller_fp) && caller_fp < fp {
            return Err(bad(
                g,
                caller_fp,
                &span,
                "the frame-pointer chain (a frame below the last)",
            ));
        }
        fp = caller_fp;
    }
}

/// Walks the defer chain of `g` (whose scan claim the caller holds): answers its length.
fn walk_defers(g: &G) -> Result<usize, BadPointer> {
    let owner = std::ptr::from_ref(g) as u64;
    let mut record = g.defers.newest();
    let mut records = 0;
    while record != 0 {
        let where_found = "the defer chain";
        let span = heap::span_of(record).ok_or_else(|| unresolved(g, record, where_found))?;
        let fits = record.is_multiple_of(align_of::<usize>())
            && record + crate::defer::RECORD_BYTES <= span.limit();
        let allowed = match span.kind() {
            SpanKind::Defer => true,
            SpanKind::Stack | SpanKind::StackSegment => {
                span.owner() == owner && record >= span.base() + GUARD_BYTES
            }
        };
        if !fits || !allowed {
            return Err(bad(g, record, &span, where_found));
        }
        records += 1;
        if records > MAX_FRAMES {
            return Err(bad(g, record, &span, "the defer chain (a loop)"));
        }
        // The record lies whole in a span in use where the goroutine's records live (checked
        // just above), and the goroutine is stopped.
        // SAFETY: as just said.
        record = unsafe { crate::defer::older(record) };
    }
    Ok(records)
}

/// The span of `addr`, which must be one of goroutine `g`'s stack or segment spans (`owner`),
/// with `len` bytes from `addr` in its usable part.
fn stack_span(
    addr: usize,
    owner: u64,
    len: usize,
    g: &G,
    where_found: &str,
) -> Result<SpanInfo, BadPointer> {
    let span = heap::span_of(addr).ok_or_else(|| unresolved(g, addr, where_found))?;
    let usable = addr >= span.base() + GUARD_BYTES
        && addr.checked_add(len).is_some_and(|end| end <= span.limit());
    let ours =
        matches!(span.kind(), SpanKind::Stack | SpanKind::StackSegment) && span.owner() == owner;
    if usable && ours && addr.is_multiple_of(align_of::<usize>()) {
        Ok(span)
    } else {
        Err(bad(g, addr, &span, where_found))
    }
}

/// A pointer `span_of` does not resolve: the heap describes what it saw.
fn unresolved(g: &G, addr: usize, where_found: &str) -> BadPointer {
    BadPointer {
        report: heap::bad_pointer(addr, &describe(g, where_found)).to_string(),
    }
}

/// A pointer into a span where it must not lie.
fn bad(g: &G, addr: usize, span: &SpanInfo, where_found: &str) -> BadPointer {
    BadPointer {
        report: format!(
            "pointer {addr:#x} misplaced in {} span [{:#x}, {:#x}) owned by {:#x} found in {}",
            span.kind(),
            span.base(),
            span.limit(),
            span.owner(),
            describe(g, where_found),
        ),
    }
}

fn describe(g: &G, where_found: &str) -> String {
    format!("{where_found} of goroutine {}", g.id())
}
