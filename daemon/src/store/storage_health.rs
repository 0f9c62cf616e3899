//! How each network repository's storage answered in its last run: the repositories
//! screen shows it ("7 requests retried in run 42; last error: ..."), so an operator
//! sees a struggling object store before a run fails on it.

use super::{RunRecord, RunStorage, STORAGE_HEALTH, StoreError, Tx};

/// Keeps `run`'s storage health as its repository's latest, unless a later run's is
/// recorded already (ends the store refused are recorded late, out of order).
pub fn record(tx: &mut Tx<'_>, run: &RunRecord) -> Result<(), StoreError> {
    let Some(health) = &run.storage else {
        return Ok(());
    };
    let newer_kept = tx
        .get_named::<RunStorage>(STORAGE_HEALTH, &run.repository)?
        .is_some_and(|kept| kept.run > run.id);
    if newer_kept {
        return Ok(());
    }
    tx.put_named(
        STORAGE_HEALTH,
        &run.repository,
        &RunStorage {
            run: run.id,
            finished: run.finished.unwrap_or_default(),
            health: health.clone(),
        },
    )
}

/// Forgets a repository's health with the repository.
pub fn forget(tx: &mut Tx<'_>, repository: &str) -> Result<(), StoreError> {
    tx.delete_named(STORAGE_HEALTH, repository).map(drop)
}
