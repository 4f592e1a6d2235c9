//! Deferred calls: LIFO order across stack and heap records, through panics, across parks and
//! stack segments, and the abort when a deferred call panics during unwinding.

use std::cell::RefCell;
use std::panic;
use std::rc::Rc;

use gort::defer::Defers;

type Log = Rc<RefCell<Vec<u32>>>;

fn logger(log: &Log, n: u32) -> impl FnOnce() + 'static {
    let log = Rc::clone(log);
    move || log.borrow_mut().push(n)
}

/// Registers 1 (stack), 2 and 3 (heap), 4 (stack), 5 (heap), then runs `body`.
fn weave(log: &Log, body: impl FnOnce()) {
    gort::defer!(log.borrow_mut().push(1));
    let mut defers = Defers::new();
    defers.push(logger(log, 2));
    gort::yield_now(); // a goroutine may resume on another thread
    defers.push(logger(log, 3));
    gort::defer!(log.borrow_mut().push(4));
    defers.push(logger(log, 5));
    body();
}

#[test]
fn stack_and_heap_records_run_in_reverse_registration_order() {
    gort::run(|| {
        let log = Log::default();
        weave(&log, || ());
        assert_eq!(*log.borrow(), [5, 4, 3, 2, 1]);
    });
}

#[test]
fn records_run_in_order_while_a_panic_unwinds() {
    gort::run(|| {
        let log = Log::default();
        let caught =
            panic::catch_unwind(panic::AssertUnwindSafe(|| weave(&log, || panic!("boom"))));
        assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "boom");
        assert_eq!(*log.borrow(), [5, 4, 3, 2, 1]);
    });
}

#[test]
fn plain_threads_have_their_own_chain() {
    let log = Log::default();
    weave(&log, || ());
    assert_eq!(*log.borrow(), [5, 4, 3, 2, 1]);
}

#[test]
fn records_cross_stack_segments() {
    gort::run(|| {
        let log = Log::default();
        {
            gort::defer!(log.borrow_mut().push(1));
            let mut outer = Defers::new();
            outer.push(logger(&log, 2));
            gort::stack::grow(64 * 1024, || {
                let mut inner = Defers::new();
                inner.push(logger(&log, 3));
                gort::defer!(log.borrow_mut().push(4));
                // Pushed after the segment's records, so it runs before them when the
                // segment's scope ends.
                outer.push(logger(&log, 5));
            });
            assert_eq!(*log.borrow(), [5, 4, 3]);
        }
        assert_eq!(*log.borrow(), [5, 4, 3, 2, 1]);
    });
}

#[test]
fn a_loop_defers_thousands_of_calls() {
    gort::run(|| {
        let log = Log::default();
        for round in 0..3 {
            {
                let mut defers = Defers::new();
                for n in 0..5000 {
                    defers.push(logger(&log, n));
                }
            }
            let expected: Vec<u32> = (0..5000).rev().collect();
            assert_eq!(*log.borrow(), expected, "round {round}");
            log.borrow_mut().clear();
        }
    });
}

#[test]
fn large_calls_are_boxed_and_still_run() {
    let log = Log::default();
    {
        let mut defers = Defers::new();
        let big = [7u32; 64];
        let sink = Rc::clone(&log);
        defers.push(move || sink.borrow_mut().extend_from_slice(&big[..2]));
    }
    assert_eq!(*log.borrow(), [7, 7]);
}

#[test]
fn a_panicking_deferred_call_still_lets_the_older_ones_run() {
    let log = Log::default();
    let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| {
        gort::defer!(log.borrow_mut().push(1));
        let mut defers = Defers::new();
        defers.push(logger(&log, 2));
        defers.push(|| panic!("in a deferred call"));
        defers.push(logger(&log, 3));
    }));
    assert_eq!(
        *caught.unwrap_err().downcast::<&str>().unwrap(),
        "in a deferred call"
    );
    assert_eq!(*log.borrow(), [3, 2, 1]);
}

#[test]
fn a_deferred_call_panicking_during_unwinding_aborts_with_a_message() {
    let name = "a_deferred_call_panicking_during_unwinding_aborts_with_a_message";
    if gort_suite::is_child(name) {
        gort::run(|| {
            let mut defers = Defers::new();
            defers.push(|| panic!("second"));
            panic!("first");
        });
        unreachable!("the second panic ends the process");
    }
    let stderr = gort_suite::child_abort_message(name);
    assert!(
        stderr.contains("fatal error: a deferred call panicked while unwinding from a panic"),
        "{stderr}"
    );
}
