//! The goroutine dump: every goroutine with what it waits for and its symbolized frames, like
//! Go's traceback; printed by [`dump_goroutines`] and on `SIGQUIT`.
//!
//! Invariants:
//! - a dump holds the `SCANNER` lock, so it never competes with a cycle for a goroutine's claim,
//!   and holds each goroutine's claim only while it copies the return addresses of its frames:
//!   symbolizing (slow: it reads debug information) happens after the claim is released; a
//!   dump from a goroutine yields between batches of goroutines (holding no claim), and the
//!   lock, goroutine-aware, parks whoever waits for it;
//! - the `SIGQUIT` handler only writes one byte to a pipe (async-signal-safe); a thread of its
//!   own reads it and prints the dump.

use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use super::{SCANNER, claims, now_ms, scan};
use crate::sched::{self, G, status};

/// Frames printed per goroutine at most; deeper stacks end with a line saying how many were
/// left out.
const MAX_FRAMES: usize = 100;

/// Writes every goroutine to `out`, like Go's traceback: a header with the goroutine's id, name,
/// and what it waits for (and for how long, once a collector cycle has seen it waiting for a
/// minute or more), then its frames, innermost first, as `function` and `file:line`.
///
/// A goroutine running on another thread is listed without frames. Frames need frame
/// pointers (see the collector's module docs). The runtime also prints this dump on `SIGQUIT`
/// (Ctrl-\ in a terminal), then exits with status 2, as Go does, unless the program ignores
/// `SIGQUIT` or handles it itself when the runtime starts.
///
/// # Errors
///
/// Whatever writing to `out` fails with.
///
/// # Examples
///
/// ```
/// let (tx, rx) = gort::chan::bounded::<()>(0);
/// let parked = gort::spawn(move || rx.recv());
/// while gort::num_goroutines() == 0 { gort::yield_now() }
/// let mut dump = Vec::new();
/// gort::dump_goroutines(&mut dump)?;
/// let dump = String::from_utf8(dump).unwrap();
/// assert!(dump.contains(&format!("goroutine {} [", parked.id())));
/// drop(tx);
/// parked.join().unwrap().unwrap_err();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn dump_goroutines(out: &mut impl Write) -> io::Result<()> {
    let mut goroutines = Vec::new();
    {
        let _scanner = SCANNER.lock();
        let now = now_ms();
        let me = sched::current_g().map(std::ptr::from_ref);
        let live = sched::live_goroutines();
        claims::visit_claimed(
            &live,
            |g| g,
            // Called in a goroutine, the dump lets the others on its processor run.
            || {
                sched::yield_current();
            },
            |g, status| {
                goroutines.push(look_at(g, status, now, me));
            },
        );
    }
    goroutines.sort_by_key(|g| g.id);
    for (i, g) in goroutines.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        g.write(out)?;
    }
    out.flush()
}

/// What a dump saw of one goroutine.
struct Seen {
    id: u64,
    name: Option<String>,
    state: String,
    frames: Frames,
}

enum Frames {
    /// Return addresses, innermost first, and how many more there were.
    Walked(Vec<usize>, usize),
    Running,
    NotStarted,
    Broken(String),
}

/// Copies what the dump prints of `g`, whose claim the caller holds if it answers its
/// `status`; `me` is the calling goroutine, if any.
fn look_at(g: &G, status: Option<u32>, now: u64, me: Option<*const G>) -> Seen {
    let mut seen = Seen {
        id: g.id().as_u64(),
        name: g.name().map(str::to_owned),
        state: "running".to_owned(),
        frames: Frames::Running,
    };
    if me == Some(std::ptr::from_ref(g)) {
        seen.frames = walk(g, Some(crate::stack::registers::frame_pointer()));
        return seen;
    }
    let Some(status) = status else {
        return seen;
    };
    seen.state = if status == status::WAITING {
        let minutes = now.saturating_sub(g.stopped.waiting_since(now)) / 60_000;
        if minutes > 0 {
            format!("{}, {minutes} minutes", g.wait_reason())
        } else {
            g.wait_reason().to_string()
        }
    } else {
        "runnable".to_owned()
    };
    seen.frames = if g.stopped.frames().0 == 0 {
        Frames::NotStarted
    } else {
        walk(g, None)
    };
    seen
}

/// The return addresses of `g`'s frames, from `from` (its own frame pointer, when `g` is the
/// caller) or from where it suspended.
fn walk(g: &G, from: Option<usize>) -> Frames {
    let mut addresses = Vec::new();
    // A stopped goroutine's innermost frame is where it suspended, which no return address
    // names: the blocking call is inlined into it.
    if from.is_none() && g.stopped.pc() != 0 {
        addresses.push(g.stopped.pc());
    }
    let mut more = 0;
    let walked = scan::walk_frames_from(g, from, |return_address| {
        if addresses.len() < MAX_FRAMES {
            addresses.push(return_address);
        } else {
            more += 1;
        }
    });
    match walked {
        Ok(_) => Frames::Walked(addresses, more),
        Err(bad) => Frames::Broken(bad.to_string()),
    }
}

impl Seen {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        match &self.name {
            Some(name) => writeln!(out, "goroutine {} ({name}) [{}]:", self.id, self.state)?,
            None => writeln!(out, "goroutine {} [{}]:", self.id, self.state)?,
        }
        match &self.frames {
            Frames::Running => writeln!(
                out,
                "\tgoroutine running on other thread; stack unavailable"
            ),
            Frames::NotStarted => writeln!(out, "\tnot started yet"),
            Frames::Broken(report) => writeln!(out, "\tframes unavailable: {report}"),
            Frames::Walked(addresses, _) if addresses.is_empty() => {
                writeln!(out, "\tframes unavailable: built without frame pointers")
            }
            Frames::Walked(addresses, more) => {
                for &address in addresses {
                    write_frame(out, address)?;
                }
                if *more > 0 {
                    writeln!(out, "...{more} frames elided...")?;
                }
                Ok(())
            }
        }
    }
}

/// Writes the function (or functions, where calls were inlined) that return address `address`
/// lies in, with file and line.
fn write_frame(out: &mut impl Write, address: usize) -> io::Result<()> {
    // The call instruction is just before the return address.
    let call = address.wrapping_sub(1) as *mut std::ffi::c_void;
    let mut lines = Vec::new();
    backtrace::resolve(call, |symbol| {
        let name = symbol
            .name()
            .map_or_else(|| format!("{address:#x}"), |name| format!("{name:#}"));
        let place = match (symbol.filename(), symbol.lineno()) {
            (Some(file), Some(line)) => format!("{}:{line}", file.display()),
            _ => format!("pc={address:#x}"),
        };
        lines.push((name, place));
    });
    if lines.is_empty() {
        lines.push(("?".to_owned(), format!("pc={address:#x}")));
    }
    for (name, place) in lines {
        writeln!(out, "{name}(...)\n\t{place}")?;
    }
    Ok(())
}

/// The write end of the `SIGQUIT` pipe (-1 until installed).
static SIGQUIT_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_sigquit(_: libc::c_int) {
    let fd = SIGQUIT_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    let byte = 1u8;
    // SAFETY: `write` is async-signal-safe; the buffer is a valid local.
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
}

/// Installs the `SIGQUIT` handler, unless the program set one of its own (or ignores it).
pub(super) fn install_sigquit_handler() {
    // SAFETY: a zeroed sigaction is a valid value to read the current action into.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: only reads the current action into a valid local.
    if unsafe { libc::sigaction(libc::SIGQUIT, std::ptr::null(), &mut old) } != 0
        || old.sa_sigaction != libc::SIG_DFL
    {
        return;
    }
    let mut fds = [0; 2];
    // SAFETY: the out-array has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    // The write end stays open for the life of the process: the handler writes to it.
    // SAFETY: `pipe2` just created the read end, and nothing else owns it.
    let read_end = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    SIGQUIT_PIPE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
    // SAFETY: a zeroed sigaction is a valid value, filled in below before it is used.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigquit as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: the mask is a field of a valid local; the handler only writes to a pipe.
    let installed = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGQUIT, &action, std::ptr::null_mut()) == 0
    };
    if !installed {
        return;
    }
    sched::count_service_thread();
    let started = std::thread::Builder::new()
        .name("gort-sigquit".into())
        .spawn(move || wait_for_sigquit(read_end));
    if started.is_err() {
        log::warn!("gort: cannot start the SIGQUIT thread; SIGQUIT will not dump goroutines");
    }
}

fn wait_for_sigquit(read_end: OwnedFd) {
    let mut file = std::fs::File::from(read_end);
    let mut byte = [0u8; 1];
    loop {
        match io::Read::read(&mut file, &mut byte) {
            Ok(1) => break,
            Ok(_) => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let stderr = io::stderr();
    let mut out = stderr.lock();
    let _ = writeln!(out, "SIGQUIT: quit\n");
    let _ = dump_goroutines(&mut out);
    std::process::exit(2);
}
