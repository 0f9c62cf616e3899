//! `cairn ls`, `cairn dump` and `cairn diff`.

use std::path::Path;

use anyhow::bail;
use cairn_engine::CancelToken;

use super::{Ctx, find_snapshot, split_target};
use crate::api::names::mode_string;
use crate::cli::{DiffArgs, DumpArgs, LsArgs};
use crate::output::{self, Outcome};

pub fn ls(ctx: &Ctx, args: &LsArgs) -> anyhow::Result<Outcome> {
    let repo = ctx.open_indexed()?;
    let (snap, path) = split_target(&args.target);
    let id = find_snapshot(repo.repo(), snap)?;
    let path = path.unwrap_or(Path::new("/"));
    let cancel = CancelToken::new();
    if ctx.json() {
        let mut entries = Vec::new();
        repo.list(&id, path, !args.no_recursive, &cancel, &mut |e| {
            entries.push(e);
            Ok(())
        })?;
        output::json(&entries)?;
    } else {
        // A failed write stops the listing; the engine only hears "cancelled".
        let mut failed = None;
        let listed = repo.list(&id, path, !args.no_recursive, &cancel, &mut |e| {
            let owner = format!(
                "{}/{}",
                e.user.clone().unwrap_or(e.uid.to_string()),
                e.group.clone().unwrap_or(e.gid.to_string())
            );
            let link = e
                .link_target
                .as_ref()
                .map(|t| format!(" -> {}", output::name(t)))
                .unwrap_or_default();
            let mtime = e.mtime.get(..19).unwrap_or(&e.mtime).replace('T', " ");
            crate::outln!(
                "{} {:<16} {:>12} {} {}{}",
                mode_string(e.kind, e.mode),
                output::name(&owner),
                e.size,
                mtime,
                output::name(&e.path),
                link
            )
            .map_err(|error| {
                failed = Some(error);
                cairn_engine::Error::Cancelled
            })
        });
        if let Some(error) = failed {
            return Err(error);
        }
        listed?;
    }
    Ok(Outcome::Ok)
}

pub fn dump(ctx: &Ctx, args: &DumpArgs) -> anyhow::Result<Outcome> {
    let (snap, path) = split_target(&args.target);
    let Some(path) = path else {
        bail!("dump needs SNAP:PATH of a file, e.g. latest:/etc/hosts");
    };
    let repo = ctx.open_indexed()?;
    let id = find_snapshot(repo.repo(), snap)?;
    let mut stdout = output::StdoutWriter::default();
    let dumped = repo.dump(&id, path, &mut stdout);
    stdout.result()?;
    dumped?;
    Ok(Outcome::Ok)
}

pub fn diff(ctx: &Ctx, args: &DiffArgs) -> anyhow::Result<Outcome> {
    let repo = ctx.open_indexed()?;
    let a = find_snapshot(repo.repo(), &args.first)?;
    let b = find_snapshot(repo.repo(), &args.second)?;
    let diff = repo.diff(&a, &b)?;
    if ctx.json() {
        output::json(&diff)?;
    } else {
        for change in &diff.changes {
            crate::outln!("{} {}", change.change.symbol(), output::name(&change.path))?;
        }
        crate::outln!(
            "{} added, {} removed, {} modified, {} metadata only, {} changed type",
            diff.added,
            diff.removed,
            diff.modified,
            diff.metadata,
            diff.type_changed
        )?;
    }
    Ok(Outcome::Ok)
}
