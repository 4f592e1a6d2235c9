//! Guard regions at the low end of stacks.
//!
//! Linux 6.13 and later install guards with `madvise(MADV_GUARD_INSTALL)`: page-table markers
//! that fault on access without splitting the mapping, so every stack shares the heap's one
//! mapping and `vm.max_map_count` never limits how many stacks exist. Older kernels answer
//! `EINVAL`; then guards are `mprotect(PROT_NONE)` regions, two mappings per stack.
//!
//! Invariants:
//! - the mode is detected once per process and never changes afterwards;
//! - a guard is removed before its span returns to the heap, so a later span never inherits a
//!   fault-on-access hole in the middle of its pages.

use std::fmt;
use std::io;
use std::sync::OnceLock;

use crate::heap::{os_page_size, reserve_address_space, unmap};

/// `madvise` advice that installs guard markers (Linux 6.13).
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `madvise` advice that removes guard markers.
const MADV_GUARD_REMOVE: libc::c_int = 103;

static MODE: OnceLock<GuardMode> = OnceLock::new();

/// How this process installs stack guard regions.
///
/// # Examples
///
/// ```
/// use gort::stack::{self, GuardMode};
///
/// match stack::guard_mode() {
///     GuardMode::Madvise => println!("guards cost no memory mappings"),
///     GuardMode::Mprotect => println!("each stack costs two memory mappings"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardMode {
    /// `madvise(MADV_GUARD_INSTALL)`: no extra mappings (Linux 6.13 and later).
    Madvise,
    /// `mprotect(PROT_NONE)`: two mappings per stack, bounded by `vm.max_map_count`.
    Mprotect,
}

impl fmt::Display for GuardMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuardMode::Madvise => "madvise(MADV_GUARD_INSTALL)",
            GuardMode::Mprotect => "mprotect(PROT_NONE)",
        })
    }
}

/// The guard mode of this process, detected on first use.
///
/// # Examples
///
/// ```
/// let mode = gort::stack::guard_mode();
/// assert_eq!(mode, gort::stack::guard_mode()); // detected once
/// ```
pub fn guard_mode() -> GuardMode {
    *MODE.get_or_init(detect)
}

/// Tries `MADV_GUARD_INSTALL` on a scratch page.
fn detect() -> GuardMode {
    let page = os_page_size();
    let mode = match reserve_address_space(page, 0) {
        Err(errno) => {
            log::warn!(
                "gort: cannot map a page to probe for MADV_GUARD_INSTALL: {}",
                io::Error::from_raw_os_error(errno)
            );
            GuardMode::Mprotect
        }
        Ok(scratch) => {
            let scratch_page = scratch as *mut libc::c_void;
            // SAFETY: `scratch` is the page mapped just above; guard markers on it harm nothing.
            let rc = unsafe { libc::madvise(scratch_page, page, MADV_GUARD_INSTALL) };
            let err = io::Error::last_os_error();
            unmap(scratch, page);
            if rc == 0 {
                GuardMode::Madvise
            } else {
                log::debug!("gort: MADV_GUARD_INSTALL refused: {err}");
                GuardMode::Mprotect
            }
        }
    };
    match mode {
        GuardMode::Madvise => log::info!("gort: stack guards use {mode}"),
        GuardMode::Mprotect => {
            log::warn!(
                "gort: stack guards use {mode}: each stack costs two memory mappings (vm.max_map_count)"
            )
        }
    }
    mode
}

/// Makes `[addr, addr + len)` fault on any access.
///
/// # Safety
///
/// The range must be page aligned, inside a span the caller owns, and hold nothing anyone reads
/// or writes.
pub(crate) unsafe fn install(addr: usize, len: usize) -> io::Result<()> {
    let rc = match guard_mode() {
        // SAFETY: the caller owns the range and nothing in it is in use.
        GuardMode::Madvise => unsafe {
            libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL)
        },
        // SAFETY: as above.
        GuardMode::Mprotect => unsafe {
            libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE)
        },
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes a guard region ordinary read-write memory again; harmless where no guard is installed.
///
/// # Safety
///
/// The range must be page aligned, inside a span the caller owns, and hold nothing anyone reads
/// or writes.
pub(crate) unsafe fn remove(addr: usize, len: usize) -> io::Result<()> {
    let rc = match guard_mode() {
        // SAFETY: the caller owns the range, which holds only guard markers.
        GuardMode::Madvise => unsafe {
            libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_REMOVE)
        },
        // SAFETY: as above; read-write is the protection of the rest of the arena.
        GuardMode::Mprotect => unsafe {
            libc::mprotect(
                addr as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        },
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Forces the mode before first use, to exercise a path this kernel would not take.
#[cfg(test)]
pub(crate) fn force(mode: GuardMode) {
    assert_eq!(
        *MODE.get_or_init(|| mode),
        mode,
        "the guard mode was detected before it was forced"
    );
}
