//! `cairn restore`.

use cairn_engine::{NoProgress, Progress, RestoreOptions};

use super::{Ctx, cancel_on_signals, find_snapshot, split_target};
use crate::cli::RestoreArgs;
use crate::output::{self, Outcome, bytes};

pub fn run(ctx: &Ctx, args: &RestoreArgs) -> anyhow::Result<Outcome> {
    let cancel = cancel_on_signals()?;
    let mut repo = ctx.open_indexed()?;
    let (snap, path) = split_target(&args.source);
    let id = find_snapshot(repo.repo(), snap)?;
    let options = RestoreOptions::new(&args.target)
        .subpath(path.map(|p| p.to_path_buf()))
        .includes(args.includes.clone())
        .excludes(args.excludes.clone())
        .verify(args.verify)
        .allow_root_target(args.force_root_target);
    let bar = ctx.bar();
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &NoProgress,
    };
    let result = repo.restore(&id, &options, progress, &cancel);
    if let Some(bar) = &bar {
        bar.finish();
    }
    let summary = result?;
    if ctx.json() {
        output::json(
            &serde_json::json!({ "snapshot": id.to_hex(), "target": args.target, "summary": summary }),
        )?;
    } else {
        if bar.is_none() {
            for error in &summary.errors {
                crate::errln!("error: {error}");
            }
        }
        for skipped in &summary.skipped {
            crate::errln!("skipped: {skipped}");
        }
        for note in &summary.notes {
            crate::errln!("note: {note}");
        }
        crate::outln!(
            "restored {} files, {} dirs, {} symlinks, {} hardlinks, {} other ({}) to {}",
            summary.files,
            summary.dirs,
            summary.symlinks,
            summary.hardlinks,
            summary.other,
            bytes(summary.bytes_written),
            args.target.display()
        )?;
        if args.verify {
            crate::outln!("verified {} files", summary.files_verified)?;
        }
        if !summary.errors.is_empty() {
            crate::outln!(
                "{} entries could not be restored (see above)",
                summary.errors.len()
            )?;
        }
    }
    Ok(Outcome::from_problems(summary.errors.len()))
}
