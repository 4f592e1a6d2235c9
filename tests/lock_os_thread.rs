//! `lock_os_thread` keeps a goroutine on its OS thread through everything that can switch it out,
//! while other goroutines keep moving freely.

/// The OS thread's id, from the kernel (no thread-local that a compiler could cache).
fn thread_id() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Runs `f` beside busy unlocked goroutines, so that Ps change hands and stealing happens.
fn with_noise(f: impl FnOnce()) {
    let noise: Vec<_> = (0..64)
        .map(|_| {
            gort::spawn(|| {
                for _ in 0..500 {
                    gort::yield_now();
                }
            })
        })
        .collect();
    f();
    for handle in noise {
        handle.join().unwrap();
    }
}

#[test]
fn a_locked_goroutine_stays_on_its_thread() {
    let runs: Vec<_> = (0..8)
        .map(|_| {
            gort::spawn(|| {
                gort::lock_os_thread();
                let home = thread_id();
                for round in 0..200 {
                    match round % 3 {
                        0 => gort::yield_now(),
                        1 => gort::spawn(|| ()).join().unwrap(),
                        _ => gort::blocking(|| {
                            std::thread::sleep(std::time::Duration::from_micros(50))
                        }),
                    }
                    assert_eq!(thread_id(), home, "moved in round {round}");
                }
                gort::unlock_os_thread();
            })
        })
        .collect();
    with_noise(|| {
        for handle in runs {
            handle.join().unwrap();
        }
    });
}

#[test]
fn locks_nest() {
    let nested = gort::spawn(|| {
        gort::lock_os_thread();
        gort::lock_os_thread();
        let home = thread_id();
        gort::unlock_os_thread();
        for round in 0..200 {
            if round % 2 == 0 {
                gort::yield_now();
            } else {
                gort::spawn(|| ()).join().unwrap();
            }
            assert_eq!(thread_id(), home, "still locked once, round {round}");
        }
        gort::unlock_os_thread();
    });
    with_noise(|| nested.join().unwrap());
}
