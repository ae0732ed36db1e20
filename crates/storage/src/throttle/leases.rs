//! What one instance holds of the shared counters between statements: the admissions leased
//! and not handed out yet, and the refusals that stand until a known time. Both let a
//! request be decided without a round trip, and neither can admit more than the shared
//! counters allow:
//!
//! - a lease's admissions were counted by the statement that granted them, stamped with the
//!   end of their use ([`LeasePolicy::lease_ms`](super::LeasePolicy::lease_ms)), and are
//!   handed out only before then;
//! - a refusal stands until the entry that made the window full leaves it (its
//!   `retry_ms`): until then nothing leaves the window and other instances can only add to
//!   it, so asking again would be refused too — with the same limit and the `Retry-After`
//!   shortened by the time passed, which is what is answered. A refusal is kept per app, as
//!   the statement decides per app.
//!
//! How much to ask for: a slow start, then the demand of one lease's time and half again. The
//! first request of a window asks for one; a lease used up before its time asks for what its
//! pace would use in a whole lease time, ×1.5, but at most four times the last (1, 4, 16, …:
//! a window that gets ~100 requests a lease time reaches its size in 4 statements, not 8 as
//! by doubling; measured, the slow start was half the statements of a 6 s bench run); after a lease
//! that ran out of time, for what was used of it ×1.5. Why the half again: a lease just the
//! size of the demand runs out a little early half the time, and each time that is one more
//! statement (measured: ~2 statements per window and lease time without it, 1 with it); the
//! admissions leased and not used stay about half a lease time's demand. While one request asks for a lease, the others that find
//! nothing held ask for one admission each, so that a burst does not take many leases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use reportroot_model::TenantId;
use uuid::Uuid;

use super::{Decision, ThrottleCounters, Verdict, Window, WindowRequest};
use crate::StorageError;

/// The largest lease asked for. Why a cap: leased admissions not used are lost to the
/// window; 4096 per lease time (a second, or a sixtieth of a long window: 10 s for Graph's
/// 10 minutes) is ~400–4k requests a second of one tenant's report API on one instance for
/// one statement a lease time.
pub const MAX_WANT: i64 = 4096;

/// Most windows held; past it, those with nothing usable are dropped, and if none is, all
/// (dropping a lease only wastes it; dropping a refusal only asks again).
const MAX_HELD: usize = 100_000;

/// How long a request asking for a lease keeps others from asking for one, at most (a
/// statement that fails or never answers must not keep them off for long).
const ASKING_MS: i64 = 1_000;

/// The leases and refusals of one instance (one per process: two in one process are two
/// instances).
#[derive(Debug, Default)]
pub struct Leases {
    /// foldhash, not std's SipHash: every request decided here hashes its key.
    held: Mutex<hashbrown::HashMap<Key, Held>>,
    statements: AtomicU64,
    local: AtomicU64,
}

/// A window and the app asking (leases and refusals are per app). `Copy`, without the
/// window's name: a request decided from memory allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    window: Window,
    app: Option<Uuid>,
}

impl Key {
    fn of(request: &WindowRequest) -> Key {
        Key {
            tenant: request.tenant,
            window: request.window,
            app: request.app,
        }
    }
}

/// What is held for one key.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    /// Leased admissions not handed out yet.
    left: i64,
    /// They may be handed out before this (ms since the epoch).
    until_ms: i64,
    /// When the last statement started a lease.
    started_ms: i64,
    /// Admissions used since the last statement started a lease.
    used: i64,
    /// The lease that statement asked for.
    want: i64,
    /// A request asks for a lease until this, unless answered before.
    asking_until_ms: i64,
    /// The last refusal and until when it stands.
    refused: Option<(Verdict, i64)>,
}

/// A statement to run: ask the shared counters for `want` admissions ([`Leases::local`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// Admissions to ask for (at least 1).
    pub want: i64,
    /// Whether this request asks for the key's lease (others meanwhile ask for one).
    lead: bool,
}

impl Leases {
    /// Nothing held.
    pub fn new() -> Self {
        Leases::default()
    }

    /// Decides `request` from what is held, counting the admission; or, when nothing held
    /// decides it, what to ask the shared counters (then [`Leases::settle`] their answer).
    pub fn local(&self, request: &WindowRequest) -> Result<Verdict, Ask> {
        let now = request.now_ms;
        let lease_ms = request.lease.lease_ms;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let key = Key::of(request);
        if let Some(entry) = held.get_mut(&key) {
            if entry.left > 0 && now < entry.until_ms {
                entry.left -= 1;
                entry.used += 1;
                self.local.fetch_add(1, Ordering::Relaxed);
                return Ok(Verdict::Admitted);
            }
            if let Some((verdict, until_ms)) = entry.refused.filter(|(_, until)| now < *until) {
                self.local.fetch_add(1, Ordering::Relaxed);
                return Ok(verdict.with_retry(until_ms - now));
            }
        }
        self.statements.fetch_add(1, Ordering::Relaxed);
        if held.len() >= MAX_HELD && !held.contains_key(&key) {
            forget_unusable(&mut held, now, lease_ms);
        }
        let entry = held.entry(key).or_default();
        if now < entry.asking_until_ms {
            return Err(Ask {
                want: 1,
                lead: false,
            });
        }
        let and_half = |n: i64| n.saturating_add(n / 2);
        let want = if now < entry.until_ms {
            // Used up in time: the pace of a whole lease time, at most four times the last.
            let elapsed = now.saturating_sub(entry.started_ms).max(1);
            let pace = entry.used.saturating_mul(lease_ms) / elapsed;
            and_half(pace).min(entry.want.saturating_mul(4))
        } else if now < entry.until_ms.saturating_add(lease_ms) {
            and_half(entry.used)
        } else {
            1
        };
        let want = want.clamp(1, MAX_WANT);
        entry.asking_until_ms = now.saturating_add(ASKING_MS);
        Err(Ask { want, lead: true })
    }

    /// Keeps what the shared counters answered to `ask` for `request`: the rest of a lease,
    /// or a refusal.
    pub fn settle(&self, request: &WindowRequest, ask: Ask, decision: &Decision) {
        let now = request.now_ms;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = held.entry(Key::of(request)).or_default();
        if ask.lead {
            entry.asking_until_ms = 0;
        }
        if decision.verdict != Verdict::Admitted {
            let retry_ms = match decision.verdict {
                Verdict::PerAppFull { retry_ms } | Verdict::TotalFull { retry_ms } => retry_ms,
                Verdict::Admitted => 0,
            };
            entry.refused = Some((decision.verdict, now.saturating_add(retry_ms)));
            return;
        }
        entry.refused = None;
        let rest = decision.granted.saturating_sub(1).max(0);
        let until_ms = now.saturating_add(request.lease.lease_ms);
        if entry.left > 0 && now < entry.until_ms {
            // Two leases at once (a request that asked for one while another did): handed
            // out together, before the earlier one's end.
            entry.left = entry.left.saturating_add(rest);
            entry.until_ms = entry.until_ms.min(until_ms);
            entry.used += 1;
        } else {
            *entry = Held {
                left: rest,
                until_ms,
                started_ms: now,
                used: 1,
                want: entry.want,
                asking_until_ms: entry.asking_until_ms,
                refused: None,
            };
        }
        if ask.lead {
            entry.want = ask.want;
        }
    }

    /// Decides `request`: from what is held, else with one statement on `counters`.
    pub async fn admit(
        &self,
        counters: &ThrottleCounters<'_>,
        request: &WindowRequest,
    ) -> Result<Verdict, StorageError> {
        match self.local(request) {
            Ok(verdict) => Ok(verdict),
            Err(ask) => {
                let decision = counters.admit(request, ask.want).await?;
                self.settle(request, ask, &decision);
                Ok(decision.verdict)
            }
        }
    }

    /// Statements asked for so far ([`Leases::local`] answering `Err`): the round trips.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Requests decided from what was held so far, without a statement.
    pub fn local_decisions(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }

    /// Leased admissions held and not handed out yet, all windows together (usable or not).
    pub fn unused(&self) -> i64 {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.values().map(|entry| entry.left).sum()
    }
}

/// Drops the entries that can no longer decide anything nor size a lease; all if that frees
/// nothing.
fn forget_unusable(held: &mut hashbrown::HashMap<Key, Held>, now: i64, lease_ms: i64) {
    held.retain(|_, entry| {
        now < entry.until_ms.saturating_add(lease_ms)
            || now < entry.asking_until_ms
            || entry.refused.is_some_and(|(_, until)| now < until)
    });
    if held.len() >= MAX_HELD {
        held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::LeasePolicy;

    fn request(now_ms: i64) -> WindowRequest {
        WindowRequest {
            tenant: TenantId(Uuid::nil()),
            window: Window::Csv("getOffice365ActiveUserCounts"),
            app: None,
            now_ms,
            window_ms: 10_000,
            per_app: 1_000_000,
            total: 1_000_000,
            lease: LeasePolicy {
                exact_below: 100,
                share: 4,
                lease_ms: 1_000,
            },
        }
    }

    fn admitted(granted: i64) -> Decision {
        Decision {
            verdict: Verdict::Admitted,
            granted,
        }
    }

    #[test]
    fn leases_start_at_one_and_grow_fourfold_while_used_up_in_time() {
        let leases = Leases::new();
        let mut wants = Vec::new();
        let mut now = 0;
        for _ in 0..40 {
            now += 1;
            let r = request(now);
            if let Err(ask) = leases.local(&r) {
                wants.push(ask.want);
                leases.settle(&r, ask, &admitted(ask.want));
            }
        }
        assert_eq!(wants, [1, 4, 16, 64]);
        assert_eq!(leases.statements(), 4);
        assert_eq!(leases.local_decisions(), 36);
        assert_eq!(leases.unused(), 85 - 40);
    }

    #[test]
    fn a_lease_is_not_handed_out_after_its_time_and_sizes_the_next() {
        let leases = Leases::new();
        let first = request(0);
        let ask = leases.local(&first).expect_err("a statement");
        leases.settle(&first, Ask { want: 8, ..ask }, &admitted(8));
        for now in 1..=2 {
            assert_eq!(leases.local(&request(now)), Ok(Verdict::Admitted));
        }
        // At 1 s the lease's time is over: 5 left, not handed out; 3 were used, and half again.
        let later = leases.local(&request(1_000)).expect_err("a statement");
        assert_eq!(later.want, 4);
        // Long idle: from one again.
        let idle = request(5_000);
        leases.settle(&request(1_000), later, &admitted(1));
        assert_eq!(leases.local(&idle).expect_err("a statement").want, 1);
    }

    #[test]
    fn a_lease_used_up_early_sizes_the_next_for_a_whole_lease_time() {
        let leases = Leases::new();
        let first = request(0);
        let ask = leases.local(&first).expect_err("a statement");
        leases.settle(&first, Ask { want: 8, ..ask }, &admitted(8));
        for now in 1..8 {
            assert_eq!(leases.local(&request(now * 100)), Ok(Verdict::Admitted));
        }
        // 8 used in 800 ms: 10 a second (the lease time), and half again: 15 (under 4 × 8).
        assert_eq!(leases.local(&request(800)).expect_err("used up").want, 15);
    }

    #[test]
    fn a_refusal_stands_until_its_retry_with_the_wait_shortened() {
        let leases = Leases::new();
        let r = request(0);
        let ask = leases.local(&r).expect_err("a statement");
        let refused = Decision {
            verdict: Verdict::PerAppFull { retry_ms: 500 },
            granted: 0,
        };
        leases.settle(&r, ask, &refused);
        assert_eq!(
            leases.local(&request(200)),
            Ok(Verdict::PerAppFull { retry_ms: 300 })
        );
        assert!(
            leases.local(&request(500)).is_err(),
            "asked again at 500 ms"
        );
        // Another app is not refused by it.
        let other = WindowRequest {
            app: Some(Uuid::new_v4()),
            ..request(200)
        };
        assert!(leases.local(&other).is_err());
    }

    #[test]
    fn while_one_asks_for_a_lease_the_others_ask_for_one() {
        let leases = Leases::new();
        let r = request(0);
        let lead = leases.local(&r).expect_err("a statement");
        leases.settle(&r, lead, &admitted(1));
        let lead = leases.local(&request(1)).expect_err("a statement");
        assert_eq!(lead.want, 4);
        let other = leases.local(&request(1)).expect_err("a statement");
        assert_eq!(other.want, 1);
        leases.settle(&request(1), other, &admitted(1));
        leases.settle(&request(1), lead, &admitted(4));
        assert_eq!(leases.unused(), 3);
    }
}
