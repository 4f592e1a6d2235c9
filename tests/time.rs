//! Timers: they fire in deadline order and never early, tickers drop missed ticks, stopped and
//! reset timers leave nothing stale, and a great many pending timers all fire.

use std::time::{Duration, Instant};

use gort::time::{Ticker, Timer};

#[test]
fn sleeps_never_return_early_in_goroutines_or_threads() {
    for millis in [0, 1, 3, 10] {
        let wait = Duration::from_millis(millis);
        let start = Instant::now();
        gort::time::sleep(wait);
        assert!(start.elapsed() >= wait);
        let slept = gort::spawn(move || {
            let start = Instant::now();
            gort::time::sleep(wait);
            start.elapsed()
        });
        assert!(slept.join().unwrap() >= wait);
    }
}

#[test]
fn timers_fire_in_deadline_order_and_not_early() {
    let start = Instant::now();
    // Armed in shuffled order; each channel receives the time its timer fired at, so the order
    // is read from the timer thread's clock, not from how goroutines were scheduled after.
    let offsets = [35, 5, 25, 45, 15, 40, 10, 30, 20, 0];
    let timers: Vec<(u64, _)> = offsets
        .iter()
        .map(|&offset| (offset, gort::time::after(Duration::from_millis(offset))))
        .collect();
    let mut fired: Vec<(u64, Instant)> = timers
        .into_iter()
        .map(|(offset, rx)| (offset, rx.recv().unwrap()))
        .collect();
    for &(offset, fired_at) in &fired {
        assert!(
            fired_at >= start + Duration::from_millis(offset),
            "fired early"
        );
    }
    fired.sort_by_key(|&(offset, _)| offset);
    assert!(
        fired.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "a later deadline fired first: {fired:?}"
    );
}

#[test]
fn a_ticker_drops_the_ticks_a_slow_receiver_missed() {
    let ticker = Ticker::new(Duration::from_millis(2));
    gort::time::sleep(Duration::from_millis(30)); // about 15 periods unreceived
    let buffered = ticker.receiver().recv().unwrap();
    assert!(
        ticker.receiver().try_recv().is_err(),
        "missed ticks came in a burst"
    );
    let next = ticker.receiver().recv().unwrap();
    assert!(next > buffered);
    ticker.stop();
    assert!(ticker.receiver().try_recv().is_err());
}

#[test]
fn stopped_and_reset_timers_leave_nothing_stale() {
    let timer = Timer::new(Duration::from_millis(1));
    while timer.receiver().is_empty() {
        gort::time::sleep(Duration::from_millis(1));
    }
    // It fired (its time is waiting in the channel); stopping reports that and empties it.
    assert!(!timer.stop());
    assert!(timer.receiver().try_recv().is_err());

    let start = Instant::now();
    assert!(!timer.reset(Duration::from_millis(10)));
    let fired = timer.receiver().recv().unwrap();
    assert!(fired >= start + Duration::from_millis(10));

    let timer = Timer::new(Duration::from_secs(3600));
    assert!(timer.reset(Duration::from_millis(1)));
    timer.receiver().recv().unwrap();
}

#[test]
fn many_pending_timers_all_fire() {
    let long = std::env::var_os("GORT_LONG_TESTS").is_some_and(|v| v == "1");
    let count: u64 = if long { 1_000_000 } else { 100_000 };
    let start = Instant::now();
    let timers: Vec<(Instant, Timer)> = (0..count)
        .map(|i| {
            // Deadlines spread over 1..=50 ms, out of order.
            let wait = Duration::from_micros(1_000 + (i * 7_919) % 49_000);
            (Instant::now() + wait, Timer::new(wait))
        })
        .collect();
    let mut fired = 0;
    for (deadline, timer) in &timers {
        let at = timer.receiver().recv().unwrap();
        assert!(at >= *deadline, "fired early");
        fired += 1;
    }
    assert_eq!(fired, count);
    assert!(start.elapsed() >= Duration::from_millis(1));
}
