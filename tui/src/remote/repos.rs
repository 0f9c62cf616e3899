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
        "backend": r.backend,
        "options": r.options,
        "backend_retries": r.backend_retries,
        "backend_last_error": r.backend_last_error,
        "backend_run": r.backend_run,
        "write_only": r.write_only,
    })
}

/// Whether a failed statistics call is about the repository's storage (down,
/// refusing, damaged, sealed away) rather than about the caller or the name: then
/// `repo show` still shows the repository's record and health.
fn storage_trouble(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable
            | Code::FailedPrecondition
            | Code::DataLoss
            | Code::Internal
            | Code::Unknown
            | Code::DeadlineExceeded
    )
}

pub async fn run(remote: &Remote, command: RepoCommand) -> anyhow::Result<Outcome> {
    let mut client = RepositoriesClient::new(remote.channel.clone());
    match command {
        RepoCommand::Add {
            name,
            path,
            url,
            init,
            s3_access_key_id,
            s3_secret_file,
            ssh_key_passphrase_file,
        } => {
            let location = match (path, url) {
                (Some(path), _) => std::path::absolute(&path)?.display().to_string(),
                (None, Some(url)) => url,
                (None, None) => anyhow::bail!("give --path DIR or --url LOCATION"),
            };
            let s3_secret = match &s3_secret_file {
                Some(file) => crate::secrets::secret_from(file, "S3 secret key")?
                    .expose_secret()
                    .to_owned(),
                None => String::new(),
            };
            if s3_secret_file.is_some() && ssh_key_passphrase_file.is_some() {
                anyhow::bail!(
                    "an S3 secret and an SSH key passphrase: a repository is on one or the other"
                );
            }
            let ssh_key_passphrase = match &ssh_key_passphrase_file {
                Some(file) => crate::secrets::secret_from(file, "SSH key passphrase")?
                    .expose_secret()
                    .to_owned(),
                None => String::new(),
            };
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
                    location,
                    init,
                    passphrase: passphrase.expose_secret().to_owned(),
                    options: remote.options.clone(),
                    s3_access_key_id: s3_access_key_id.unwrap_or_default(),
                    s3_secret_access_key: s3_secret,
                    ssh_key_passphrase,
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
            // The statistics first: they open the repository, after which the
            // repository shows whether its key is write-only.
            let mut stats_error = None;
            let s = match client
                .get_repository_stats(pb::GetRepositoryStatsRequest { name: name.clone() })
                .await
            {
                Ok(stats) => Some(stats.into_inner()),
                // A write-only key reads no snapshot: the repository without statistics.
                Err(status)
                    if status.code() == tonic::Code::FailedPrecondition
                        && status.message().contains("write-only") =>
                {
                    None
                }
                // Its storage is down, refusing or damaged: the repository is still
                // shown (with its storage's health), and the command fails saying why.
                Err(status) if storage_trouble(status.code()) => {
                    stats_error = Some(crate::api::status::one_line(&status));
                    None
                }
                // Not this caller's to see, or no such repository: asking again for
                // the record would only be refused (and audited) a second time.
                Err(status) => return Err(api_error(status)),
            };
            let r = client
                .get_repository(pb::GetRepositoryRequest { name })
                .await
                .map_err(api_error)?
                .into_inner();
            let stats = s.as_ref().map(|s| json!({
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
            }));
            if remote.json() {
                let mut doc = repository(&r);
                doc["stats"] = stats.unwrap_or_default();
                if let Some(error) = &stats_error {
                    doc["stats_error"] = json!(error);
                }
                output::json(&doc)?;
                if stats_error.is_some() {
                    return Ok(Outcome::Failed);
                }
            } else {
                crate::outln!("repository {} ({})", r.name, r.repository_id)?;
                crate::outln!("location   {}", r.location)?;
                if r.backend != "local" {
                    let health = if r.backend_run == 0 {
                        "no run yet".to_owned()
                    } else {
                        format!(
                            "{} requests retried in its last run, run {}{}",
                            r.backend_retries,
                            r.backend_run,
                            if r.backend_last_error.is_empty() {
                                String::new()
                            } else {
                                format!("; last error: {}", r.backend_last_error)
                            }
                        )
                    };
                    crate::outln!("backend    {} ({health})", r.backend)?;
                }
                if r.write_only {
                    crate::outln!(
                        "key        write-only: backups only (restore, check, retention and prune need a full key on a trusted host)"
                    )?;
                }
                crate::outln!(
                    "jobs       {}",
                    if r.jobs.is_empty() {
                        "-".into()
                    } else {
                        r.jobs.join(", ")
                    }
                )?;
                if let Some(error) = &stats_error {
                    crate::outln!("stats      cannot be read: {error}")?;
                }
                let Some(s) = s else {
                    return Ok(if stats_error.is_some() {
                        Outcome::Failed
                    } else {
                        Outcome::Ok
                    });
                };
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
