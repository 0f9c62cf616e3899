//! Prune: frees the space of data no snapshot uses, beside running backups (see
//! FORMAT.md, "Prune"). Mark every used blob, sweep what earlier prunes condemned,
//! plan, repack partly used packs, condemn, and sweep again when no backup stands in
//! the way.

pub(crate) mod packs;
pub mod plan;
mod repack;
pub mod sweep;
mod usage;

use std::time::Instant;

use serde::Serialize;
use tracing::info;

use crate::cancel::CancelToken;
use crate::condemn::{CondemnRecord, Condemned};
use crate::error::{Error, Result};
use crate::lock::RepoLock;
use crate::progress::Progress;
use crate::repository::IndexedRepository;
use packs::PackTable;
use plan::{Limits, PlanFigures};
use sweep::SweepFigures;
use usage::Usage;

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Unused space tolerated in partly used packs, in percent of the used space.
    pub max_unused_percent: f64,
    /// At most this many bytes of packs rewritten in one run.
    pub max_repack: Option<u64>,
    /// Plan and report only.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused_percent: 10.0,
            max_repack: None,
            dry_run: false,
        }
    }
}

impl PruneOptions {
    pub fn max_unused_percent(mut self, percent: f64) -> Self {
        self.max_unused_percent = percent;
        self
    }
    pub fn max_repack(mut self, bytes: Option<u64>) -> Self {
        self.max_repack = bytes;
        self
    }
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    fn validate(&self) -> Result<()> {
        if !(0.0..=100.0).contains(&self.max_unused_percent) {
            return Err(Error::invalid(
                format!("max unused {}%", self.max_unused_percent),
                "must be between 0 and 100 percent",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneSummary {
    pub dry_run: bool,
    pub snapshots: u64,
    pub used_blobs: u64,
    /// What this run's plan found and decided (before its own sweep).
    pub plan: PlanFigures,
    /// Condemned packs swept by this run (its own and earlier prunes').
    pub swept: SweepFigures,
    /// Packs no index named (left by an interrupted backup or prune), now indexed.
    pub packs_adopted: u64,
    pub packs_written: u64,
    pub bytes_written: u64,
    /// Stored bytes freed: packs deleted minus packs written by the repack.
    pub bytes_freed: u64,
    /// Condemned before this run and not swept yet (a dry run sweeps nothing).
    pub bytes_condemned_before: u64,
    pub duration_ms: u64,
}

impl IndexedRepository {
    pub fn prune(
        &mut self,
        options: &PruneOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<PruneSummary> {
        self.repo.require_full_key("prune")?;
        options.validate()?;
        let started = Instant::now();
        let backend = self.repo.backend().clone();
        let keys = self.repo.keys().clone();
        // A dry run changes nothing, so it needs no lock and never stands in the way.
        let lock = match options.dry_run {
            true => None,
            false => Some(RepoLock::exclusive(backend.clone(), keys.clone(), "prune")?),
        };
        let mut summary = PruneSummary {
            dry_run: options.dry_run,
            ..PruneSummary::default()
        };
        self.index.refresh(backend.as_ref(), &keys)?;
        if !options.dry_run {
            // Packs left by an interrupted backup or prune are indexed, so that what
            // they hold is counted: a running backup's packs too, which is harmless
            // (its lock holds back the sweep of anything condemned after it started).
            self.index
                .set_condemned(Condemned::load(backend.as_ref(), &keys)?.packs);
            let adopted = self.recover_unindexed_packs()?;
            summary.packs_adopted = adopted.adopted as u64;
        }
        progress.phase("finding used data");
        let mut usage = Usage::default();
        usage.walk_new_snapshots(self, cancel)?;
        let mut table = PackTable::load(backend.as_ref(), &keys)?;
        summary.bytes_condemned_before = Condemned::load(backend.as_ref(), &keys)?.bytes();
        if let Some(lock) = &lock {
            let swept = sweep::sweep(self, &mut table, &mut usage, lock, progress, cancel)?;
            summary.swept.add(&swept);
        }
        let condemned = Condemned::load(backend.as_ref(), &keys)?;
        let plan = plan::plan(
            &table,
            &usage.used,
            &condemned.packs,
            Limits {
                max_unused_percent: options.max_unused_percent,
                max_repack: options.max_repack,
            },
        );
        summary.plan = plan.figures.clone();
        let Some(lock) = lock else {
            return Ok(finish(summary, &usage, started));
        };
        if !plan.repack.is_empty() {
            progress.phase("repacking");
            progress.add_total(plan.repack.len() as u64, 0);
            let repacked = repack::repack(self, &plan.repack, progress, cancel)?;
            summary.packs_written = repacked.sizes.len() as u64;
            summary.bytes_written = repacked.bytes_written;
            let sizes = repacked.sizes.iter().copied().collect();
            for (id, packs) in repacked.files {
                table.add_file(id, packs, &sizes);
            }
        }
        let doomed = plan.condemned();
        if !doomed.is_empty() {
            let bytes = doomed
                .iter()
                .filter_map(|p| table.packs.get(p).and_then(|i| i.size))
                .sum();
            lock.ensure_held("prune")?;
            let id = CondemnRecord::new(doomed, bytes).write(backend.as_ref(), &keys)?;
            info!(record = %id.short(), packs = plan.figures.unused_packs + plan.figures.repack_packs, bytes, "packs condemned");
            let swept = sweep::sweep(self, &mut table, &mut usage, &lock, progress, cancel)?;
            summary.swept.add(&swept);
        }
        drop(lock);
        let summary = finish(summary, &usage, started);
        info!(
            packs_deleted = summary.swept.packs_deleted,
            packs_written = summary.packs_written,
            bytes_freed = summary.bytes_freed,
            waiting = summary.swept.bytes_waiting,
            "prune finished"
        );
        Ok(summary)
    }
}

fn finish(mut summary: PruneSummary, usage: &Usage, started: Instant) -> PruneSummary {
    summary.snapshots = usage.snapshots_walked() as u64;
    summary.used_blobs = usage.used.len() as u64;
    summary.bytes_freed = summary
        .swept
        .bytes_deleted
        .saturating_sub(summary.bytes_written);
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary
}
