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
    /// Real reservations from the OS, each asked for right after the previous one (Go's arena
    /// hints), in a part of the address space where nothing else maps by default, so that the
    /// kernel merges the arenas into one mapping.
    Mmap {
        /// Where the next arena is asked for.
        hint: usize,
    },
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

/// The lowest address the first arena is asked for (1 TiB): far above a PIE executable's data
/// and below the area where the kernel places mappings by default.
const FIRST_HINT_BASE: usize = 1 << 40;
/// The first arena goes at a random one of this many 1 GiB slots above the base, so the heap's
/// placement keeps some of the entropy address-space randomisation gives everything else.
const FIRST_HINT_SLOTS: u64 = 4096;

impl AddressSource {
    /// Reservations from the OS, starting at a randomised hint.
    pub(crate) fn mmap() -> Self {
        use std::hash::BuildHasher;
        let random = std::collections::hash_map::RandomState::new().hash_one(0u8);
        AddressSource::Mmap {
            hint: FIRST_HINT_BASE + (random % FIRST_HINT_SLOTS) as usize * (1 << 30),
        }
    }

    /// Reserves an arena of at least `min_bytes`, trying `want_bytes` first and halving on
    /// refusal. Both are multiples of the heap page.
    pub(crate) fn reserve(
        &mut self,
        min_bytes: usize,
        want_bytes: usize,
    ) -> Result<Arena, HeapError> {
        if matches!(self, AddressSource::Mmap { .. }) && os_page_size() > PAGE_SIZE {
            return Err(HeapError::UnsupportedPageSize {
                os_page_size: os_page_size(),
            });
        }
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
            AddressSource::Mmap { hint } => {
                let len = bytes.checked_add(PAGE_SIZE).ok_or(libc::ENOMEM)?;
                let start = reserve_address_space(len, *hint)?;
                // Huge pages would commit 2 MiB where a new stack needs one page. Kernels without
                // transparent huge pages refuse the advice, which is then moot.
                // SAFETY: advice on a mapping just made, which nothing uses yet.
                unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
                let arena = Arena {
                    base: start.next_multiple_of(PAGE_SIZE),
                    bytes,
                    mapping: Some((start, len)),
                };
                if arena.base + bytes > 1 << ADDR_BITS {
                    unmap(start, len);
                    return Err(libc::ENOMEM);
                }
                *hint = start + len;
                Ok(arena)
            }
        }
    }
}

/// Reserves `len` bytes of read-write address space that commit on first touch, at `hint` if
/// that range is free (0: anywhere). Answers the start, or the errno of the refusal.
pub(crate) fn reserve_address_space(len: usize, hint: usize) -> Result<usize, i32> {
    // SAFETY: without MAP_FIXED the kernel never maps over existing memory: nothing aliases.
    let start = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
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
    Ok(start as usize)
}

impl Arena {
    /// Gives the arena back to the OS. Only a heap that is being dropped calls this.
    pub(crate) fn release(self) {
        if let Some((start, len)) = self.mapping {
            unmap(start, len);
        }
    }
}

/// Unmaps a reservation made by [`reserve_address_space`].
pub(crate) fn unmap(start: usize, len: usize) {
    // SAFETY: our own reservation, whose heap is gone or never handed it out.
    let rc = unsafe { libc::munmap(start as *mut libc::c_void, len) };
    debug_assert_eq!(rc, 0, "munmap of an arena failed");
}

/// The OS page size.
pub(crate) fn os_page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).expect("the OS page size is positive")
}
