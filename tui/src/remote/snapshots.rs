//! `cairn snapshot list|ls|forget` and `cairn restore --repo NAME`: snapshots of the daemon's
//! repositories, and restoring one on the daemon's host as a run.

use cairn_proto::v1 as pb;
use cairn_proto::v1::restores_client::RestoresClient;
use cairn_proto::v1::snapshots_client::SnapshotsClient;

use super::{Remote, api_error, json, runs};
use crate::cli::{RestoreArgs, SnapshotCommand};
use crate::output::{self, Outcome};

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
            crate::output::snapshot_table(page.snapshots.iter().map(|s| {
                crate::output::SnapshotRow {
                    short_id: s.id.get(..8).unwrap_or(&s.id),
                    time: crate::api::names::time(s.time.as_ref()).unwrap_or_default(),
                    host: &s.host,
                    tags: &s.tags,
                    bytes: s.total_bytes,
                    paths: &s.paths,
                }
            }))?;
            let more = if page.next_page_token.is_empty() {
                ""
            } else {
                " (more: raise --limit)"
            };
            crate::outln!("{} snapshots{more}", page.snapshots.len())?;
            Ok(Outcome::Ok)
        }
        SnapshotCommand::Ls { target, repo_name } => {
            let (snapshot, path) = match target.split_once(':') {
                Some((snapshot, path)) => (snapshot.to_owned(), path.to_owned()),
                None => (target, String::new()),
            };
            let listed = crate::api::pages::whole_directory(&client, &repo_name, &snapshot, &path)
                .await
                .map_err(api_error)?;
            let (snapshot_id, shown, entries) = (listed.snapshot_id, listed.path, listed.entries);
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
                    format!(" -> {}", crate::output::name(&e.link_target))
                };
                crate::outln!(
                    "{:<8} {:>6o} {:>5}/{:<5} {:>12} {:<20} {}{}",
                    e.kind,
                    e.mode,
                    e.uid,
                    e.gid,
                    e.size,
                    crate::api::names::time(e.mtime.as_ref()).unwrap_or_default(),
                    crate::output::name(&e.name),
                    link
                )?;
            }
            Ok(Outcome::Ok)
        }
        SnapshotCommand::Forget { ids, repo_name } => {
            let forgotten = client
                .forget_snapshots(pb::ForgetSnapshotsRequest {
                    repository: repo_name.clone(),
                    snapshots: ids,
                })
                .await
                .map_err(api_error)?
                .into_inner()
                .forgotten;
            if remote.json() {
                output::json(
                    &serde_json::json!({ "repository": repo_name, "forgotten": forgotten }),
                )?;
            } else {
                for id in &forgotten {
                    crate::outln!("forgot {id}")?;
                }
                crate::outln!(
                    "{} forgotten in {}; {}",
                    match forgotten.len() {
                        1 => "1 snapshot".to_owned(),
                        n => format!("{n} snapshots"),
                    },
                    output::name(&repo_name),
                    crate::api::names::space_after_forget(forgotten.len())
                )?;
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
            force_root_target: args.force_root_target,
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
        crate::errln!(
            "restoring snapshot {} to {} as run {}; follow it with `cairn run watch {}`",
            of.snapshot_id.get(..8).unwrap_or(&of.snapshot_id),
            of.target,
            run.id,
            run.id
        );
        crate::outln!("{}", run.id)?;
    }
    Ok(Outcome::Ok)
}
