//! [`PauseHistogram`]: how long a cycle held goroutines, counted per power-of-two range of
//! durations (like Go's `/gc/pauses:seconds` metric), so that a user sees the whole spread of
//! holds and not only the longest.
//!
//! Invariant: bucket 0 counts holds under 1 µs; bucket `i` (1 ≤ i < last) counts holds in
//! `[2^(i-1), 2^i)` µs; the last bucket counts every longer hold.

use std::ops::Range;
use std::time::Duration;

/// Buckets: under 1 µs, then powers of two up to 2,048 µs and beyond.
const BUCKETS: usize = 13;

/// How many goroutine holds (pauses) fell in each power-of-two range of durations.
///
/// # Examples
///
/// ```
/// gort::spawn(|| gort::yield_now()).join().unwrap();
/// gort::gc();
/// let pauses = gort::mem_stats().last_cycle_pauses;
/// for (range, holds) in pauses.buckets().filter(|(_, holds)| *holds > 0) {
///     println!("{range:?}: {holds} holds");
/// }
/// println!("99.9% of holds took at most {:?}", pauses.quantile(0.999));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PauseHistogram {
    counts: [u64; BUCKETS],
    longest: Duration,
}

impl PauseHistogram {
    pub(crate) const EMPTY: PauseHistogram = PauseHistogram {
        counts: [0; BUCKETS],
        longest: Duration::ZERO,
    };

    /// Counts one hold of `pause`.
    pub(crate) fn record(&mut self, pause: Duration) {
        let micros = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.counts[bucket.min(BUCKETS - 1)] += 1;
        self.longest = self.longest.max(pause);
    }

    /// Adds the holds of `other`.
    pub(crate) fn add(&mut self, other: &PauseHistogram) {
        for (count, more) in self.counts.iter_mut().zip(other.counts) {
            *count += more;
        }
        self.longest = self.longest.max(other.longest);
    }

    /// The longest hold counted, exactly (`Duration::ZERO` with none).
    ///
    /// # Examples
    ///
    /// ```
    /// gort::gc();
    /// let stats = gort::mem_stats();
    /// assert_eq!(stats.last_cycle_pauses.longest(), stats.last_cycle_max_pause);
    /// assert!(stats.last_cycle_pauses.quantile(1.0) >= stats.last_cycle_max_pause);
    /// ```
    pub fn longest(&self) -> Duration {
        self.longest
    }

    /// Each bucket's range of durations and its count of holds, shortest first; the last range
    /// ends at `Duration::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pauses = gort::mem_stats().last_cycle_pauses;
    /// let (first, _) = pauses.buckets().next().unwrap();
    /// assert_eq!(first, std::time::Duration::ZERO..std::time::Duration::from_micros(1));
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = (Range<Duration>, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(bucket, &count)| (bucket_range(bucket), count))
    }

    /// The holds counted.
    ///
    /// # Examples
    ///
    /// ```
    /// let pauses = gort::mem_stats().last_cycle_pauses;
    /// assert_eq!(pauses.holds(), pauses.buckets().map(|(_, holds)| holds).sum::<u64>());
    /// ```
    pub fn holds(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// An upper bound on the `q` quantile (0.0 to 1.0) of the holds: the end of the bucket it
    /// falls in (`Duration::ZERO` with no holds).
    ///
    /// # Examples
    ///
    /// ```
    /// gort::gc();
    /// let pauses = gort::mem_stats().last_cycle_pauses;
    /// assert!(pauses.quantile(0.5) <= pauses.quantile(0.99));
    /// ```
    pub fn quantile(&self, q: f64) -> Duration {
        let holds = self.holds();
        if holds == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * holds as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_range(bucket).end;
            }
        }
        Duration::MAX
    }
}

/// The durations bucket `bucket` counts (module invariant).
fn bucket_range(bucket: usize) -> Range<Duration> {
    let start = match bucket {
        0 => Duration::ZERO,
        _ => Duration::from_micros(1 << (bucket - 1)),
    };
    let end = match bucket {
        _ if bucket == BUCKETS - 1 => Duration::MAX,
        _ => Duration::from_micros(1 << bucket),
    };
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_land_in_their_power_of_two_bucket() {
        let mut pauses = PauseHistogram::EMPTY;
        for micros in [0, 1, 3, 4, 7, 100, 5_000] {
            pauses.record(Duration::from_micros(micros));
        }
        pauses.record(Duration::from_nanos(999));
        let counts: Vec<_> = pauses.buckets().map(|(_, holds)| holds).collect();
        assert_eq!(counts, [2, 1, 1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
        for (range, _) in pauses.buckets().take(BUCKETS - 1) {
            let mut one = PauseHistogram::EMPTY;
            one.record(range.start);
            one.record(range.end - Duration::from_nanos(1));
            assert_eq!(
                one.buckets().find(|(_, holds)| *holds > 0).unwrap().0,
                range
            );
            assert_eq!(one.holds(), 2, "{range:?}");
        }
    }

    #[test]
    fn quantiles_answer_the_end_of_their_bucket() {
        let mut pauses = PauseHistogram::EMPTY;
        assert_eq!(pauses.quantile(0.5), Duration::ZERO);
        (0..998).for_each(|_| pauses.record(Duration::from_micros(3)));
        pauses.record(Duration::from_micros(40));
        pauses.record(Duration::from_millis(9));
        assert_eq!(pauses.quantile(0.0), Duration::from_micros(4));
        assert_eq!(pauses.quantile(0.998), Duration::from_micros(4));
        assert_eq!(pauses.quantile(0.999), Duration::from_micros(64));
        assert_eq!(pauses.quantile(1.0), Duration::MAX);
        let mut twice = pauses;
        twice.add(&pauses);
        assert_eq!(twice.holds(), 2_000);
        assert_eq!(twice.quantile(0.999), Duration::from_micros(64));
        assert_eq!(twice.longest(), Duration::from_millis(9));
    }
}
