//! `cairn repo add|list|show|remove`.

use cairn_engine::secrecy::ExposeSecret;
use cairn_proto::v1 as pb;

use crate::api::pages::all_pages;
use cairn_proto::v1::repositories_client::RepositoriesClient;
use serde_json::json;

use super::{Remote, api_error};
use crate::cli::RepoCommand;
use crate::output::{self, Outcome};

fn repository(r: &pb::Repository) -> serde_json::Value {
    json!({
        "name": r.name,
        "location": r.location,
        "repository_id": r.repository_id,
        "added": crate::api::names::time(r.added.as_ref()),
        "jobs": r.jobs,
    })
}

pub async fn run(remote: &Remote, command: RepoCommand) -> anyhow::Result<Outcome> {
    let mut client = RepositoriesClient::new(remote.channel.clone());
    match command {
        RepoCommand::Add { name, path, init } => {
            let path = std::path::absolute(&path)?;
            let passphrase = if init {
                crate::secrets::new_passphrase(
                    remote.passphrase_file.as_deref(),
                    "CAIRN_PASSPHRASE",
                )?
            } else {
                crate::secrets::passphrase(remote.passphrase_file.as_deref())?
            };
            let added = client
                .create_repository(pb::CreateRepositoryRequest {
                    name,
                    location: path.display().to_string(),
                    init,
                    passphrase: passphrase.expose_secret().to_owned(),
                })
                .await
                .map_err(api_error)?
                .into_inner();
            if remote.json() {
                output::json(&repository(&added))?;
            } else {
                crate::outln!(
                    "repository {} {} at {} (id {})",
                    added.name,
                    if init { "created" } else { "added" },
                    added.location,
                    &added.repository_id[..8.min(added.repository_id.len())]
                )?;
            }
        }
        RepoCommand::List => {
            let (all, _) = all_pages(usize::MAX, |page_token| {
                let mut client = client.clone();
                let request = pb::ListRepositoriesRequest {
                    page_size: 0,
                    page_token,
                };
                async move { Ok(client.list_repositories(request).await?.into_inner()) }
            })
            .await
            .map_err(api_error)?;
            if remote.json() {
                output::json(&all.iter().map(repository).collect::<Vec<_>>())?;
            } else if all.is_empty() {
                crate::outln!(
                    "no repositories; add one with `cairn repo add NAME --path DIR --init`"
                )?;
            } else {
                crate::outln!("{:<20} {:<10} {:<40} JOBS", "NAME", "ID", "LOCATION")?;
                for r in &all {
                    crate::outln!(
                        "{:<20} {:<10} {:<40} {}",
                        r.name,
                        &r.repository_id[..8.min(r.repository_id.len())],
                        r.location,
                        r.jobs.join(",")
                    )?;
                }
            }
        }
        RepoCommand::Show { name } => {
            let r = client
                .get_repository(pb::GetRepositoryRequest { name: name.clone() })
                .await
                .map_err(api_error)?
                .into_inner();
            let s = client
                .get_repository_stats(pb::GetRepositoryStatsRequest { name })
                .await
                .map_err(api_error)?
                .into_inner();
            let stats = json!({
                "snapshots": s.snapshots,
                "packs": s.packs,
                "blobs": s.blobs,
                "stored_bytes": s.stored_bytes,
                "restored_bytes": s.restored_bytes,
                "dedup_ratio": s.dedup_ratio,
                "last_snapshot": crate::api::names::time(s.last_snapshot.as_ref()),
                "last_check": crate::api::names::time(s.last_check.as_ref()),
                "last_check_state": (!s.last_check_state.is_empty()).then_some(&s.last_check_state),
                "last_prune": crate::api::names::time(s.last_prune.as_ref()),
                "last_prune_state": (!s.last_prune_state.is_empty()).then_some(&s.last_prune_state),
                // Known once a prune ran: what it left unused (tolerated or waiting).
                "reclaimable_bytes": (!s.last_prune_state.is_empty()).then_some(s.reclaimable_bytes),
            });
            if remote.json() {
                let mut doc = repository(&r);
                doc["stats"] = stats;
                output::json(&doc)?;
            } else {
                crate::outln!("repository {} ({})", r.name, r.repository_id)?;
                crate::outln!("location   {}", r.location)?;
                crate::outln!(
                    "jobs       {}",
                    if r.jobs.is_empty() {
                        "-".into()
                    } else {
                        r.jobs.join(", ")
                    }
                )?;
                crate::outln!("snapshots  {}", s.snapshots)?;
                crate::outln!(
                    "stored     {} in {} packs ({} of files over all snapshots, {:.1}x)",
                    output::bytes(s.stored_bytes),
                    s.packs,
                    output::bytes(s.restored_bytes),
                    s.dedup_ratio
                )?;
                crate::outln!(
                    "last check {}",
                    crate::api::names::time(s.last_check.as_ref())
                        .map(|t| format!("{t} ({})", s.last_check_state))
                        .unwrap_or_else(|| "never".into())
                )?;
                crate::outln!(
                    "last prune {}",
                    crate::api::names::time(s.last_prune.as_ref())
                        .map(|t| format!(
                            "{t} ({}; {} left unused)",
                            s.last_prune_state,
                            output::bytes(s.reclaimable_bytes)
                        ))
                        .unwrap_or_else(|| "never".into())
                )?;
            }
        }
        RepoCommand::Remove { name } => {
            client
                .delete_repository(pb::DeleteRepositoryRequest { name: name.clone() })
                .await
                .map_err(api_error)?;
            if remote.json() {
                output::json(&json!({ "removed": name }))?;
            } else {
                crate::outln!("repository {name} forgotten (its data is untouched)")?;
            }
        }
    }
    Ok(Outcome::Ok)
}
