//! The page allocator: which pages of the reserved arenas are free.
//!
//! Free pages are kept as maximal runs in two ordered sets, one by address (for coalescing) and
//! one by (length, address) (for best fit), so `alloc` and `free` are O(log n) in the number of
//! free runs.
//!
//! Invariants:
//! - the two sets hold exactly the same runs;
//! - runs never overlap and never touch: a freed run is merged with both neighbours;
//! - the allocator only does arithmetic on page numbers; it never reads or writes the pages.

use std::collections::{BTreeMap, BTreeSet};

/// Free runs of pages, identified by page number (address / page size).
#[derive(Debug, Default)]
pub(crate) struct PageAlloc {
    /// start page -> length in pages.
    by_addr: BTreeMap<usize, usize>,
    /// (length, start page), for best-fit search.
    by_len: BTreeSet<(usize, usize)>,
    free_pages: usize,
}

impl PageAlloc {
    /// Takes `len` contiguous pages (best fit, lowest address among equals), or `None` if no free
    /// run is long enough.
    pub(crate) fn alloc(&mut self, len: usize) -> Option<usize> {
        debug_assert!(len > 0);
        let &(run_len, start) = self.by_len.range((len, 0)..).next()?;
        self.remove_run(start, run_len);
        if run_len > len {
            self.insert_run(start + len, run_len - len);
        }
        Some(start)
    }

    /// Returns `len` pages starting at `start`, merging them with adjacent free runs.
    ///
    /// # Panics
    ///
    /// If any of the pages is already free: a double free is a heap-corrupting bug.
    pub(crate) fn free(&mut self, start: usize, len: usize) {
        debug_assert!(len > 0);
        let (mut start, mut len) = (start, len);
        if let Some((&prev, &prev_len)) = self.by_addr.range(..=start).next_back() {
            assert!(prev + prev_len <= start, "pages {start}+{len} freed twice");
            if prev + prev_len == start {
                self.remove_run(prev, prev_len);
                start = prev;
                len += prev_len;
            }
        }
        if let Some((&next, &next_len)) = self.by_addr.range(start + 1..).next() {
            assert!(start + len <= next, "pages {start}+{len} freed twice");
            if start + len == next {
                self.remove_run(next, next_len);
                len += next_len;
            }
        }
        self.insert_run(start, len);
    }

    /// Number of free pages.
    pub(crate) fn free_pages(&self) -> usize {
        self.free_pages
    }

    /// Number of maximal free runs (for tests of coalescing).
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.by_addr.len()
    }

    fn insert_run(&mut self, start: usize, len: usize) {
        self.by_addr.insert(start, len);
        self.by_len.insert((len, start));
        self.free_pages += len;
    }

    fn remove_run(&mut self, start: usize, len: usize) {
        self.by_addr.remove(&start);
        self.by_len.remove(&(len, start));
        self.free_pages -= len;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::PageAlloc;

    #[test]
    fn best_fit_prefers_the_smallest_run_that_fits() {
        let mut pages = PageAlloc::default();
        pages.free(100, 10);
        pages.free(200, 3);
        pages.free(300, 5);
        assert_eq!(pages.alloc(4), Some(300));
        assert_eq!(pages.alloc(3), Some(200));
        assert_eq!(pages.alloc(11), None);
        assert_eq!(pages.free_pages(), 11);
    }

    #[test]
    fn freeing_merges_both_neighbours() {
        let mut pages = PageAlloc::default();
        pages.free(0, 30);
        let a = pages.alloc(10).unwrap();
        let b = pages.alloc(10).unwrap();
        let c = pages.alloc(10).unwrap();
        assert_eq!(pages.runs(), 0);
        pages.free(a, 10);
        pages.free(c, 10);
        assert_eq!(pages.runs(), 2);
        pages.free(b, 10);
        assert_eq!(pages.runs(), 1);
        assert_eq!(pages.alloc(30), Some(0));
    }

    #[test]
    #[should_panic(expected = "freed twice")]
    fn double_free_is_caught() {
        let mut pages = PageAlloc::default();
        pages.free(0, 8);
        pages.free(4, 2);
    }
}
