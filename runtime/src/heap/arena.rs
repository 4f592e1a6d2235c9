//! Arenas: address space reserved from the OS for the heap.
//!
//! Invariants:
//! - an arena is one `mmap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`
//!   reservation, aligned to the heap page and below `1 << ADDR_BITS`; it is never unmapped
//!   while its heap exists (the process-wide heap never drops);
//! - reserving touches no page: memory is committed only when its eventual user touches it;
//! - failure is a [`HeapError`] value, never an abort.

use std::io;

use super::HeapError;
use super::PAGE_SIZE;
use super::index::ADDR_BITS;

/// Where a heap's address space comes from.
#[derive(Debug)]
pub(crate) enum AddressSource {
    /// Real reservations from the OS.
    Mmap,
    /// A range of addresses that are never mapped nor touched: for tests and loom models of the
    /// heap's bookkeeping (the heap never dereferences the pages it manages).
    #[cfg(test)]
    Fake { next: usize, end: usize },
}

/// One reserved arena.
#[derive(Debug)]
pub(crate) struct Arena {
    pub(crate) base: usize,
    pub(crate) bytes: usize,
    /// The start and length of the OS mapping (including alignment slack), if any.
    mapping: Option<(usize, usize)>,
}

impl AddressSource {
    /// Reserves an arena of at least `min_bytes`, trying `want_bytes` first and halving on
    /// refusal. Both are multiples of the heap page.
    pub(crate) fn reserve(
        &mut self,
        min_bytes: usize,
        want_bytes: usize,
    ) -> Result<Arena, HeapError> {
        let mut bytes = want_bytes.max(min_bytes);
        loop {
            match self.reserve_exact(bytes) {
                Ok(arena) => return Ok(arena),
                Err(errno) if bytes / 2 >= min_bytes => {
                    log::debug!(
                        "gort: reserving {bytes} bytes of address space failed (errno {errno}); halving"
                    );
                    bytes /= 2;
                    bytes -= bytes % PAGE_SIZE;
                }
                Err(errno) => {
                    return Err(HeapError::AddressSpaceExhausted {
                        requested_bytes: min_bytes,
                        os_error: (errno != 0).then_some(errno),
                    });
                }
            }
        }
    }

    /// Reserves exactly `bytes` (page aligned) or answers the errno (0: the fake range is used up).
    fn reserve_exact(&mut self, bytes: usize) -> Result<Arena, i32> {
        match self {
            #[cfg(test)]
            AddressSource::Fake { next, end } => {
                if *end - *next < bytes {
                    return Err(0);
                }
                let base = *next;
                *next += bytes;
                Ok(Arena {
                    base,
                    bytes,
                    mapping: None,
                })
            }
            AddressSource::Mmap => {
                let len = bytes.checked_add(PAGE_SIZE).ok_or(libc::ENOMEM)?;
                // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing
                // aliases nothing.
                let start = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                        -1,
                        0,
                    )
                };
                if start == libc::MAP_FAILED {
                    return Err(io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::ENOMEM));
                }
                let start = start as usize;
                let arena = Arena {
                    base: start.next_multiple_of(PAGE_SIZE),
                    bytes,
                    mapping: Some((start, len)),
                };
                if arena.base + bytes > 1 << ADDR_BITS {
                    unmap(start, len);
                    return Err(libc::ENOMEM);
                }
                Ok(arena)
            }
        }
    }
}

impl Arena {
    /// Gives the arena back to the OS. Only a heap that is being dropped calls this.
    pub(crate) fn release(self) {
        if let Some((start, len)) = self.mapping {
            unmap(start, len);
        }
    }
}

fn unmap(start: usize, len: usize) {
    // SAFETY: `[start, start + len)` is a mapping this module created, and its heap (the only
    // user of the addresses) is gone or never handed any out.
    let rc = unsafe { libc::munmap(start as *mut libc::c_void, len) };
    debug_assert_eq!(rc, 0, "munmap of an arena failed");
}
