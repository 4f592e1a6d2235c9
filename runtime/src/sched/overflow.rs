//! The fault handler that turns a goroutine stack overflow into a clear fatal error.
//!
//! A SIGSEGV or SIGBUS whose address lies in the guard region of a goroutine stack (resolved with
//! `span_of`, which is lock-free and never faults) prints
//! `fatal error: goroutine N [name] stack overflow (reserved K KiB); raise it with
//! Builder::stack_size or GORT_STACK_SIZE` and aborts; in the guard of a stack segment (a
//! goroutine's, or a thread's), `… stack overflow in a K KiB stack segment; …`. Any other fault
//! goes to the handler that was installed before.
//!
//! Invariants:
//! - the handler runs on the thread's alternate signal stack (every M has one), since the
//!   faulting stack has no room left;
//! - it only calls async-signal-safe functions (`write`, `sigaction`, `abort`) and allocates
//!   nothing;
//! - a stack or segment span's owner word points at the goroutine running on it (0 for a
//!   thread's segment), which is alive while it runs, and a fault in its guard can only come
//!   from it; the word is cleared when the goroutine finishes, before the span is reused or the
//!   record recycled;
//! - the heap lookup never initialises the heap (that allocates).

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::g::G;
use crate::heap::{self, SpanKind};
use crate::stack::raw::GUARD_BYTES;

/// The handlers installed before ours, for SIGSEGV and SIGBUS. Reading a `OnceLock` is an
/// atomic load, fine in a signal handler.
static PREVIOUS: OnceLock<[libc::sigaction; 2]> = OnceLock::new();

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs the handler for the process, once.
pub(crate) fn install() {
    PREVIOUS.get_or_init(|| {
        SIGNALS.map(|signal| {
            // SAFETY: zeroed sigactions are valid; the handler is async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fault as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut previous) != 0 {
                    log::warn!(
                        "gort: cannot install the stack overflow handler for signal {signal}"
                    );
                }
                previous
            }
        })
    });
}

/// Gives the calling thread an alternate signal stack if it has none (std gives one to the
/// threads it starts, unless another handler was installed before `main`).
pub(crate) fn ensure_alternate_stack() {
    const SIZE: usize = 64 * 1024;
    // SAFETY: an all-zero stack_t is valid, and querying with a null new stack only writes it.
    let current = unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut current);
        current
    };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    // Leaked on purpose: Ms never exit.
    let Ok(stack) = heap::reserve_address_space(SIZE, 0) else {
        log::warn!(
            "gort: no alternate signal stack for an M: stack overflows will not be reported"
        );
        return;
    };
    let new = libc::stack_t {
        ss_sp: stack as *mut libc::c_void,
        ss_flags: 0,
        ss_size: SIZE,
    };
    // SAFETY: `new` describes the mapping made above, which lives as long as the thread.
    unsafe { libc::sigaltstack(&new, std::ptr::null_mut()) };
}

extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(span) = heap::span_of_in_signal_handler(addr)
        && matches!(span.kind(), SpanKind::Stack | SpanKind::StackSegment)
        && addr < span.base() + GUARD_BYTES
        && (span.owner() != 0 || span.kind() == SpanKind::StackSegment)
    {
        let mut message = Buffer::new();
        if span.owner() == 0 {
            let _ = write!(message, "fatal error: thread stack overflow");
        } else {
            // SAFETY: the owner word names the running (so live) goroutine.
            let g = unsafe { &*(span.owner() as *const G) };
            let _ = write!(message, "fatal error: goroutine {}", g.id());
            if let Some(name) = g.name() {
                let _ = write!(message, " [{name}]");
            }
            let _ = write!(message, " stack overflow");
        }
        let kib = (span.limit() - span.base() - GUARD_BYTES) / 1024;
        let _ = if span.kind() == SpanKind::StackSegment {
            writeln!(
                message,
                " in a {kib} KiB stack segment; grow with a larger segment size"
            )
        } else {
            writeln!(
                message,
                " (reserved {kib} KiB); raise it with Builder::stack_size or GORT_STACK_SIZE"
            )
        };
        message.write_to_stderr();
        // SAFETY: abort is async-signal-safe and ends the process.
        unsafe { libc::abort() };
    }
    chain(signal, info, context);
}

/// Passes a fault that is not a goroutine stack overflow to the previous handler.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let i = usize::from(signal == libc::SIGBUS);
    let (handler, flags) = PREVIOUS.get().map_or((libc::SIG_DFL, 0), |previous| {
        (previous[i].sa_sigaction, previous[i].sa_flags)
    });
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action and return: the faulting access repeats and kills us.
        // SAFETY: resetting a signal's disposition is async-signal-safe.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    } else if flags & libc::SA_SIGINFO != 0 {
        type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
        // SAFETY: the previous handler expects exactly these arguments.
        let previous: Handler = unsafe { std::mem::transmute(handler) };
        previous(signal, info, context);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes only the signal number.
        let previous: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        previous(signal);
    }
}

/// A fixed buffer for a message built without allocating.
struct Buffer {
    bytes: [u8; 256],
    len: usize,
}

impl Buffer {
    fn new() -> Self {
        Buffer {
            bytes: [0; 256],
            len: 0,
        }
    }

    fn write_to_stderr(&self) {
        // SAFETY: write(2) is async-signal-safe and reads `len` initialised bytes.
        unsafe { libc::write(2, self.bytes.as_ptr().cast(), self.len) };
    }
}

impl std::fmt::Write for Buffer {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
