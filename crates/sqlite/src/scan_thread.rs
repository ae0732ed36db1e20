//! Reads that may scan a tenant's history run on a thread of their own at the lowest CPU
//! priority (Linux's `SCHED_IDLE` class and nice 19), so that the bounded reads of every
//! other request come first.
//!
//! Why: SQLite runs in the server's process, and a scan (`teams gt 100`, no index: ~0.5 s of
//! a core on 1.12M rows) ran on a runtime worker at the same priority as everything else: on
//! 2 cores one scan took half the machine, and another tenant's indexed pages went from p99
//! 23 to 35 ms (bench/isolation.sh, with the scan limits of one scan at a time). At nice 19
//! the kernel gives the scan what the other threads leave (a nice-0 thread weighs 68 times
//! as much), so the scan waits and the pages do not; a scan that waits past the read time
//! limit is stopped as before (`503`).
//!
//! A thread per scan, not a pool: scans are few (the API admits a few at a time, and the
//! storage's slots bound them: a scan's thread holds its slots until it ends, also when its
//! request was dropped), each costs milliseconds to seconds, and a thread costs
//! ~20 µs to start; a pool's threads would keep their priority for other work, and a thread
//! cannot raise its priority again without privileges.

use reportroot_storage::StorageError;

/// The nice value of scan threads: the lowest priority.
const SCAN_NICE: i32 = 19;

/// Runs `work` on a new thread of the lowest priority and waits for it without blocking the
/// runtime.
pub(crate) async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("reportroot-scan".to_owned())
        .spawn(move || {
            lower_priority();
            // The receiver is gone only if the request was dropped: nothing to tell.
            let _ = answer.send(work());
        })
        .map_err(|error| StorageError::backend("cannot start a thread for a scan", error))?;
    answered.await.map_err(|error| {
        StorageError::backend("the scan's thread ended without an answer", error)
    })?
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class and sets its nice value to
/// [`SCAN_NICE`] (Linux: both are per thread; `setpriority(PRIO_PROCESS, 0, …)`, rustix's
/// `None`, sets the calling thread's). Neither needs a privilege to lower one's priority; if
/// either fails the other still applies, and if both do the scan runs at normal priority.
///
/// Why `SCHED_IDLE` besides nice 19: a nice-19 thread still runs out the slice it was given
/// when a request's thread wakes up, while a waking normal thread preempts an idle-class
/// thread at once. It matters more since SQLite's page caches stopped sharing a mutex
/// (`.cargo/config.toml`): scans no longer sleep on it, and with the scan limits lifted
/// (2 scans at once) they now finish 4–8 of their queries within the read limit where 1–2.
/// On this 2-core machine the other tenant's p99 beside two scans varied too much from run to
/// run (5.6–15 ms before, 7–32 ms after) to show the class's effect (bench/RESULTS.md).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadPriority, ThreadSchedulePolicy,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if let Err(error) =
            set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle)
        {
            tracing::debug!(?error, "cannot put a scan thread in the idle class");
        }
        if let Err(error) = rustix::process::setpriority_process(None, SCAN_NICE) {
            tracing::debug!(%error, "cannot lower a scan thread's priority");
        }
    }
}

/// The calling thread's nice value (tests).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn current_nice() -> i32 {
    rustix::process::getpriority_process(None).unwrap_or(0)
}

/// Whether the calling thread is in the `SCHED_IDLE` class (tests).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn in_idle_class() -> bool {
    use thread_priority::{
        thread_schedule_policy, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
    };
    matches!(
        thread_schedule_policy(),
        Ok(ThreadSchedulePolicy::Normal(
            NormalThreadSchedulePolicy::Idle
        ))
    )
}
