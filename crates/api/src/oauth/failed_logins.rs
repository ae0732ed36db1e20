//! Failed client authentications, counted per client id and per source address: past
//! [`MAX_FAILURES`] in a [`WINDOW`], the token endpoint answers `429` with `Retry-After`
//! before checking any secret, so guessing secrets costs the guesser time and costs
//! reportroot no hashing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications allowed per key and window.
pub const MAX_FAILURES: u32 = 10;

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Most keys remembered: when full, expired windows are dropped, and if none has expired the
/// oldest half goes (an attacker rotating addresses cannot grow memory).
const MAX_KEYS: usize = 50_000;

/// What is counted: a client id or an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A client id as sent.
    Client(String),
    /// A source address.
    Address(IpAddr),
}

struct Window {
    started: Instant,
    failures: u32,
}

/// The counts.
#[derive(Default)]
pub struct FailedLogins {
    windows: Mutex<HashMap<Subject, Window>>,
}

impl FailedLogins {
    /// Seconds to wait if any of `subjects` is over the limit now.
    pub fn blocked(&self, subjects: &[Subject]) -> Option<u64> {
        let windows = self.lock();
        subjects
            .iter()
            .filter_map(|subject| windows.get(subject))
            .filter(|window| window.failures >= MAX_FAILURES)
            .filter_map(|window| WINDOW.checked_sub(window.started.elapsed()))
            .map(|left| left.as_secs().max(1))
            .max()
    }

    /// Counts one failure for each of `subjects`.
    pub fn record(&self, subjects: &[Subject]) {
        let mut windows = self.lock();
        if windows.len() + subjects.len() > MAX_KEYS {
            windows.retain(|_, window| window.started.elapsed() < WINDOW);
            if windows.len() + subjects.len() > MAX_KEYS {
                let mut ages: Vec<Instant> = windows.values().map(|w| w.started).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                windows.retain(|_, window| window.started > cutoff);
            }
        }
        for subject in subjects {
            let window = windows.entry(subject.clone()).or_insert(Window {
                started: Instant::now(),
                failures: 0,
            });
            if window.started.elapsed() >= WINDOW {
                *window = Window {
                    started: Instant::now(),
                    failures: 0,
                };
            }
            window.failures = window.failures.saturating_add(1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_failure_in_a_window_blocks_the_client_and_not_others() {
        let logins = FailedLogins::default();
        let client = [Subject::Client("a".into())];
        for _ in 0..MAX_FAILURES - 1 {
            logins.record(&client);
            assert_eq!(logins.blocked(&client), None);
        }
        logins.record(&client);
        let wait = logins.blocked(&client).expect("blocked");
        assert!((1..=60).contains(&wait));
        assert_eq!(logins.blocked(&[Subject::Client("b".into())]), None);
    }

    #[test]
    fn memory_is_bounded() {
        let logins = FailedLogins::default();
        for n in 0..(MAX_KEYS as u32 + 10) {
            logins.record(&[Subject::Address(IpAddr::from(n.to_be_bytes()))]);
        }
        assert!(logins.lock().len() <= MAX_KEYS);
    }
}
