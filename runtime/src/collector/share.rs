//! A cycle's share of the processors. Like Go's collector, which aims its background work at a
//! quarter of `GOMAXPROCS` (`gcBackgroundUtilization`), a cycle aims at a quarter of the
//! processors' time while goroutines wait to run: with four processors that is a whole one
//! (Go's dedicated worker), with fewer a part of one (Go's fractional worker, which Go uses for
//! `GOMAXPROCS` of 3 or less), and with more still one, since a cycle is one goroutine. When no
//! goroutine waits, the cycle takes all the time it can (Go's idle workers): nobody waits for
//! the processor it holds.
//!
//! Invariants:
//! - the cycle pauses ([`Share::pause`]) only between batches, never while it holds a claim;
//! - it steps aside (sleeps) only while goroutines wait to run, and only until its time is back
//!   within its share, at most [`LONGEST_STEP_ASIDE`]: a cycle always ends;
//! - time it ran while nobody waited does not count against it.

use std::time::{Duration, Instant};

use crate::sched;

/// The share of the processors' time a cycle aims at while goroutines wait: Go's.
const SHARE_OF_PROCESSORS: f64 = 0.25;

/// The longest a cycle steps aside at once.
const LONGEST_STEP_ASIDE: Duration = Duration::from_millis(10);

/// The shortest step aside: for less, a sleep (a timer, a park and a wake-up) costs more than
/// it gives back, and the cycle only yields; what it owes is paid at a later pause.
const SHORTEST_STEP_ASIDE: Duration = Duration::from_micros(20);

/// The time a cycle has run, against its share of the time it has taken.
pub(crate) struct Share {
    /// The share of one processor's time the cycle may take while goroutines wait.
    of_one: f64,
    started: Instant,
    resumed: Instant,
    ran: Duration,
}

impl Share {
    /// The share of a cycle starting now, on a runtime with `procs` processors.
    pub(crate) fn start(procs: usize) -> Share {
        let now = Instant::now();
        Share {
            of_one: procs as f64 * SHARE_OF_PROCESSORS,
            started: now,
            resumed: now,
            ran: Duration::ZERO,
        }
    }

    /// Between two batches: lets the goroutines waiting on this processor run and, if the cycle
    /// has run more than its share while goroutines wait, sleeps until it is back within it.
    /// Time run while nobody waited is free: the share counts from the last look that found
    /// nobody waiting.
    pub(crate) fn pause(&mut self) {
        let now = Instant::now();
        self.ran += now - self.resumed;
        let step_aside = if sched::goroutines_waiting() {
            self.behind(now - self.started)
        } else {
            self.started = now;
            self.ran = Duration::ZERO;
            None
        };
        match step_aside {
            Some(step_aside) => crate::time::sleep(step_aside),
            None => {
                sched::yield_current();
            }
        }
        self.resumed = Instant::now();
    }

    /// How long the cycle must wait for its run time to be back within its share of `elapsed`,
    /// if it is over it (at most [`LONGEST_STEP_ASIDE`]).
    fn behind(&self, elapsed: Duration) -> Option<Duration> {
        if self.of_one >= 1.0 {
            return None; // a whole processor: the cycle is one goroutine, it cannot take more
        }
        let due = self.ran.div_f64(self.of_one);
        let behind = due.saturating_sub(elapsed);
        (behind >= SHORTEST_STEP_ASIDE).then(|| behind.min(LONGEST_STEP_ASIDE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(procs: usize, ran: Duration) -> Share {
        Share {
            ran,
            ..Share::start(procs)
        }
    }

    #[test]
    fn with_two_processors_a_cycle_runs_half_the_time() {
        let share = ran(2, Duration::from_millis(3));
        assert_eq!(share.behind(Duration::from_millis(6)), None);
        assert_eq!(
            share.behind(Duration::from_millis(4)),
            Some(Duration::from_millis(2))
        );
    }

    #[test]
    fn with_one_processor_a_cycle_runs_a_quarter_of_the_time() {
        let share = ran(1, Duration::from_millis(1));
        assert_eq!(
            share.behind(Duration::from_millis(1)),
            Some(Duration::from_millis(3))
        );
    }

    #[test]
    fn a_step_aside_is_bounded() {
        let share = ran(1, Duration::from_secs(1));
        assert_eq!(share.behind(Duration::ZERO), Some(LONGEST_STEP_ASIDE));
    }

    #[test]
    fn a_cycle_that_is_barely_behind_only_yields() {
        let share = ran(2, Duration::from_micros(100));
        assert_eq!(share.behind(Duration::from_micros(190)), None);
        assert_eq!(
            share.behind(Duration::from_micros(180)),
            Some(Duration::from_micros(20))
        );
    }

    #[test]
    fn with_four_processors_a_cycle_never_steps_aside() {
        let share = ran(4, Duration::from_secs(1));
        assert_eq!(share.behind(Duration::ZERO), None);
    }
}
