//! The audit trail: every change and every refusal, kept so that no caller can fill the
//! state disk with it or crowd out the runs. Refusals are coalesced per caller and RPC
//! (the first is written at once; repeats within the window become one record with a
//! count), calls beyond a rate per uid are turned away before they cost anything,
//! stored fields are cut to a bound, and the table keeps its newest records within a
//! size and an age (the dropped ones are counted), like journald's own limits.

pub mod chain;
mod pending;

pub use pending::Pending;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_engine::shown::cut;

use crate::config::AuditSection;
use crate::store::{AUDIT, AuditRecord, Counter, Store, StoreError, Tx, UnixMs, now_ms};

/// Longest RPC path stored (a real one is under 60 bytes; a forged one may be 8 KB).
const RPC_MAX: usize = 200;
/// Longest request (as JSON) stored.
const ARGUMENTS_MAX: usize = 4096;
/// Longest result message stored.
const RESULT_MAX: usize = 1024;
/// Records removed per write at most, so one write never turns into a long purge.
const PRUNE_BATCH: usize = 1000;

/// A refusal being counted: written once when it opened, again with the repeats when
/// its window closes.
#[derive(Debug)]
struct Window {
    opened: Instant,
    repeats: u64,
    last: AuditRecord,
}

/// A uid's calls allowed now (a token bucket: `rate` a second, `burst` at once).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Default)]
pub struct AuditTrail {
    windows: Mutex<HashMap<(u32, String), Window>>,
    buckets: Mutex<HashMap<u32, Bucket>>,
}

impl AuditTrail {
    /// Whether `uid` may make another call now: `calls_per_second`, in bursts of four
    /// times that. Admins are never held back (they must always get in to act).
    pub fn admit(&self, uid: u32, config: &AuditSection) -> bool {
        if config.calls_per_second == 0 {
            return true;
        }
        let rate = f64::from(config.calls_per_second);
        let burst = rate * 4.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(uid).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let earned = now.duration_since(bucket.updated).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + earned).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A refused call. The first of its caller and kind in a window is returned, to be
    /// written now; repeats are counted into the window's closing record.
    pub fn refused(&self, record: AuditRecord, window: Duration) -> Option<AuditRecord> {
        let key = (record.uid, refusal_kind(&record));
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get_mut(&key) {
            Some(open) if open.opened.elapsed() < window => {
                open.repeats += 1;
                open.last = record;
                None
            }
            _ => {
                windows.insert(
                    key,
                    Window {
                        opened: Instant::now(),
                        repeats: 0,
                        last: record.clone(),
                    },
                );
                Some(record)
            }
        }
    }

    /// The records of windows closed by now (every window with `all`, at shutdown):
    /// one per window that saw repeats, counting them. Also forgets idle rate buckets.
    pub fn closed(&self, window: Duration, all: bool) -> Vec<AuditRecord> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        windows.retain(|_, open| {
            if !all && open.opened.elapsed() < window {
                return true;
            }
            if open.repeats > 0 {
                out.push(AuditRecord {
                    count: open.repeats,
                    ..open.last.clone()
                });
            }
            false
        });
        drop(windows);
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, b| b.updated.elapsed() < Duration::from_secs(60));
        out
    }
}

/// What makes two refusals "the same": the RPC (any RPC not served counts as one, so
/// made-up paths cannot open a window each) and the status code.
fn refusal_kind(record: &AuditRecord) -> String {
    let rpc = if crate::auth::required_role(&record.rpc).is_some() {
        record.rpc.as_str()
    } else {
        "(not an RPC)"
    };
    let code = record.result.split(':').next().unwrap_or("");
    format!("{code} {rpc}")
}

/// A record with its fields cut to what is stored.
pub fn bounded(record: AuditRecord) -> AuditRecord {
    AuditRecord {
        rpc: cut(&record.rpc, RPC_MAX),
        arguments: cut(&record.arguments, ARGUMENTS_MAX),
        result: cut(&record.result, RESULT_MAX),
        ..record
    }
}

/// Writes `records` (made by [`crate::rpc::audit_record`], so cut to their bounds) in
/// one transaction of their own; see [`append`].
pub fn write(
    store: &Store,
    config: &AuditSection,
    records: Vec<AuditRecord>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    store.write("writing the audit trail", |tx| append(tx, config, records))
}

/// Adds `records` inside `tx` (the transaction of the change they describe, or one of
/// their own), each linked to the one before (see [`chain`]), and trims the table to
/// the retention, counting what it drops.
pub fn append(
    tx: &mut Tx<'_>,
    config: &AuditSection,
    records: Vec<AuditRecord>,
) -> Result<(), StoreError> {
    let cutoff = now_ms() - UnixMs::from(config.max_age_days) * 86_400_000;
    let mut prev = tx.audit_tip()?;
    for record in records {
        let seq = tx.next_sequence(Counter::Audit)?;
        let record = chain::linked(
            AuditRecord {
                seq,
                ..bounded(record)
            },
            prev,
        );
        tx.put_numbered(AUDIT, seq, &record)?;
        prev = record.hash;
    }
    let dropped = tx.trim_audit(config.max_records, cutoff, PRUNE_BATCH)?;
    if dropped > 0 {
        tx.add_to_counter(Counter::AuditDropped, dropped)?;
    }
    Ok(())
}

/// Writes the records of closed refusal windows every second until `stop`, then
/// those of every window still open.
pub async fn flush_periodically(
    state: std::sync::Arc<crate::state::DaemonState>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let all = tokio::select! {
            _ = tick.tick() => false,
            () = &mut stop => true,
        };
        let config = state.audit_config();
        let window = Duration::from_secs(u64::from(config.denial_window_seconds));
        let records = state.audit.closed(window, all);
        if !records.is_empty() {
            let state = state.clone();
            let written =
                tokio::task::spawn_blocking(move || write(&state.store, &config, records)).await;
            if let Ok(Err(e)) = written {
                tracing::error!(error = %e, "cannot write the audit trail");
            }
        }
        if all {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(uid: u32, rpc: &str) -> AuditRecord {
        AuditRecord {
            seq: 0,
            time: now_ms(),
            uid,
            role: "none".into(),
            rpc: rpc.into(),
            arguments: String::new(),
            result: "PermissionDenied: no".into(),
            count: 1,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn repeated_refusals_are_one_record_now_and_one_count_when_the_window_closes() {
        let trail = AuditTrail::default();
        let window = Duration::from_secs(60);
        assert!(
            trail
                .refused(refusal(7, "/cairn.v1.Jobs/DeleteJob"), window)
                .is_some()
        );
        for _ in 0..999 {
            assert!(
                trail
                    .refused(refusal(7, "/cairn.v1.Jobs/DeleteJob"), window)
                    .is_none()
            );
        }
        // Made-up paths are one kind, however many there are.
        assert!(
            trail
                .refused(refusal(7, &"/x/".repeat(3000)), window)
                .is_some()
        );
        assert!(trail.refused(refusal(7, "/y/other"), window).is_none());
        // Another caller has windows of their own.
        assert!(
            trail
                .refused(refusal(8, "/cairn.v1.Jobs/DeleteJob"), window)
                .is_some()
        );
        assert!(
            trail.closed(window, false).is_empty(),
            "the windows are still open"
        );
        let mut closed = trail.closed(window, true);
        closed.sort_by_key(|r| r.count);
        let counts: Vec<u64> = closed.iter().map(|r| r.count).collect();
        assert_eq!(counts, [1, 999]);
    }

    #[test]
    fn stored_fields_are_cut_to_their_bounds() {
        let stored = bounded(AuditRecord {
            arguments: "a".repeat(1 << 20),
            ..refusal(7, &"/p".repeat(4000))
        });
        assert!(stored.rpc.len() < RPC_MAX + 40, "{}", stored.rpc.len());
        assert!(stored.arguments.len() < ARGUMENTS_MAX + 40);
        assert!(stored.arguments.ends_with("(1048576 bytes in all)"));
    }

    #[test]
    fn calls_beyond_the_rate_are_turned_away_and_come_back_with_time() {
        let trail = AuditTrail::default();
        let config = AuditSection {
            calls_per_second: 10,
            ..AuditSection::default()
        };
        let admitted = (0..100).filter(|_| trail.admit(9, &config)).count();
        assert_eq!(admitted, 40, "a burst of four seconds' worth");
        std::thread::sleep(Duration::from_millis(300));
        assert!(trail.admit(9, &config));
        assert!(
            trail.admit(10, &config),
            "another uid has its own allowance"
        );
    }
}
