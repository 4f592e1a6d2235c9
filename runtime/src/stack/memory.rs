//! Commit state of stack memory: giving pages back to the OS and counting resident pages.
//!
//! Invariant: these functions work on whole OS pages of memory the caller owns; none changes
//! what a later reader of the memory sees except that released pages read as zero.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::heap::os_page_size;

/// Gives the pages of `[addr, addr + len)` back to the OS (`MADV_DONTNEED`); they read as zero
/// and are committed again on the next touch.
///
/// # Safety
///
/// The range must be page aligned and belong to the caller, and nothing may rely on its
/// contents.
pub(crate) unsafe fn release(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range and gives up its contents.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ranges [`release_all`] gives back per system call.
const RELEASE_BATCH: usize = 8;

/// `PIDFD_SELF_PROCESS`: the calling process, for `process_madvise` (recent kernels; this one
/// names no other process after a `fork`, unlike a pidfd opened once).
const PIDFD_SELF_PROCESS: libc::c_int = -10_001;

/// Whether the kernel takes `process_madvise(MADV_DONTNEED)` on the process itself: not yet
/// known, yes, or no (an older kernel: [`release_all`] then calls `madvise` per range).
static BATCHED_RELEASE: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;

/// Whether the kernel takes `process_madvise(MADV_DONTNEED)` on the process itself, asked once:
/// a kernel that does accepts an empty list of ranges for any advice; an older one refuses the
/// advice (or the process) whatever the list.
fn batched_release_works() -> bool {
    match BATCHED_RELEASE.load(Ordering::Relaxed) {
        UNKNOWN => {
            // An empty list: the kernel reads no range and touches no memory.
            // SAFETY: as just said.
            let rc = unsafe { advise_dontneed(&[]) };
            BATCHED_RELEASE.store(if rc == 0 { YES } else { NO }, Ordering::Relaxed);
            rc == 0
        }
        known => known == YES,
    }
}

/// Gives back the pages of each `(addr, len)` of `ranges` like [`release`], in as few system
/// calls as the kernel allows: `process_madvise` on the process itself flushes the TLBs of the
/// other CPUs once for up to eight ranges, where `madvise` interrupts them once per range (about
/// 25 µs on a 2-vCPU VM while another thread of the process runs). Calls `done` with each
/// range's index and result.
///
/// # Safety
///
/// As [`release`], for every range.
pub(crate) unsafe fn release_all(
    ranges: &[(usize, usize)],
    mut done: impl FnMut(usize, io::Result<()>),
) {
    for (batch, chunk) in ranges.chunks(RELEASE_BATCH).enumerate() {
        let first = batch * RELEASE_BATCH;
        // SAFETY: the caller's contract covers every range of the chunk.
        let released = unsafe { release_batch(chunk) };
        for (offset, &(addr, len)) in chunk.iter().enumerate() {
            let result = if offset < released {
                Ok(())
            } else {
                // SAFETY: as above, for this range.
                unsafe { release(addr, len) }
            };
            done(first + offset, result);
        }
    }
}

/// Gives back up to [`RELEASE_BATCH`] ranges in one `process_madvise`; answers how many of the
/// first ranges it gave back (0 if the kernel cannot).
///
/// # Safety
///
/// As [`release`], for every range.
unsafe fn release_batch(ranges: &[(usize, usize)]) -> usize {
    if ranges.len() < 2 || !batched_release_works() {
        return 0;
    }
    let mut iovecs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; RELEASE_BATCH];
    for (iovec, &(addr, len)) in iovecs.iter_mut().zip(ranges) {
        *iovec = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
    }
    let count = ranges.len().min(RELEASE_BATCH);
    // The iovecs describe `count` ranges the caller gives up.
    // SAFETY: as just said.
    let advised = unsafe { advise_dontneed(&iovecs[..count]) };
    // A range the kernel refuses fails the call: `madvise` then tries each range alone.
    let Ok(mut advised) = usize::try_from(advised) else {
        return 0;
    };
    // The kernel advises the ranges in order: those it covered whole are given back.
    let mut whole = 0;
    for &(_, len) in &ranges[..count] {
        if advised < len {
            break;
        }
        advised -= len;
        whole += 1;
    }
    whole
}

/// `process_madvise(MADV_DONTNEED)` on the process itself over `iovecs`: the bytes advised, or
/// -1 with `errno` set.
///
/// # Safety
///
/// As [`release`], for every range of `iovecs` (the kernel only reads the list).
unsafe fn advise_dontneed(iovecs: &[libc::iovec]) -> libc::c_long {
    // SAFETY: the list is valid for reads of its length; the ranges are the caller's to give up.
    unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            PIDFD_SELF_PROCESS,
            iovecs.as_ptr(),
            iovecs.len(),
            libc::MADV_DONTNEED,
            0,
        )
    }
}

/// The bytes of `[addr, addr + len)` that are resident (committed) now, by `mincore`, in
/// chunks that fit a buffer on the stack (no allocation: the collector calls this per stack).
pub(crate) fn resident_bytes(addr: usize, len: usize) -> io::Result<usize> {
    const CHUNK_PAGES: usize = 512;
    let page = os_page_size();
    let mut residency = [0u8; CHUNK_PAGES];
    let mut resident = 0;
    let mut start = addr;
    let end = addr + len;
    while start < end {
        let chunk = (end - start).min(CHUNK_PAGES * page);
        let (chunk_start, out) = (start as *mut libc::c_void, residency.as_mut_ptr());
        // mincore writes one byte per page of the chunk; `residency` has room for CHUNK_PAGES.
        // SAFETY: as just said, `out` has room for every page of the chunk.
        let rc = unsafe { libc::mincore(chunk_start, chunk, out) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let pages = chunk.div_ceil(page);
        resident += residency[..pages]
            .iter()
            .filter(|&&byte| byte & 1 != 0)
            .count()
            * page;
        start += chunk;
    }
    Ok(resident)
}
