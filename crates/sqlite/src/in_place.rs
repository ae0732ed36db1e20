//! Where a bounded read runs: in place on the runtime's worker thread while such reads are
//! quick, handed to another thread (`block_in_place`, `spawn_blocking`) for a while after
//! one was slow because it was heavy or read the disk.
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
//! request; and a read that works for milliseconds (a 10-year daily series, 27 ms) holds its
//! worker's other requests as long. A read that took longer than [`SLOW_READ`] and either
//! made SQLite check its time limit [`HEAVY_READ_CHECKS`] times or read the disk
//! ([`held_its_worker`]) is taken as a
//! sign of that, and the next [`HAND_OFF_FOR`] of bounded reads go to other threads as
//! before; then in place again.
//!
//! Why not every slow read: a read is also slow when its thread was preempted, which on a
//! busy machine is every few seconds (2 cores, 32 connections, the load generator beside the
//! server: 1–10 reads over 5 ms in 5 s of a page's benchmark), and each sent a second of
//! reads through `block_in_place`, so that the hand-off was on most of the time. Not for
//! those: 14.0–14.5k → 15.4–16.5k req/s, the server's CPU 98–102 → 88–93 µs a request,
//! voluntary switches 0.6–0.8 → 0.07 a request (bench/RESULTS.md, "Reads in place unless
//! the read was heavy or read the disk"). Why not only the disk: then heavy reads ran in
//! place, and pages beside four connections asking for the 10-year series fell from
//! 3.2–3.8k to 0.6–1.6k req/s (`bench/heavy-reads.sh`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A bounded read slower than this, if it was heavy or read the disk ([`held_its_worker`]),
/// sends the next reads to other threads. Why 5 ms: the
/// largest bounded read, a page of 1,000 rows (the server's page size), is answered whole,
/// its 249 KB of JSON included, in 3.3–3.6 ms at best on the 2-core bench machine with a CI
/// run beside it; a read alone that takes longer waited for something (disk, a lock) or
/// the machine is overloaded, and handing off then costs little.
pub(crate) const SLOW_READ: Duration = Duration::from_millis(5);

/// SQLite checks a read's time limit every this many virtual-machine instructions
/// (`sqlite3_progress_handler`); the number of checks is the read's work.
pub(crate) const PROGRESS_EVERY: std::ffi::c_int = 4096;

/// A slow read whose statements made at least this many checks ([`PROGRESS_EVERY`]) was
/// heavy, not preempted. Why 8: measured on 1 tenant × 10 years (one at a time, release
/// build), a page of 10 or 1,000 rows makes none, `$count` of 1M rows 11–14 (0.7–1.2 ms),
/// a daily series of 3 years 31 (4.8 ms) and of 10 years 101 (17–20 ms): 5–20 checks a
/// millisecond, so 8 is about the millisecond of CPU that the rule measured before.
pub(crate) const HEAVY_READ_CHECKS: u32 = 8;

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

    /// Notes that a read that started at `started` took `took`; `held_its_worker` tells
    /// whether it was heavy or read the disk ([`held_its_worker`]). Asked only of a slow read,
    /// and not while a hand-off has over half its time left: under a load of heavy reads most
    /// reads are slow, and the question reads a file (~17 µs).
    pub(crate) fn finished(
        &self,
        started: Instant,
        took: Duration,
        held_its_worker: impl FnOnce() -> bool,
    ) {
        if took <= SLOW_READ {
            return;
        }
        let ended = started + took;
        let fresh = self.micros(ended + HAND_OFF_FOR / 2);
        if self.hand_off_until.load(Ordering::Relaxed) > fresh || !held_its_worker() {
            return;
        }
        let until = self.micros(ended + HAND_OFF_FOR);
        self.hand_off_until.fetch_max(until, Ordering::Relaxed);
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }
}

/// Whether a slow read held its worker: its statements made at least [`HEAVY_READ_CHECKS`]
/// checks (`checks`, counted by the time limit's progress handler), or it read the disk
/// ([`fetched_from_storage`]). Why SQLite's count and not the thread's CPU time: the count is
/// kept anyway and costs nothing to read, where the CPU time is a system call at the start
/// of every read (`CLOCK_THREAD_CPUTIME_ID` has no vDSO fast path: 3 % of a page's profile).
pub(crate) fn held_its_worker(checks: u32) -> bool {
    checks >= HEAVY_READ_CHECKS || fetched_from_storage()
}

thread_local! {
    /// The thread's `read_bytes` when [`fetched_from_storage`] last read it.
    static FETCHED: Cell<u64> = const { Cell::new(0) };
}

/// Whether this thread fetched bytes from storage (a page-cache miss) since it last asked
/// (the first time: since it started): Linux's per-thread I/O accounting, `read_bytes` of
/// `/proc/thread-self/io`. Why a file and not `getrusage(RUSAGE_THREAD)`: rustix has no
/// `getrusage`, and the workspace forbids unsafe code; only a slow read asks, and a read of
/// a small `/proc` file is cheap beside it. Where the file cannot be read (not Linux, no
/// `/proc`), every slow read counts as a wait, as before.
pub(crate) fn fetched_from_storage() -> bool {
    let Some(now) = std::fs::read_to_string("/proc/thread-self/io")
        .ok()
        .and_then(|io| read_bytes(&io))
    else {
        return true;
    };
    FETCHED.with(|last| now > last.replace(now))
}

/// The `read_bytes:` field of a `/proc/…/io` file.
fn read_bytes(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|line| line.strip_prefix("read_bytes:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_read_hands_off_the_next_second_of_reads() {
        let policy = InPlace::new();
        let start = Instant::now();
        assert!(policy.allowed(start));
        policy.finished(start, SLOW_READ / 2, || true);
        assert!(
            policy.allowed(start + SLOW_READ),
            "a quick read changes nothing"
        );
        policy.finished(start, SLOW_READ * 2, || false);
        assert!(
            policy.allowed(start + SLOW_READ * 2),
            "a slow read that neither worked nor read the disk (preempted) changes nothing"
        );
        policy.finished(start, SLOW_READ * 2, || true);
        let ended = start + SLOW_READ * 2;
        assert!(!policy.allowed(ended));
        assert!(!policy.allowed(ended + HAND_OFF_FOR - Duration::from_millis(1)));
        assert!(policy.allowed(ended + HAND_OFF_FOR));
    }

    #[test]
    fn a_fresh_hand_off_is_not_renewed_nor_asked_about() {
        let policy = InPlace::new();
        let start = Instant::now();
        policy.finished(start, SLOW_READ * 2, || true);
        let later = start + HAND_OFF_FOR / 4;
        policy.finished(later, SLOW_READ * 2, || unreachable!("not asked"));
        assert!(policy.allowed(start + SLOW_READ * 2 + HAND_OFF_FOR));
        // Past half of it, a heavy read renews it.
        let late = start + HAND_OFF_FOR * 3 / 4;
        policy.finished(late, SLOW_READ * 2, || true);
        assert!(!policy.allowed(start + SLOW_READ * 2 + HAND_OFF_FOR));
        assert!(policy.allowed(late + SLOW_READ * 2 + HAND_OFF_FOR));
    }

    #[test]
    fn a_quick_read_does_not_shorten_a_hand_off() {
        let policy = InPlace::new();
        let start = Instant::now();
        policy.finished(start, SLOW_READ * 2, || true);
        policy.finished(start + SLOW_READ * 3, Duration::from_micros(50), || true);
        assert!(!policy.allowed(start + HAND_OFF_FOR));
    }

    #[test]
    fn read_bytes_is_read_from_the_io_file() {
        let io = "rchar: 4096\nwchar: 0\nsyscr: 2\nsyscw: 0\nread_bytes: 12288\n\
                  write_bytes: 0\ncancelled_write_bytes: 0\n";
        assert_eq!(read_bytes(io), Some(12288));
        assert_eq!(read_bytes("rchar: 1\n"), None);
    }

    #[test]
    fn a_read_that_made_sqlite_check_often_held_its_worker() {
        assert!(held_its_worker(HEAVY_READ_CHECKS));
        assert!(held_its_worker(HEAVY_READ_CHECKS * 10));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_slow_read_that_neither_worked_nor_read_the_disk_did_not() {
        if !io_accounting() {
            return;
        }
        let idle = std::thread::spawn(|| {
            fetched_from_storage();
            std::thread::sleep(SLOW_READ);
            held_its_worker(HEAVY_READ_CHECKS - 1)
        })
        .join();
        assert!(matches!(idle, Ok(false)), "asleep, it did not");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_that_read_nothing_since_it_last_asked_fetched_nothing() {
        if !io_accounting() {
            return;
        }
        let second = std::thread::spawn(|| {
            fetched_from_storage();
            fetched_from_storage()
        })
        .join();
        assert!(matches!(second, Ok(false)));
    }

    /// Whether the kernel accounts threads' I/O here (`/proc/thread-self/io`: not without
    /// `CONFIG_TASK_IO_ACCOUNTING`, nor in some sandboxes); without it every slow read
    /// counts as a wait, which the tests of the answers "no" cannot check.
    #[cfg(target_os = "linux")]
    fn io_accounting() -> bool {
        std::fs::metadata("/proc/thread-self/io").is_ok()
    }
}
