//! Channels and `select!`: nothing lost or duplicated under contention and disconnection, values
//! handed back, buffered values drained, select fairness and width, timeouts that do not fire
//! early, and the same behaviour on plain threads.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use gort::chan::{self, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use gort::select;

fn long() -> bool {
    std::env::var_os("GORT_LONG_TESTS").is_some_and(|v| v == "1")
}

/// 8 producers and 8 consumers; producers leave one by one as their quota ends, and 7 of the
/// consumers leave mid-stream. Every value sent is received exactly once.
fn producers_and_consumers(make: fn() -> (Sender<u64>, Receiver<u64>)) {
    const PRODUCERS: u64 = 8;
    let per_producer: u64 = if long() { 100_000 } else { 5_000 };
    let (tx, rx) = make();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            gort::spawn(move || {
                let mut sent = Vec::new();
                // Producers leave at different points: producer p sends (p+1)/8 of the quota.
                for seq in 0..per_producer * (p + 1) / PRODUCERS {
                    let value = p << 32 | seq;
                    match tx.send(value) {
                        Ok(()) => sent.push(value),
                        Err(err) => {
                            assert_eq!(err.into_inner(), value, "the unsent value comes back");
                            break;
                        }
                    }
                }
                sent
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..8u64)
        .map(|c| {
            let rx = rx.clone();
            gort::spawn(move || {
                let mut got = Vec::new();
                // Consumers 0..7 leave after a while; consumer 7 drains to the end.
                let leave_after = if c == 7 { u64::MAX } else { 100 * (c + 1) };
                while (got.len() as u64) < leave_after {
                    match rx.recv() {
                        Ok(value) => got.push(value),
                        Err(_) => break,
                    }
                }
                got
            })
        })
        .collect();
    drop(rx);
    let sent: Vec<u64> = producers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    let received: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let unique: HashSet<u64> = received.iter().copied().collect();
    assert_eq!(unique.len(), received.len(), "a value was received twice");
    assert_eq!(received.len(), sent.len(), "a value was lost");
    assert_eq!(
        received.iter().fold(0u64, |acc, v| acc.wrapping_add(*v)),
        sent.iter().fold(0u64, |acc, v| acc.wrapping_add(*v)),
        "checksum"
    );
    assert_eq!(unique, sent.iter().copied().collect::<HashSet<_>>());
}

#[test]
fn rendezvous_channel_loses_and_duplicates_nothing() {
    producers_and_consumers(|| chan::bounded(0));
}

#[test]
fn bounded_channel_loses_and_duplicates_nothing() {
    producers_and_consumers(|| chan::bounded(16));
}

#[test]
fn unbounded_channel_loses_and_duplicates_nothing() {
    producers_and_consumers(chan::unbounded);
}

#[test]
fn a_send_on_a_disconnected_channel_hands_the_value_back() {
    let (tx, rx) = chan::bounded::<String>(0);
    let blocked = gort::spawn(move || tx.send("kept".to_owned()));
    // The sender is parked waiting for a receiver when the receiver goes.
    while gort::num_goroutines() == 0 {
        gort::yield_now();
    }
    std::thread::sleep(Duration::from_millis(10));
    drop(rx);
    assert_eq!(blocked.join().unwrap().unwrap_err().into_inner(), "kept");

    let (tx, rx) = chan::bounded::<Vec<u8>>(1);
    drop(rx);
    assert_eq!(
        tx.try_send(vec![1, 2]),
        Err(TrySendError::Disconnected(vec![1, 2]))
    );
    assert_eq!(
        tx.send_timeout(vec![3], Duration::from_secs(1))
            .unwrap_err()
            .into_inner(),
        vec![3]
    );
}

#[test]
fn receives_drain_buffered_values_before_reporting_disconnection() {
    let (tx, rx) = chan::bounded(4);
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(rx.recv().is_err());
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn a_rendezvous_send_waits_for_its_receiver() {
    let (tx, rx) = chan::bounded(0);
    let (done_tx, done_rx) = chan::unbounded();
    let sender = gort::spawn(move || {
        tx.send(1).unwrap();
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx.recv_timeout(Duration::from_millis(20)).is_err(),
        "the send completed with nobody receiving"
    );
    assert_eq!(rx.recv(), Ok(1));
    done_rx.recv().unwrap();
    sender.join().unwrap();
}

#[test]
fn stray_unparks_do_not_disturb_a_blocked_receive() {
    gort::run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let (who_tx, who_rx) = chan::bounded(1);
        let receiver = gort::spawn(move || {
            who_tx.send(gort::current().unwrap()).unwrap();
            // Every value arrives exactly once, whatever unparks land meanwhile.
            (0..100).map(|_| rx.recv().unwrap()).sum::<u32>()
        });
        let handle = who_rx.recv().unwrap();
        for value in 0..100 {
            for _ in 0..3 {
                handle.unpark();
                gort::yield_now();
            }
            tx.send(value).unwrap();
        }
        assert_eq!(receiver.join().unwrap(), (0..100).sum::<u32>());
    });
}

#[test]
fn timeouts_do_not_fire_early() {
    let (tx, rx) = chan::bounded::<u8>(0);
    for wait in [1, 5, 20] {
        let wait = Duration::from_millis(wait);
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= wait);
        let start = Instant::now();
        assert_eq!(tx.send_timeout(9, wait), Err(SendTimeoutError::Timeout(9)));
        assert!(start.elapsed() >= wait);
        // The same from a goroutine.
        let (tx, rx) = (tx.clone(), rx.clone());
        gort::spawn(move || {
            let start = Instant::now();
            assert!(rx.recv_timeout(wait).unwrap_err().is_timeout());
            assert!(start.elapsed() >= wait);
            let start = Instant::now();
            assert!(tx.send_timeout(1, wait).unwrap_err().is_timeout());
            assert!(start.elapsed() >= wait);
        })
        .join()
        .unwrap();
    }
}

#[test]
fn a_receive_that_times_out_leaves_nothing_behind() {
    // Many receivers time out while values trickle in: every value still reaches someone.
    let (tx, rx) = chan::bounded::<u32>(0);
    let receivers: Vec<_> = (0..16)
        .map(|_| {
            let rx = rx.clone();
            gort::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match rx.recv_timeout(Duration::from_micros(200)) {
                        Ok(value) => got.push(value),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return got,
                    }
                }
            })
        })
        .collect();
    drop(rx);
    for value in 0..2_000 {
        tx.send(value).unwrap();
    }
    drop(tx);
    let mut all: Vec<u32> = receivers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..2_000).collect::<Vec<_>>());
}

#[test]
fn select_chooses_fairly_among_ready_arms() {
    let (a_tx, a) = chan::unbounded();
    let (b_tx, b) = chan::unbounded();
    let (c_tx, c) = chan::unbounded();
    let rounds = 30_000;
    for _ in 0..rounds {
        a_tx.send(()).unwrap();
        b_tx.send(()).unwrap();
        c_tx.send(()).unwrap();
    }
    let mut counts = [0u32; 3];
    for _ in 0..rounds {
        let arm = select! {
            recv(a) -> _ => 0,
            recv(b) -> _ => 1,
            recv(c) -> _ => 2,
        };
        counts[arm] += 1;
    }
    let third = f64::from(rounds) / 3.0;
    for count in counts {
        assert!(
            (f64::from(count) - third).abs() <= third * 0.1,
            "arm counts {counts:?}"
        );
    }
}

macro_rules! select_over {
    ($receivers:ident; $($index:literal)*) => {
        select! {
            $( recv($receivers[$index]) -> value => ($index, value.unwrap()), )*
        }
    };
}

#[test]
fn select_waits_on_64_channels() {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..64).map(|_| chan::bounded::<u32>(0)).unzip();
    let selector = gort::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..64 {
            let (index, value) = select_over!(receivers;
                0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
                32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59
                60 61 62 63);
            assert_eq!(index as u32, value);
            seen.push(value);
        }
        seen
    });
    // Send on the channels in reverse order, each from its own goroutine. The senders stay
    // alive: a disconnected channel would be ready in every later select.
    let sends: Vec<_> = senders
        .iter()
        .enumerate()
        .rev()
        .map(|(i, tx)| {
            let tx = tx.clone();
            gort::spawn(move || tx.send(i as u32).unwrap())
        })
        .collect();
    sends.into_iter().for_each(|s| s.join().unwrap());
    let mut seen = selector.join().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (0..64).collect::<Vec<_>>());
    drop(senders);
}

#[test]
fn select_sends_and_defaults() {
    let (tx, rx) = chan::bounded(1);
    let first = select! {
        send(tx, 1) -> sent => sent.is_ok(),
        default => false,
    };
    assert!(first);
    let second = select! {
        send(tx, 2) -> _ => "sent",
        default => "full",
    };
    assert_eq!(second, "full");
    let start = Instant::now();
    let waited = select! {
        send(tx, 3) -> _ => false,
        default(Duration::from_millis(10)) => true,
    };
    assert!(waited && start.elapsed() >= Duration::from_millis(10));
    assert_eq!(rx.recv(), Ok(1));
    drop(rx);
    let err = select! {
        send(tx, 4) -> sent => sent.unwrap_err().into_inner(),
    };
    assert_eq!(err, 4);
}

#[test]
fn select_pairs_a_sender_and_a_receiver_that_both_select() {
    let (tx, rx) = chan::bounded::<u32>(0);
    // Each side also waits on a channel whose other end nobody uses (kept alive, so it is
    // never ready).
    let (_idle_tx, never_rx) = chan::bounded::<u32>(0);
    let (never_tx, _idle_rx) = chan::bounded::<u32>(0);
    let rounds = if long() { 100_000 } else { 5_000 };
    let receiver = gort::spawn(move || {
        let mut sum = 0u64;
        for _ in 0..rounds {
            select! {
                recv(rx) -> value => sum += u64::from(value.unwrap()),
                recv(never_rx) -> _ => unreachable!(),
            }
        }
        sum
    });
    for i in 0..rounds {
        select! {
            send(tx, i) -> sent => sent.unwrap(),
            send(never_tx, 0) -> _ => unreachable!(),
        }
    }
    let expected: u64 = (0..u64::from(rounds)).sum();
    assert_eq!(receiver.join().unwrap(), expected);
}

#[test]
fn select_times_out_with_after() {
    let (_tx, rx) = chan::bounded::<u8>(0);
    let start = Instant::now();
    let timed_out = select! {
        recv(rx) -> _ => false,
        recv(gort::time::after(Duration::from_millis(15))) -> _ => true,
    };
    assert!(timed_out);
    assert!(start.elapsed() >= Duration::from_millis(15));
}

#[test]
fn channels_work_between_plain_threads() {
    let (tx, rx) = chan::bounded(0);
    let thread = std::thread::spawn(move || (0..100).map(|_| rx.recv().unwrap()).sum::<u32>());
    for i in 0..100 {
        tx.send(i).unwrap();
    }
    assert_eq!(thread.join().unwrap(), 4950);
}
