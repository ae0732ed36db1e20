//! The admitted requests of one in-memory window (SQLite's throttle; PostgreSQL's is shared):
//! their times, exactly when the limit is small, and in bounded runs when it is large.
//!
//! Why runs: one time per admitted request grows with the limit, and a configured limit far
//! above Graph's (the benchmark's 10^8, or an operator's "count but never refuse") let the
//! lists grow through a whole window: 600 s at 50k req/s is 30M entries per window, and ~3 %
//! of the server's CPU went to growing them. Far from a limit (above `exact_below`, as the
//! shared counters' leases decide), requests within 1/1024 of a window share one run, which
//! counts them all as arriving at its last request's time: they leave the window up to that
//! much later than they would, never earlier, so no sliding window ever admits more than the
//! limit, and a window holds at most ~1,025 runs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Requests admitted in one window, oldest first.
#[derive(Debug, Default)]
pub(super) struct Admitted {
    runs: VecDeque<Run>,
    /// Requests in `runs`.
    total: usize,
}

/// Requests admitted between `first` and `last`, counted at `last`.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: Instant,
    last: Instant,
    count: usize,
}

/// How many runs a window is cut into when its limit is large.
const RUNS_PER_WINDOW: u32 = 1024;

impl Admitted {
    /// Drops the runs that left the window; `Err(wait)` when `limit` requests remain in it.
    pub(super) fn check(
        &mut self,
        window: Duration,
        limit: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        while let Some(run) = self.runs.front().copied() {
            if now.duration_since(run.last) < window {
                break;
            }
            self.runs.pop_front();
            self.total -= run.count;
        }
        if self.total < limit {
            return Ok(());
        }
        let oldest = self.runs.front().map_or(now, |run| run.last);
        Err(window.saturating_sub(now.duration_since(oldest)))
    }

    /// Counts one request admitted at `now`: a time of its own when `limit` is at most
    /// `exact_below`, else in the newest run if that started less than 1/1024 of a window ago.
    pub(super) fn record(
        &mut self,
        window: Duration,
        limit: usize,
        exact_below: usize,
        now: Instant,
    ) {
        self.total += 1;
        if limit > exact_below {
            if let Some(run) = self.runs.back_mut() {
                if now.duration_since(run.first) < window / RUNS_PER_WINDOW {
                    run.last = now;
                    run.count += 1;
                    return;
                }
            }
        }
        self.runs.push_back(Run {
            first: now,
            last: now,
            count: 1,
        });
    }

    /// When the newest request was admitted.
    pub(super) fn newest(&self) -> Option<Instant> {
        self.runs.back().map(|run| run.last)
    }

    #[cfg(test)]
    pub(super) fn runs(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    #[test]
    fn small_limits_keep_every_time_and_large_ones_bounded_runs() {
        let start = Instant::now();
        let mut exact = Admitted::default();
        let mut runs = Admitted::default();
        // 100,000 requests over 5 s: 50 µs apart.
        for n in 0..100_000u32 {
            let now = start + Duration::from_micros(u64::from(n) * 50);
            assert!(runs.check(WINDOW, 100_000_000, now).is_ok());
            runs.record(WINDOW, 100_000_000, 1000, now);
            if n < 1000 {
                assert!(exact.check(WINDOW, 1000, now).is_ok());
                exact.record(WINDOW, 1000, 1000, now);
            }
        }
        assert_eq!(exact.runs(), 1000);
        assert_eq!(
            exact.check(WINDOW, 1000, start + Duration::from_secs(5)),
            Err(Duration::from_secs(5))
        );
        assert!(runs.runs() <= 513, "{}", runs.runs());
        assert_eq!(runs.total, 100_000);
    }

    #[test]
    fn a_run_leaves_the_window_with_its_last_request_never_before() {
        let start = Instant::now();
        let mut admitted = Admitted::default();
        let step = WINDOW / RUNS_PER_WINDOW / 4;
        for n in 0..4 {
            admitted.record(WINDOW, 5000, 1000, start + step * n);
        }
        assert_eq!(admitted.runs(), 1);
        // The first request's window has passed, the last one's has not: all four still count.
        let after_first = start + WINDOW + step;
        assert_eq!(admitted.check(WINDOW, 4, after_first), Err(step * 2));
        assert!(admitted.check(WINDOW, 4, start + WINDOW + step * 3).is_ok());
        assert_eq!(admitted.total, 0);
    }
}
