//! `cairn check`.

use anyhow::Context;
use cairn_engine::ops::check::{CheckOptions, ReadData};
use cairn_engine::{NoProgress, Progress};

use super::{Ctx, cancel_on_signals};
use crate::cli::CheckArgs;
use crate::output::{self, Outcome, bytes};

fn parse_percent(text: &str) -> anyhow::Result<f64> {
    let value: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .with_context(|| format!("--read-data-subset {text:?}: expected a percentage"))?;
    if !(value > 0.0 && value <= 100.0) {
        anyhow::bail!("--read-data-subset {text:?}: must be more than 0 and at most 100");
    }
    Ok(value)
}

pub fn run(ctx: &Ctx, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let read_data = match (&args.read_data, &args.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(text)) => ReadData::Subset(parse_percent(text)?),
        _ => ReadData::None,
    };
    let cancel = cancel_on_signals()?;
    let mut repo = ctx.open_indexed()?;
    let bar = ctx.bar();
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &NoProgress,
    };
    let report = repo.check(
        &CheckOptions::default().read_data(read_data),
        progress,
        &cancel,
    );
    if let Some(bar) = &bar {
        bar.finish();
    }
    let report = report?;
    if ctx.json() {
        output::json(&serde_json::json!({ "ok": report.is_ok(), "report": report }))?;
    } else {
        crate::outln!(
            "checked {} snapshots, {} trees, {} index files, {} packs, {} blobs",
            report.snapshots,
            report.trees,
            report.index_files,
            report.packs,
            report.blobs
        )?;
        if report.packs_read > 0 {
            crate::outln!(
                "read {} packs ({}), {} blobs",
                report.packs_read,
                bytes(report.bytes_read),
                report.blobs_read
            )?;
        }
        if !report.unindexed_packs.is_empty() {
            crate::outln!(
                "{} packs are not indexed yet (left by an interrupted backup; the next backup indexes them)",
                report.unindexed_packs.len()
            )?;
        }
        for problem in &report.problems {
            crate::outln!("error: {}", problem.message)?;
            if let Some(pack) = &problem.pack {
                crate::outln!("  pack {pack}")?;
            }
            if let Some(blob) = &problem.blob {
                crate::outln!("  blob {blob}")?;
            }
            for affected in &problem.affects {
                crate::outln!(
                    "  affects snapshot {} file {}",
                    affected.snapshot,
                    affected.path
                )?;
            }
        }
        if report.condemned_packs > 0 {
            crate::outln!(
                "{} packs ({}) are condemned by a prune and go with its next run",
                report.condemned_packs,
                bytes(report.condemned_bytes)
            )?;
        }
        if report.is_ok() {
            crate::outln!("no problems found")?;
        } else {
            crate::outln!("{} problems found", report.problems.len())?;
        }
        for repair in &report.repairs {
            crate::outln!("to fix: run `{repair}`")?;
        }
    }
    Ok(Outcome::from_problems(report.problems.len()))
}
