//! `cairn snapshot list|ls` and `cairn restore --repo NAME`: snapshots of the daemon's
//! repositories, and restoring one on the daemon's host as a run.

use cairn_proto::v1 as pb;
use cairn_proto::v1::restores_client::RestoresClient;
use cairn_proto::v1::snapshots_client::SnapshotsClient;

use super::{Remote, api_error, json, runs};
use crate::cli::{RestoreArgs, SnapshotCommand};
use crate::output::{self, Outcome, bytes};

pub async fn run(remote: &Remote, command: SnapshotCommand) -> anyhow::Result<Outcome> {
    let mut client = SnapshotsClient::new(remote.channel.clone());
    match command {
        SnapshotCommand::List {
            repo_name,
            job,
            limit,
        } => {
            let page = client
                .list_snapshots(pb::ListSnapshotsRequest {
                    repository: repo_name.unwrap_or_default(),
                    job: job.unwrap_or_default(),
                    page_size: limit,
                    page_token: String::new(),
                })
                .await
                .map_err(api_error)?
                .into_inner();
            if remote.json() {
                output::json(
                    &page
                        .snapshots
                        .iter()
                        .map(json::snapshot)
                        .collect::<Vec<_>>(),
                )?;
                return Ok(Outcome::Ok);
            }
            println!(
                "{:<10} {:<22} {:<16} {:<12} {:>10}  PATHS",
                "ID", "TIME", "HOST", "TAGS", "SIZE"
            );
            for s in &page.snapshots {
                println!(
                    "{:<10} {:<22} {:<16} {:<12} {:>10}  {}",
                    s.id.get(..8).unwrap_or(&s.id),
                    json::time(s.time.as_ref()).unwrap_or_default(),
                    s.host,
                    s.tags.join(","),
                    bytes(s.total_bytes),
                    s.paths.join(" ")
                );
            }
            let more = if page.next_page_token.is_empty() {
                ""
            } else {
                " (more: raise --limit)"
            };
            println!("{} snapshots{more}", page.snapshots.len());
            Ok(Outcome::Ok)
        }
        SnapshotCommand::Ls { target, repo_name } => {
            let (snapshot, path) = match target.split_once(':') {
                Some((snapshot, path)) => (snapshot.to_owned(), path.to_owned()),
                None => (target, String::new()),
            };
            let mut entries = Vec::new();
            let mut token = String::new();
            let (snapshot_id, shown) = loop {
                let page = client
                    .list_tree(pb::ListTreeRequest {
                        repository: repo_name.clone(),
                        snapshot: snapshot.clone(),
                        path: path.clone(),
                        page_size: 0,
                        page_token: token,
                    })
                    .await
                    .map_err(api_error)?
                    .into_inner();
                entries.extend(page.entries);
                if page.next_page_token.is_empty() {
                    break (page.snapshot_id, page.path);
                }
                token = page.next_page_token;
            };
            if remote.json() {
                output::json(&serde_json::json!({
                    "snapshot_id": snapshot_id,
                    "path": shown,
                    "entries": entries.iter().map(json::tree_entry).collect::<Vec<_>>(),
                }))?;
                return Ok(Outcome::Ok);
            }
            for e in &entries {
                let link = if e.link_target.is_empty() {
                    String::new()
                } else {
                    format!(" -> {}", e.link_target)
                };
                println!(
                    "{:<8} {:>6o} {:>5}/{:<5} {:>12} {:<20} {}{}",
                    e.kind,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.size,
                    json::time(e.mtime.as_ref()).unwrap_or_default(),
                    e.name,
                    link
                );
            }
            Ok(Outcome::Ok)
        }
    }
}

pub async fn restore(remote: &Remote, args: &RestoreArgs) -> anyhow::Result<Outcome> {
    let (snapshot, path) = match args.source.split_once(':') {
        Some((snapshot, path)) => (snapshot.to_owned(), path.to_owned()),
        None => (args.source.clone(), String::new()),
    };
    let run = RestoresClient::new(remote.channel.clone())
        .create_restore(pb::CreateRestoreRequest {
            repository: args.repo_name.clone().unwrap_or_default(),
            snapshot,
            path,
            target: args.target.display().to_string(),
            includes: args.includes.clone(),
            excludes: args.excludes.clone(),
            verify: args.verify,
        })
        .await
        .map_err(api_error)?
        .into_inner();
    if args.wait {
        return runs::wait_and_report(remote, run.id).await;
    }
    if remote.json() {
        output::json(&json::run(&run))?;
    } else {
        let of = run.restore.clone().unwrap_or_default();
        eprintln!(
            "restoring snapshot {} to {} as run {}; follow it with `cairn run watch {}`",
            of.snapshot_id.get(..8).unwrap_or(&of.snapshot_id),
            of.target,
            run.id,
            run.id
        );
        println!("{}", run.id);
    }
    Ok(Outcome::Ok)
}
