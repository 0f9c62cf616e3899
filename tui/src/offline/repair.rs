//! `cairn repair index` and `cairn repair snapshots`.

use cairn_engine::{NoProgress, Progress};

use super::{Ctx, cancel_on_signals};
use crate::cli::RepairCommand;
use crate::output::{self, Outcome};

pub fn run(ctx: &Ctx, command: &RepairCommand) -> anyhow::Result<Outcome> {
    let cancel = cancel_on_signals()?;
    let bar = ctx.bar();
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &NoProgress,
    };
    let outcome = match *command {
        RepairCommand::Index { dry_run } => {
            let summary = ctx.open()?.repair_index(dry_run, progress, &cancel);
            if let Some(bar) = &bar {
                bar.finish();
            }
            let s = summary?;
            if ctx.json() {
                output::json(&s)?;
            } else {
                for damaged in &s.damaged_index_files {
                    crate::outln!("unusable: {damaged}")?;
                }
                for refused in &s.packs_refused {
                    crate::outln!("left unindexed: {refused}")?;
                }
                let verb = if dry_run { "would index" } else { "indexed" };
                crate::outln!(
                    "{verb} {} packs ({} from index files, {} read whole); {} packs named by the index are missing",
                    s.packs_kept + s.packs_read,
                    s.packs_kept,
                    s.packs_read,
                    s.packs_missing
                )?;
                if !dry_run {
                    crate::outln!(
                        "wrote {} index files, removed {}",
                        s.index_files_written,
                        s.index_files_removed
                    )?;
                }
            }
            Outcome::from_problems(s.packs_refused.len())
        }
        RepairCommand::Snapshots { dry_run } => {
            let summary = ctx
                .open_indexed()?
                .repair_snapshots(dry_run, progress, &cancel);
            if let Some(bar) = &bar {
                bar.finish();
            }
            let s = summary?;
            if ctx.json() {
                output::json(&s)?;
            } else {
                for repaired in &s.repaired {
                    match repaired.new {
                        Some(new) => crate::outln!(
                            "snapshot {} repaired as {}:",
                            repaired.old.short(),
                            new.short()
                        )?,
                        None => crate::outln!("snapshot {} is damaged:", repaired.old.short())?,
                    }
                    for entry in &repaired.damaged {
                        match entry.kind {
                            "dir" => crate::outln!(
                                "  {}: directory listing lost (empty now)",
                                output::name(&entry.path)
                            )?,
                            _ => crate::outln!(
                                "  {}: {} lost",
                                output::name(&entry.path),
                                output::bytes(entry.bytes_lost)
                            )?,
                        }
                    }
                }
                let verb = if dry_run { "would repair" } else { "repaired" };
                crate::outln!("{verb} {} of {} snapshots", s.repaired.len(), s.snapshots)?;
            }
            Outcome::Ok
        }
    };
    Ok(outcome)
}
