//! Where a bounded read runs: in place on the runtime's worker thread while such reads are
//! quick, handed to another thread (`block_in_place`, `spawn_blocking`) for a while after
//! one was slow.
//!
//! Why in place: a bounded read is an indexed page of a few rows, tens of microseconds of
//! CPU when the file is in the OS's page cache. `block_in_place` hands the worker's queue to
//! another thread first (the blocking pool wakes one, and the two swap back afterwards): on
//! 1 tenant × 10 years, `reportDate ge 2020-01-01&$top=10` at 32 connections, the
//! thread switches were a quarter of the profile; running in place took the page from 12.7k
//! to 17.4k req/s in back-to-back runs, and with the page caches apart (`.cargo/config.toml`)
//! from 12.5–13.0k to 15.4–15.9k req/s in paired runs, the server's CPU from 113–120 to
//! 92–94 µs a request (bench/RESULTS.md, "Uncached pages: reads in place").
//!
//! Why not always: a read that waits on the disk (a file larger than memory, a cold cache)
//! holds its worker while it waits, and with two workers two such reads would stall every
//! request. A read that took longer than [`SLOW_READ`] is taken as a sign of that, and the
//! next [`HAND_OFF_FOR`] of bounded reads go to other threads as before; then in place again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A bounded read slower than this sends the next reads to other threads. Why 5 ms: the
/// largest bounded read, a page of 1,000 rows (the server's page size), is answered whole,
/// its 249 KB of JSON included, in 3.3–3.6 ms at best on the 2-core bench machine with a CI
/// run beside it; a read alone that takes longer waited for something (disk, a lock) or
/// the machine is overloaded, and handing off then costs little.
pub(crate) const SLOW_READ: Duration = Duration::from_millis(5);

/// How long reads are handed off after a slow one.
pub(crate) const HAND_OFF_FOR: Duration = Duration::from_secs(1);

/// The policy's state: until when reads are handed off, in microseconds since `epoch`.
pub(crate) struct InPlace {
    epoch: Instant,
    hand_off_until: AtomicU64,
}

impl InPlace {
    /// Reads run in place from the start.
    pub(crate) fn new() -> Self {
        InPlace {
            epoch: Instant::now(),
            hand_off_until: AtomicU64::new(0),
        }
    }

    /// Whether a read starting at `now` may run in place.
    pub(crate) fn allowed(&self, now: Instant) -> bool {
        self.micros(now) >= self.hand_off_until.load(Ordering::Relaxed)
    }

    /// Notes that a read that started at `started` took `took`.
    pub(crate) fn finished(&self, started: Instant, took: Duration) {
        if took > SLOW_READ {
            let until = self.micros(started + took + HAND_OFF_FOR);
            self.hand_off_until.fetch_max(until, Ordering::Relaxed);
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_read_hands_off_the_next_second_of_reads() {
        let policy = InPlace::new();
        let start = Instant::now();
        assert!(policy.allowed(start));
        policy.finished(start, SLOW_READ / 2);
        assert!(
            policy.allowed(start + SLOW_READ),
            "a quick read changes nothing"
        );
        policy.finished(start, SLOW_READ * 2);
        let ended = start + SLOW_READ * 2;
        assert!(!policy.allowed(ended));
        assert!(!policy.allowed(ended + HAND_OFF_FOR - Duration::from_millis(1)));
        assert!(policy.allowed(ended + HAND_OFF_FOR));
    }

    #[test]
    fn a_quick_read_does_not_shorten_a_hand_off() {
        let policy = InPlace::new();
        let start = Instant::now();
        policy.finished(start, SLOW_READ * 2);
        policy.finished(start + SLOW_READ * 3, Duration::from_micros(50));
        assert!(!policy.allowed(start + HAND_OFF_FOR));
    }
}
