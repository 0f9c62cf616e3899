//! `cairn prune`.

use cairn_engine::ops::prune::{PruneOptions, PruneSummary};
use cairn_engine::{IndexedRepository, NoProgress, Progress};

use super::{Ctx, cancel_on_signals};
use crate::cli::{PruneArgs, PruneLimits};
use crate::output::{self, Outcome, bytes};

pub fn run(ctx: &Ctx, args: &PruneArgs) -> anyhow::Result<Outcome> {
    let summary = prune(ctx, ctx.open_indexed()?, &args.limits, args.dry_run)?;
    if ctx.json() {
        output::json(&summary)?;
    } else {
        print(&summary)?;
    }
    Ok(Outcome::Ok)
}

pub fn prune(
    ctx: &Ctx,
    mut repo: IndexedRepository,
    limits: &PruneLimits,
    dry_run: bool,
) -> anyhow::Result<PruneSummary> {
    let cancel = cancel_on_signals()?;
    let bar = ctx.bar();
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &NoProgress,
    };
    let options = PruneOptions::default()
        .max_unused_percent(limits.max_unused)
        .max_repack(limits.max_repack)
        .dry_run(dry_run);
    let summary = repo.prune(&options, progress, &cancel);
    if let Some(bar) = &bar {
        bar.finish();
    }
    Ok(summary?)
}

pub fn print(s: &PruneSummary) -> anyhow::Result<()> {
    let p = &s.plan;
    crate::outln!(
        "{} snapshots use {} blobs; {} packs hold {} ({} used, {} unused)",
        s.snapshots,
        s.used_blobs,
        p.packs,
        bytes(p.stored_bytes),
        bytes(p.used_bytes),
        bytes(p.unused_bytes)
    )?;
    if s.packs_adopted > 0 {
        crate::outln!(
            "indexed {} packs left by an interrupted backup or prune",
            s.packs_adopted
        )?;
    }
    if s.dry_run {
        crate::outln!(
            "would delete {} unused packs ({}) and repack {} packs ({}, {} blobs kept)",
            p.unused_packs,
            bytes(p.unused_pack_bytes),
            p.repack_packs,
            bytes(p.repack_bytes),
            p.repack_blobs
        )?;
        crate::outln!(
            "would free about {}; {} unused would remain",
            bytes(p.unused_bytes.saturating_sub(p.unused_bytes_after)),
            bytes(p.unused_bytes_after)
        )?;
        if s.bytes_condemned_before > 0 {
            crate::outln!(
                "{} condemned by an earlier prune is deleted by the next one",
                bytes(s.bytes_condemned_before)
            )?;
        }
        return Ok(());
    }
    crate::outln!(
        "deleted {} packs ({}), repacked {} packs into {} ({})",
        s.swept.packs_deleted,
        bytes(s.swept.bytes_deleted),
        p.repack_packs,
        s.packs_written,
        bytes(s.bytes_written)
    )?;
    if s.swept.packs_rescued > 0 {
        crate::outln!(
            "kept {} condemned packs that snapshots written since use",
            s.swept.packs_rescued
        )?;
    }
    crate::outln!("freed {}", bytes(s.bytes_freed))?;
    if s.swept.bytes_waiting > 0 {
        crate::outln!(
            "{} in {} packs waits for backups that were running: the next prune deletes it",
            bytes(s.swept.bytes_waiting),
            s.swept.packs_waiting
        )?;
    }
    if p.used_blobs_missing > 0 {
        crate::errln!(
            "warning: {} blobs that snapshots use are missing from the repository; run `cairn check`",
            p.used_blobs_missing
        );
    }
    Ok(())
}
