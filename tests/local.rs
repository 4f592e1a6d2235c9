//! Goroutine-local storage follows its goroutine across threads, starts fresh in each
//! goroutine, is per-thread outside goroutines, and is dropped when the goroutine ends.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

gort::goroutine_local! {
    static ID: Cell<u64> = Cell::new(0);
    static THREADS: RefCell<HashSet<std::thread::ThreadId>> = RefCell::new(HashSet::new());
}

#[test]
fn each_goroutine_keeps_its_own_value_across_threads() {
    let handles: Vec<_> = (1..=64u64)
        .map(|id| {
            gort::spawn(move || {
                ID.with(|v| v.set(id));
                for _ in 0..200 {
                    gort::yield_now();
                    THREADS.with(|t| t.borrow_mut().insert(std::thread::current().id()));
                    assert_eq!(ID.with(Cell::get), id, "another goroutine's value");
                }
                THREADS.with(|t| t.borrow().len())
            })
        })
        .collect();
    let threads_seen: usize = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    // With more than one processor some goroutine usually moves; the check above holds either way.
    assert!(threads_seen >= 1);
}

#[test]
fn plain_threads_have_their_own_values() {
    ID.with(|v| v.set(7));
    let other = std::thread::spawn(|| ID.with(Cell::get)).join().unwrap();
    assert_eq!((ID.with(Cell::get), other), (7, 0));
    assert_eq!(gort::spawn(|| ID.with(Cell::get)).join().unwrap(), 0);
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

gort::goroutine_local! {
    static GUARD: RefCell<Option<Counted>> = RefCell::new(None);
}

#[test]
fn values_are_dropped_when_their_goroutine_ends_even_by_panic() {
    let drops = Arc::new(AtomicUsize::new(0));
    let normal = {
        let drops = Arc::clone(&drops);
        gort::spawn(move || GUARD.with(|g| *g.borrow_mut() = Some(Counted(drops))))
    };
    normal.join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let panicking = {
        let drops = Arc::clone(&drops);
        gort::spawn(move || {
            GUARD.with(|g| *g.borrow_mut() = Some(Counted(drops)));
            panic!("planned");
        })
    };
    assert!(panicking.join().is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}
