//! cairn.v1.Repositories: add (init or attach), list, get, stats, forget. The rules
//! are in [`crate::repos`]; this is their API.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_engine::secrecy::SecretString;
use cairn_proto::v1 as pb;
use cairn_proto::v1::repositories_server::Repositories;
use tonic::{Request, Response, Status};

use super::convert::{repository, timestamp};
use super::{Paging, blocking, change};
use crate::error::DaemonError;
use crate::repos::NewRepository;
use crate::state::DaemonState;
use crate::store::{
    JOBS, JobRecord, REPOSITORIES, RUNS, RepoRecord, RunKind, RunRecord, RunStorage, STORAGE_HEALTH,
};

#[derive(Debug, Clone)]
pub struct RepositoriesService {
    pub state: Arc<DaemonState>,
}

#[tonic::async_trait]
impl Repositories for RepositoriesService {
    async fn create_repository(
        &self,
        request: Request<pb::CreateRepositoryRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let arguments = |r: &pb::CreateRepositoryRequest| {
            serde_json::json!({
                "name": r.name,
                "location": r.location,
                "init": r.init,
                "options": r.options,
                "s3_access_key_id": r.s3_access_key_id,
                "passphrase": "<redacted>",
                "s3_secret_access_key": if r.s3_secret_access_key.is_empty() { "" } else { "<redacted>" },
                "ssh_key_passphrase": if r.ssh_key_passphrase.is_empty() { "" } else { "<redacted>" },
            })
        };
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                let s3_credentials = (!request.s3_access_key_id.is_empty()).then(|| {
                    (
                        request.s3_access_key_id,
                        SecretString::from(request.s3_secret_access_key),
                    )
                });
                let new = NewRepository {
                    name: request.name,
                    location: request.location,
                    passphrase: SecretString::from(request.passphrase),
                    init: request.init,
                    options: request.options,
                    s3_credentials,
                    ssh_key_passphrase: (!request.ssh_key_passphrase.is_empty())
                        .then(|| SecretString::from(request.ssh_key_passphrase)),
                };
                let record = state.repos().add(new, audit)?;
                Ok(repository(
                    &record,
                    Vec::new(),
                    None,
                    state.unlocked.peek(&record.name).as_ref(),
                ))
            },
        )
        .await
    }

    async fn list_repositories(
        &self,
        request: Request<pb::ListRepositoriesRequest>,
    ) -> Result<Response<pb::ListRepositoriesResponse>, Status> {
        let request = request.into_inner();
        let paging = Paging::of(request.page_size);
        let state = self.state.clone();
        let (records, jobs, health) = blocking(move || {
            let after = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
            Ok(state.store.read("listing repositories", |rx| {
                Ok((
                    rx.list_named::<RepoRecord>(REPOSITORIES, after, paging.to_read())?,
                    rx.list_named::<JobRecord>(JOBS, None, usize::MAX)?,
                    rx.list_named::<RunStorage>(STORAGE_HEALTH, None, usize::MAX)?,
                ))
            })?)
        })
        .await?;
        let health: HashMap<String, RunStorage> = health.into_iter().collect();
        let (records, next_page_token) = paging.page(records, |(name, _)| name.clone());
        let repositories = records
            .iter()
            .map(|(_, r)| {
                let using = jobs
                    .iter()
                    .filter(|(_, j)| j.repository == r.name)
                    .map(|(n, _)| n.clone())
                    .collect();
                repository(
                    r,
                    using,
                    health.get(&r.name),
                    self.state.unlocked.peek(&r.name).as_ref(),
                )
            })
            .collect();
        Ok(Response::new(pb::ListRepositoriesResponse {
            repositories,
            next_page_token,
        }))
    }

    async fn get_repository(
        &self,
        request: Request<pb::GetRepositoryRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let name = request.into_inner().name;
        let state = self.state.clone();
        let (record, jobs, health) = blocking(move || {
            let repos = state.repos();
            let health = state
                .store
                .read("reading a repository's storage health", |rx| {
                    rx.get_named::<RunStorage>(STORAGE_HEALTH, &name)
                })?;
            Ok((repos.get(&name)?, repos.jobs_using(&name)?, health))
        })
        .await?;
        Ok(Response::new(repository(
            &record,
            jobs,
            health.as_ref(),
            self.state.unlocked.peek(&record.name).as_ref(),
        )))
    }

    async fn get_repository_stats(
        &self,
        request: Request<pb::GetRepositoryStatsRequest>,
    ) -> Result<Response<pb::RepositoryStats>, Status> {
        let name = request.into_inner().name;
        let state = self.state.clone();
        let stats = blocking(move || {
            let repo = state.repos().open_indexed(&name)?;
            let stats = repo.stats()?;
            let last_snapshot = repo
                .repo()
                .snapshots()?
                .iter()
                .filter_map(|(_, s)| s.timestamp())
                .max()
                .map(|t| t.as_millisecond());
            // One pass over the history, newest first: the first ended check and the
            // first ended prune of this repository.
            let (last_check, last_prune) =
                state.store.read("finding the last check and prune", |rx| {
                    let mut seen = Vec::new();
                    let found = rx.list_numbered_desc::<RunRecord>(RUNS, None, 2, |r| {
                        let wanted = r.repository == name
                            && matches!(r.kind, RunKind::Check | RunKind::Prune)
                            && r.state.is_final()
                            && !seen.contains(&r.kind);
                        if wanted {
                            seen.push(r.kind);
                        }
                        wanted
                    })?;
                    let last = |kind| {
                        found
                            .iter()
                            .find(|(_, r)| r.kind == kind)
                            .map(|(_, r)| r.clone())
                    };
                    Ok((last(RunKind::Check), last(RunKind::Prune)))
                })?;
            Ok((name, stats, last_snapshot, last_check, last_prune))
        })
        .await?;
        let (name, stats, last_snapshot, last_check, last_prune) = stats;
        // What the last prune left unused (tolerated, or waiting for backups): the
        // space the next one would free, short of what forgets added since.
        let reclaimable_bytes = last_prune
            .as_ref()
            .and_then(|r| r.summary.as_ref())
            .map_or(0, |s| s.bytes_unused);
        Ok(Response::new(pb::RepositoryStats {
            name,
            snapshots: stats.snapshots,
            packs: stats.packs,
            blobs: stats.data_blobs + stats.tree_blobs,
            stored_bytes: stats.stored_bytes,
            restored_bytes: stats.logical_bytes,
            dedup_ratio: stats.space_saving_ratio,
            last_snapshot: last_snapshot.map(timestamp),
            last_check: last_check.as_ref().and_then(|r| r.finished).map(timestamp),
            last_check_state: last_check
                .map(|r| r.state.name().to_owned())
                .unwrap_or_default(),
            last_prune: last_prune.as_ref().and_then(|r| r.finished).map(timestamp),
            last_prune_state: last_prune
                .map(|r| r.state.name().to_owned())
                .unwrap_or_default(),
            reclaimable_bytes,
        }))
    }

    async fn check_repository(
        &self,
        request: Request<pb::CheckRepositoryRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let arguments = |r: &pb::CheckRepositoryRequest| {
            serde_json::json!({
                "name": r.name,
                "read_data_subset_percent": r.read_data_subset_percent,
            })
        };
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                state.repos().get(&request.name)?;
                if request.read_data_subset_percent > 100 {
                    return Err(DaemonError::InvalidArgument(format!(
                        "read_data_subset_percent: {} is more than 100",
                        request.read_data_subset_percent
                    )));
                }
                let spec = crate::store::CheckSpec {
                    read_data: request.read_data_subset_percent == 100,
                    read_data_subset_percent: request.read_data_subset_percent % 100,
                };
                let id = state.runner.enqueue_check(&request.name, spec, audit)?;
                super::runs::current(state, id)
            },
        )
        .await
    }

    async fn delete_repository(
        &self,
        request: Request<pb::DeleteRepositoryRequest>,
    ) -> Result<Response<pb::DeleteRepositoryResponse>, Status> {
        let arguments = |r: &pb::DeleteRepositoryRequest| serde_json::json!({ "name": r.name });
        change(
            &self.state,
            request,
            arguments,
            |state, _, request, audit| {
                state.repos().forget(&request.name, audit)?;
                Ok(pb::DeleteRepositoryResponse {})
            },
        )
        .await
    }
}
