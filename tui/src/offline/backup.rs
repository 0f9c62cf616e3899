//! `cairn backup`.

use anyhow::{Context as _, bail};
use cairn_engine::{BackupOptions, BackupResult, CommandSource, NoProgress, Progress};

use super::{Ctx, cancel_on_signals, find_snapshot};
use crate::cli::BackupArgs;
use crate::output::{self, Outcome, bytes};

pub fn run(ctx: &Ctx, args: &BackupArgs) -> anyhow::Result<Outcome> {
    let command = if args.stdin_from_command {
        let Some((program, rest)) = args.command.split_first() else {
            bail!("--stdin-from-command needs the command after `--`, e.g. -- pg_dump mydb");
        };
        let filename = args.stdin_filename.clone().unwrap_or_default();
        Some(CommandSource {
            program: program.clone(),
            args: rest.to_vec(),
            filename,
            env: None,
        })
    } else {
        if !args.command.is_empty() {
            bail!("a command after `--` needs --stdin-from-command");
        }
        None
    };
    let cancel = cancel_on_signals()?;
    let mut repo = ctx.open_indexed()?;
    let parent = match &args.parent {
        Some(query) => Some(find_snapshot(repo.repo(), query)?),
        None => None,
    };
    let mut options = BackupOptions::default()
        .paths(args.paths.iter().cloned())
        .excludes(args.excludes.clone())
        .exclude_caches(args.exclude_caches)
        .one_file_system(args.one_file_system)
        .tags(args.tags.clone())
        .host(args.host.clone())
        .parent(parent)
        .force_read(args.force);
    if let Some(command) = command {
        options = options.command(command);
    }
    let bar = ctx.bar();
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &NoProgress,
    };
    let result = repo.backup(&options, progress, &cancel);
    if let Some(bar) = &bar {
        bar.finish();
    }
    let result = result?;
    // The snapshot exists now: whatever happens to the output, the error says so.
    report(ctx, &result, bar.is_none()).with_context(|| {
        format!(
            "snapshot {} was saved, but its summary could not be printed",
            result.snapshot_id.short()
        )
    })?;
    Ok(Outcome::from_problems(result.warnings.len()))
}

fn report(ctx: &Ctx, result: &BackupResult, no_bar: bool) -> anyhow::Result<()> {
    if ctx.json() {
        output::json(result)?;
    } else {
        let s = &result.summary;
        if no_bar {
            for warning in &result.warnings {
                crate::errln!("warning: {warning}");
            }
        }
        for note in &result.notes {
            crate::errln!("note: {note}");
        }
        crate::outln!(
            "files: {} new, {} changed, {} unchanged; {} dirs",
            s.files_new,
            s.files_changed,
            s.files_unchanged,
            s.dirs
        )?;
        crate::outln!(
            "read {} of {}, added {} ({} stored in {} packs) in {:.1}s",
            bytes(s.bytes_read),
            bytes(s.bytes_total),
            bytes(s.bytes_added),
            bytes(s.bytes_stored),
            s.packs_written,
            s.duration_ms as f64 / 1000.0
        )?;
        crate::outln!("snapshot {} saved", result.snapshot_id.short())?;
        if !result.warnings.is_empty() {
            crate::outln!(
                "{} warnings: some entries were not backed up",
                result.warnings.len()
            )?;
        }
    }
    Ok(())
}
