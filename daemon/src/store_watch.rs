//! Brings the store back after its disk failed: while it is degraded (or run ends wait
//! to be recorded), tries every few seconds to reopen it and record what waits, so the
//! daemon recovers by itself once space is freed or the disk is writable again.

use std::sync::Arc;
use std::time::Duration;

use crate::state::DaemonState;

const EVERY: Duration = Duration::from_secs(3);

pub async fn recover_periodically(
    state: Arc<DaemonState>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(EVERY);
    let mut health = state.store.watch_health();
    loop {
        // Also at once when the store recovers through another caller's write.
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
            _ = health.changed() => {}
        }
        let waiting = state.store.degraded().is_some() || state.runner.unrecorded() > 0;
        if !waiting {
            continue;
        }
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if state.store.recover_if_due() {
                state.runner.record_unrecorded();
            }
        })
        .await;
    }
}
