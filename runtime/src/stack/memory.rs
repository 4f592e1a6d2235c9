//! Commit state of stack memory: giving pages back to the OS and counting resident pages.
//!
//! Invariant: both functions work on whole OS pages of memory the caller owns; neither changes
//! what a later reader of the memory sees except that released pages read as zero.

use std::io;

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
