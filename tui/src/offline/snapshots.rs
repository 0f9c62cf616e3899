//! `cairn snapshots` and `cairn stats`.

use serde::Serialize;

use super::Ctx;
use crate::cli::SnapshotsArgs;
use crate::output::{self, Outcome, bytes};

#[derive(Serialize)]
struct Listed<'a> {
    id: String,
    short_id: String,
    #[serde(flatten)]
    snapshot: &'a cairn_engine::Snapshot,
}

pub fn list(ctx: &Ctx, args: &SnapshotsArgs) -> anyhow::Result<Outcome> {
    let repo = ctx.open()?;
    let listed = repo.snapshot_list()?;
    for damaged in &listed.damaged {
        crate::errln!("warning: {}; left out (run `cairn check`)", damaged.error);
    }
    for alert in &listed.alerts {
        crate::errln!("warning: {}", alert.message());
    }
    let outcome = Outcome::from_problems(listed.damaged.len() + listed.alerts.len());
    let snapshots: Vec<_> = listed
        .snapshots
        .into_iter()
        .filter(|(_, s)| args.host.as_ref().is_none_or(|h| &s.host == h))
        .filter(|(_, s)| args.tag.as_ref().is_none_or(|t| s.tags.contains(t)))
        .collect();
    if ctx.json() {
        let listed: Vec<Listed<'_>> = snapshots
            .iter()
            .map(|(id, s)| Listed {
                id: id.to_hex(),
                short_id: id.short(),
                snapshot: s,
            })
            .collect();
        output::json(&listed)?;
        return Ok(outcome);
    }
    let shorts: Vec<String> = snapshots.iter().map(|(id, _)| id.short()).collect();
    output::snapshot_table(snapshots.iter().zip(&shorts).map(|((_, s), short)| {
        output::SnapshotRow {
            short_id: short,
            time: s
                .timestamp()
                .map(|t| {
                    t.to_zoned(jiff::tz::TimeZone::system())
                        .strftime("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_else(|| s.time.clone()),
            host: &s.host,
            tags: &s.tags,
            bytes: s.summary.bytes_total,
            paths: &s.paths,
        }
    }))?;
    crate::outln!("{} snapshots", snapshots.len())?;
    Ok(outcome)
}

pub fn stats(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let repo = ctx.open_indexed()?;
    let stats = repo.stats()?;
    if ctx.json() {
        output::json(&stats)?;
    } else {
        crate::outln!("snapshots:       {}", stats.snapshots)?;
        crate::outln!(
            "packs:           {} ({} stored)",
            stats.packs,
            bytes(stats.stored_bytes)
        )?;
        crate::outln!(
            "blobs:           {} data, {} tree ({} before compression)",
            stats.data_blobs,
            stats.tree_blobs,
            bytes(stats.raw_bytes)
        )?;
        crate::outln!("snapshot sizes:  {} in total", bytes(stats.logical_bytes))?;
        crate::outln!(
            "space saving:    {:.2}x (dedup and compression), compression {:.2}x",
            stats.space_saving_ratio,
            stats.compression_ratio
        )?;
    }
    Ok(Outcome::Ok)
}
