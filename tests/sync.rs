//! gort::sync from goroutines and plain threads: exclusion, parallel readers, wake-ups, limits,
//! one-time initialisation, and a mutex waiter that does not starve.
//!
//! Short by default; `GORT_LONG_TESTS=1` runs the full iteration counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gort::sync::{Barrier, Condvar, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup};

fn long() -> bool {
    std::env::var_os("GORT_LONG_TESTS").is_some_and(|v| v == "1")
}

/// A value whose updates are two separate plain writes: a torn read shows broken exclusion.
#[derive(Default)]
struct Pair {
    a: u64,
    b: u64,
}

#[test]
fn mutex_excludes_16_goroutines() {
    let iterations: u64 = if long() { 100_000 } else { 10_000 };
    let counter = Arc::new(Mutex::new(Pair::default()));
    let total = gort::run({
        let counter = Arc::clone(&counter);
        move || {
            let workers: Vec<_> = (0..16)
                .map(|_| {
                    let counter = Arc::clone(&counter);
                    gort::spawn(move || {
                        for i in 0..iterations {
                            let mut pair = counter.lock();
                            assert_eq!(pair.a, pair.b, "two holders at once");
                            pair.a += 1;
                            if i % 64 == 0 {
                                gort::yield_now(); // hold it across a switch now and then
                            }
                            pair.b += 1;
                        }
                    })
                })
                .collect();
            workers.into_iter().for_each(|w| w.join().unwrap());
            let pair = counter.lock();
            (pair.a, pair.b)
        }
    });
    assert_eq!(total, (16 * iterations, 16 * iterations));
    assert!(!counter.is_locked());
}

#[test]
fn mutex_excludes_goroutines_and_threads_together() {
    let iterations: u64 = if long() { 100_000 } else { 10_000 };
    let counter = Arc::new(Mutex::new(0u64));
    let bump = |counter: Arc<Mutex<u64>>| {
        move || {
            for _ in 0..iterations {
                *counter.lock() += 1;
            }
        }
    };
    let goroutines: Vec<_> = (0..4)
        .map(|_| gort::spawn(bump(Arc::clone(&counter))))
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(bump(Arc::clone(&counter))))
        .collect();
    goroutines.into_iter().for_each(|g| g.join().unwrap());
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*counter.lock(), 8 * iterations);
}

#[test]
fn try_lock_fails_while_held() {
    let mutex = Mutex::new(1);
    let guard = mutex.lock();
    assert!(mutex.try_lock().is_none());
    let from_goroutine = gort::spawn({
        // The goroutine may run on another thread: guards are Send, the lock has no owner.
        let mutex: &'static Mutex<i32> = Box::leak(Box::new(Mutex::new(2)));
        let guard = mutex.lock();
        move || {
            drop(guard);
            mutex.try_lock().is_some()
        }
    });
    assert!(from_goroutine.join().unwrap());
    drop(guard);
    assert!(mutex.try_lock().is_some());
}

#[test]
fn a_mutex_waiter_is_not_starved_by_a_hog() {
    // The hog relocks at once after every unlock, holding the mutex for a while each time. In
    // normal mode a woken waiter usually loses that race; after 1 ms of waiting it switches the
    // mutex to starvation mode and the hog hands it over. The hog gives up after `rounds`,
    // far more than starvation mode needs, and the waiter must have got through by then.
    let rounds = 200;
    let mutex = Arc::new(Mutex::new(()));
    let waiter_done = Arc::new(AtomicBool::new(false));
    let hog_started = Arc::new(AtomicBool::new(false));
    let hog = std::thread::spawn({
        let (mutex, waiter_done, hog_started) = (
            Arc::clone(&mutex),
            Arc::clone(&waiter_done),
            Arc::clone(&hog_started),
        );
        move || {
            let mut round = 0;
            while round < rounds && !waiter_done.load(Ordering::Acquire) {
                let _guard = mutex.lock();
                hog_started.store(true, Ordering::Release);
                std::thread::sleep(std::time::Duration::from_micros(300));
                round += 1;
            }
            round
        }
    });
    while !hog_started.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let waiter = gort::spawn({
        let (mutex, waiter_done) = (Arc::clone(&mutex), Arc::clone(&waiter_done));
        move || {
            drop(mutex.lock());
            waiter_done.store(true, Ordering::Release);
        }
    });
    let hog_rounds = hog.join().unwrap();
    assert!(
        waiter_done.load(Ordering::Acquire),
        "the waiter starved through {hog_rounds} rounds"
    );
    waiter.join().unwrap();
}

#[test]
fn rwlock_readers_are_inside_together() {
    // Two readers meet inside the read lock: each holds it while waiting for the other to get
    // in, which only shared readers can do.
    let lock = Arc::new(RwLock::new(7));
    let meeting = Arc::new(Barrier::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (lock, meeting, inside) =
                (Arc::clone(&lock), Arc::clone(&meeting), Arc::clone(&inside));
            gort::spawn(move || {
                let value = lock.read();
                inside.fetch_add(1, Ordering::SeqCst);
                meeting.wait();
                let both = inside.load(Ordering::SeqCst);
                meeting.wait();
                inside.fetch_sub(1, Ordering::SeqCst);
                (*value, both)
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), (7, 2));
    }
    // And a reader on a plain thread shares it with one in a goroutine.
    let held = lock.read();
    let lock2 = Arc::clone(&lock);
    assert_eq!(gort::spawn(move || *lock2.read()).join().unwrap(), 7);
    assert!(lock.try_write().is_none());
    drop(held);
    assert!(lock.try_write().is_some());
}

#[test]
fn rwlock_writers_exclude_readers_and_writers() {
    let iterations: u64 = if long() { 20_000 } else { 2_000 };
    let lock = Arc::new(RwLock::new(Pair::default()));
    let writing = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (lock, writing) = (Arc::clone(&lock), Arc::clone(&writing));
            gort::spawn(move || {
                for i in 0..iterations {
                    let mut pair = lock.write();
                    assert_eq!(writing.fetch_add(1, Ordering::SeqCst), 0, "two writers");
                    pair.a += 1;
                    if i % 32 == 0 {
                        gort::yield_now();
                    }
                    pair.b += 1;
                    writing.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (lock, writing) = (Arc::clone(&lock), Arc::clone(&writing));
            gort::spawn(move || {
                for i in 0..iterations {
                    let pair = lock.read();
                    assert_eq!(
                        writing.load(Ordering::SeqCst),
                        0,
                        "a reader beside a writer"
                    );
                    assert_eq!(pair.a, pair.b, "a torn read");
                    if i % 32 == 0 {
                        gort::yield_now();
                    }
                }
            })
        })
        .collect();
    let thread_reader = std::thread::spawn({
        let lock = Arc::clone(&lock);
        move || {
            for _ in 0..iterations {
                let pair = lock.read();
                assert_eq!(pair.a, pair.b, "a torn read on a thread");
            }
        }
    });
    writers.into_iter().for_each(|w| w.join().unwrap());
    readers.into_iter().for_each(|r| r.join().unwrap());
    thread_reader.join().unwrap();
    let pair = lock.read();
    assert_eq!((pair.a, pair.b), (4 * iterations, 4 * iterations));
}

#[test]
fn waitgroup_waits_for_goroutines_and_threads() {
    let wg = Arc::new(WaitGroup::new());
    let finished = Arc::new(AtomicUsize::new(0));
    wg.add(20);
    for i in 0..20 {
        let (wg, finished) = (Arc::clone(&wg), Arc::clone(&finished));
        let work = move || {
            finished.fetch_add(1, Ordering::SeqCst);
            wg.done();
        };
        if i % 2 == 0 {
            gort::spawn(work);
        } else {
            std::thread::spawn(work);
        }
    }
    // Waiters of both kinds.
    let goroutine_waiter = gort::spawn({
        let (wg, finished) = (Arc::clone(&wg), Arc::clone(&finished));
        move || {
            wg.wait();
            finished.load(Ordering::SeqCst)
        }
    });
    wg.wait();
    assert_eq!(finished.load(Ordering::SeqCst), 20);
    assert_eq!(goroutine_waiter.join().unwrap(), 20);
    assert_eq!(wg.count(), 0);
    // Reusable.
    wg.add(1);
    let wg2 = Arc::clone(&wg);
    gort::spawn(move || wg2.done());
    wg.wait();
}

#[test]
#[should_panic(expected = "negative WaitGroup counter")]
fn waitgroup_counter_cannot_go_negative() {
    WaitGroup::new().done();
}

#[test]
fn barrier_releases_goroutines_and_threads_together_each_round() {
    let rounds = if long() { 1_000 } else { 100 };
    let parties = 8;
    let barrier = Arc::new(Barrier::new(parties));
    let arrivals = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let party = |barrier: Arc<Barrier>, arrivals: Arc<AtomicUsize>, leaders: Arc<AtomicUsize>| {
        move || {
            for round in 0..rounds {
                arrivals.fetch_add(1, Ordering::SeqCst);
                if barrier.wait().is_leader() {
                    leaders.fetch_add(1, Ordering::SeqCst);
                }
                // Everyone of this round arrived before anyone left.
                assert!(arrivals.load(Ordering::SeqCst) >= (round + 1) * parties);
                barrier.wait();
            }
        }
    };
    let goroutines: Vec<_> = (0..parties / 2)
        .map(|_| {
            gort::spawn(party(
                Arc::clone(&barrier),
                Arc::clone(&arrivals),
                Arc::clone(&leaders),
            ))
        })
        .collect();
    let threads: Vec<_> = (0..parties / 2)
        .map(|_| {
            std::thread::spawn(party(
                Arc::clone(&barrier),
                Arc::clone(&arrivals),
                Arc::clone(&leaders),
            ))
        })
        .collect();
    goroutines.into_iter().for_each(|g| g.join().unwrap());
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(leaders.load(Ordering::SeqCst), rounds);
}

#[test]
fn condvar_notify_one_wakes_one_and_notify_all_wakes_all() {
    let state = Arc::new((Mutex::new((0u32, 0u32)), Condvar::new())); // (tickets, woken)
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let state = Arc::clone(&state);
            let wait = move || {
                let (lock, condvar) = &*state;
                let mut guard = lock.lock();
                condvar.wait_while(&mut guard, |(tickets, _)| *tickets == 0);
                guard.0 -= 1;
                guard.1 += 1;
            };
            if i % 2 == 0 {
                gort::spawn(wait)
            } else {
                gort::spawn(move || std::thread::spawn(wait).join().unwrap())
            }
        })
        .collect();
    let (lock, condvar) = &*state;
    // Hand out single tickets with notify_one until one waiter has consumed each.
    for consumed in 1..=3 {
        lock.lock().0 += 1;
        condvar.notify_one();
        loop {
            let guard = lock.lock();
            if guard.1 == consumed {
                break;
            }
            drop(guard);
            condvar.notify_one(); // the ticket's waiter may not have queued yet
            std::thread::yield_now();
        }
    }
    // The rest, at once.
    lock.lock().0 += 3;
    condvar.notify_all();
    for waiter in waiters {
        waiter.join().unwrap();
    }
    assert_eq!(*lock.lock(), (0, 6));
    assert_eq!(condvar.notify_all(), 0);
}

/// Timed condvar waits, from a goroutine and from a plain thread: nobody notifies, so each
/// times out (not early) with its mutex locked again; then a waiter that timed out must not
/// swallow a later notification meant for a waiter that still waits.
#[test]
fn condvar_timed_waits_time_out_without_swallowing_notifications() {
    use std::time::{Duration, Instant};

    let timeout = Duration::from_millis(5);
    let state = Arc::new((Mutex::new(0u32), Condvar::new()));
    let times_out = {
        let state = Arc::clone(&state);
        move || {
            let (lock, condvar) = &*state;
            let start = Instant::now();
            let mut guard = lock.lock();
            let result = condvar.wait_while_for(&mut guard, |value| *value == 0, timeout);
            assert!(result.timed_out());
            assert!(start.elapsed() >= timeout, "timed out early");
            *guard += 0; // the guard holds the mutex again
        }
    };
    gort::spawn(times_out.clone()).join().unwrap();
    std::thread::spawn(times_out).join().unwrap();

    // A waiter times out while queued ahead of another; one notification then must reach the
    // other (a swallowed one would leave it to time out after a minute). Each waiter counts its
    // arrival under the mutex before it waits, so a count seen under the mutex means queued.
    let queue = Arc::new((Mutex::new((0u32, 0u32)), Condvar::new())); // (arrivals, value)
    let impatient = gort::spawn({
        let queue = Arc::clone(&queue);
        move || {
            let (lock, condvar) = &*queue;
            let mut guard = lock.lock();
            guard.0 += 1;
            condvar.wait_for(&mut guard, timeout).timed_out()
        }
    });
    let arrived = |count: u32| {
        while queue.0.lock().0 < count {
            gort::yield_now();
        }
    };
    arrived(1);
    let patient = gort::spawn({
        let queue = Arc::clone(&queue);
        move || {
            let (lock, condvar) = &*queue;
            let mut guard = lock.lock();
            guard.0 += 1;
            let result = condvar.wait_while_for(
                &mut guard,
                |(_, value)| *value == 0,
                Duration::from_secs(60),
            );
            (result.timed_out(), guard.1)
        }
    });
    assert!(
        impatient.join().unwrap(),
        "nobody notified the impatient waiter"
    );
    arrived(2);
    queue.0.lock().1 = 7;
    assert!(queue.1.notify_one(), "the patient waiter is queued");
    assert_eq!(patient.join().unwrap(), (false, 7));

    // A notification before the deadline ends the wait early.
    let (lock, condvar) = &*state;
    let notified = gort::spawn({
        let state = Arc::clone(&state);
        move || {
            let (lock, condvar) = &*state;
            let mut guard = lock.lock();
            let result =
                condvar.wait_while_for(&mut guard, |value| *value != 9, Duration::from_secs(60));
            (result.timed_out(), *guard)
        }
    });
    *lock.lock() = 9;
    while !notified.is_finished() {
        condvar.notify_all();
        gort::yield_now();
    }
    assert_eq!(notified.join().unwrap(), (false, 9));
}

#[test]
fn semaphore_limits_concurrency() {
    let limit = 3;
    let semaphore = Arc::new(Semaphore::new(limit));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let work = |semaphore: Arc<Semaphore>, running: Arc<AtomicUsize>, peak: Arc<AtomicUsize>| {
        move || {
            for _ in 0..200 {
                let _permit = semaphore.acquire();
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gort::yield_now();
                running.fetch_sub(1, Ordering::SeqCst);
            }
        }
    };
    let goroutines: Vec<_> = (0..12)
        .map(|_| {
            gort::spawn(work(
                Arc::clone(&semaphore),
                Arc::clone(&running),
                Arc::clone(&peak),
            ))
        })
        .collect();
    let thread = std::thread::spawn(work(
        Arc::clone(&semaphore),
        Arc::clone(&running),
        Arc::clone(&peak),
    ));
    goroutines.into_iter().for_each(|g| g.join().unwrap());
    thread.join().unwrap();
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= limit as usize, "{peak} holders of {limit} permits");
    assert!(peak >= 1);
    assert_eq!(semaphore.available_permits(), limit);
}

#[test]
fn semaphore_waiter_parks_until_a_permit_is_added() {
    let semaphore = Arc::new(Semaphore::new(0));
    let waiter = gort::spawn({
        let semaphore = Arc::clone(&semaphore);
        move || semaphore.acquire().forget()
    });
    semaphore.add_permits(1);
    waiter.join().unwrap();
    assert_eq!(semaphore.available_permits(), 0);
}

#[test]
fn once_runs_its_closure_exactly_once_under_contention() {
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let racer = |once: Arc<Once>, runs: Arc<AtomicUsize>| {
        move || {
            once.call_once(|| {
                // Stay inside long enough for others to queue behind (a switch or two).
                for _ in 0..10 {
                    gort::yield_now();
                }
                runs.fetch_add(1, Ordering::SeqCst);
            });
            // Whoever returns sees the closure's effect.
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        }
    };
    let goroutines: Vec<_> = (0..32)
        .map(|_| gort::spawn(racer(Arc::clone(&once), Arc::clone(&runs))))
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(racer(Arc::clone(&once), Arc::clone(&runs))))
        .collect();
    goroutines.into_iter().for_each(|g| g.join().unwrap());
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(once.is_completed());
}

#[test]
fn once_retries_after_a_panicking_closure() {
    let once = Once::new();
    let caught = std::panic::catch_unwind(|| once.call_once(|| panic!("first try")));
    assert!(caught.is_err());
    assert!(!once.is_completed());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(ran && once.is_completed());
}

#[test]
fn once_lock_initialises_exactly_once_under_contention() {
    let cell: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let racer = |cell: Arc<OnceLock<String>>, inits: Arc<AtomicUsize>, i: usize| {
        move || {
            cell.get_or_init(|| {
                gort::yield_now();
                inits.fetch_add(1, Ordering::SeqCst);
                format!("initialised by {i}")
            })
            .clone()
        }
    };
    let goroutines: Vec<_> = (0..32)
        .map(|i| gort::spawn(racer(Arc::clone(&cell), Arc::clone(&inits), i)))
        .collect();
    let thread = std::thread::spawn(racer(Arc::clone(&cell), Arc::clone(&inits), 99));
    let mut seen: Vec<String> = goroutines.into_iter().map(|g| g.join().unwrap()).collect();
    seen.push(thread.join().unwrap());
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert!(seen.iter().all(|s| s == &seen[0]));
    assert_eq!(cell.get(), Some(&seen[0]));
    assert_eq!(cell.set("late".to_owned()), Err("late".to_owned()));
    let cell = Arc::into_inner(cell).unwrap();
    assert_eq!(cell.into_inner(), Some(seen[0].clone()));
}

#[test]
fn once_lock_drops_its_value_once() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = OnceLock::new();
    assert!(cell.set(Counted(Arc::clone(&drops))).is_ok());
    let rejected = cell.set(Counted(Arc::clone(&drops)));
    drop(rejected);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(cell);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn many_goroutines_park_on_one_mutex_without_blocking_their_threads() {
    // More goroutines wait on the mutex than there are threads: they must park, or the holder
    // (which needs a thread to finish) could never run.
    let mutex = Arc::new(Mutex::new(0u32));
    let guard_holder = gort::run({
        let mutex = Arc::clone(&mutex);
        move || {
            let guard = mutex.lock();
            let waiters: Vec<_> = (0..64)
                .map(|_| {
                    let mutex = Arc::clone(&mutex);
                    gort::spawn(move || *mutex.lock() += 1)
                })
                .collect();
            for _ in 0..100 {
                gort::yield_now(); // let the waiters run and park
            }
            drop(guard);
            waiters.into_iter().for_each(|w| w.join().unwrap());
            *mutex.lock()
        }
    });
    assert_eq!(guard_holder, 64);
}
