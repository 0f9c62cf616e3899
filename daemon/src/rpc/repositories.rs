//! cairn.v1.Repositories: add (init or attach), list, get, stats, forget.

use std::path::Path;
use std::sync::Arc;

use cairn_engine::secrecy::SecretString;
use cairn_engine::{IndexedRepository, InitOptions, LocalBackend, NewKey, Repository, Unlock};
use cairn_proto::v1 as pb;
use cairn_proto::v1::repositories_server::Repositories;
use tonic::{Request, Response, Status};

use super::convert::{check_name, repository, timestamp};
use super::{audited, blocking, caller, page_size};
use crate::error::DaemonError;
use crate::state::DaemonState;
use crate::store::{
    JOBS, JobRecord, REPOSITORIES, RUNS, RepoRecord, RunKind, RunRecord, SECRETS, now_ms,
};

#[derive(Debug, Clone)]
pub struct RepositoriesService {
    pub state: Arc<DaemonState>,
}

fn jobs_using(state: &DaemonState, name: &str) -> Result<Vec<String>, DaemonError> {
    Ok(state.store.read("listing jobs", |rx| {
        Ok(rx
            .list_named::<JobRecord>(JOBS, None, usize::MAX)?
            .into_iter()
            .filter(|(_, j)| j.repository == name)
            .map(|(n, _)| n)
            .collect())
    })?)
}

/// The repository `name`, opened (kept open between calls, see [`crate::unlocked`]).
pub fn open_named(state: &DaemonState, name: &str) -> Result<Repository, DaemonError> {
    let record = get(state, name)?;
    state.unlocked.get_or_open(&record, || {
        let passphrase = crate::runner::repository_passphrase(&state.store, &state.sealer, name)?;
        Ok(crate::runner::execute::open_repository(
            &record,
            &passphrase,
            &state.cache_dir,
        )?)
    })
}

/// The repository `name` with its index loaded (from the cache when it is current).
pub fn open_indexed(state: &DaemonState, name: &str) -> Result<IndexedRepository, DaemonError> {
    Ok(open_named(state, name)?.load_index(&state.cache_dir)?)
}

pub fn get(state: &DaemonState, name: &str) -> Result<RepoRecord, DaemonError> {
    state
        .store
        .read("reading a repository", |rx| {
            rx.get_named(REPOSITORIES, name)
        })?
        .ok_or_else(|| {
            DaemonError::NotFound(format!(
                "no repository named {}; `cairn repo list` shows them",
                crate::error::echo(name)
            ))
        })
}

/// Adds a repository: initialises it or opens it to prove the passphrase.
fn create(
    state: &DaemonState,
    request: pb::CreateRepositoryRequest,
) -> Result<RepoRecord, DaemonError> {
    check_name("name", &request.name)?;
    let location = Path::new(&request.location);
    if !location.is_absolute() {
        return Err(DaemonError::InvalidArgument(format!(
            "location: {:?} is not an absolute path",
            request.location
        )));
    }
    if request.passphrase.is_empty() {
        return Err(DaemonError::InvalidArgument(
            "passphrase: empty; the daemon needs the repository's passphrase to run jobs".into(),
        ));
    }
    if state
        .store
        .read("reading a repository", |rx| {
            rx.get_named::<RepoRecord>(REPOSITORIES, &request.name)
        })?
        .is_some()
    {
        return Err(DaemonError::AlreadyExists(format!(
            "a repository named {:?} exists already",
            request.name
        )));
    }
    let passphrase = SecretString::from(request.passphrase);
    let backend = Arc::new(LocalBackend::new(location));
    let repo = if request.init {
        Repository::init(
            backend,
            &NewKey::Passphrase {
                passphrase: passphrase.clone(),
                work_factor: None,
            },
            &InitOptions::default(),
        )?
    } else {
        Repository::open_with_cache(
            backend,
            &Unlock::Passphrase(passphrase.clone()),
            Some(&state.cache_dir),
        )?
    };
    let record = RepoRecord {
        name: request.name.clone(),
        location: request.location.clone(),
        repository_id: repo.config().id.clone(),
        added: now_ms(),
    };
    let secret = RepoRecord::passphrase_secret(&record.name);
    let sealed = state.sealer.seal(&secret, &passphrase)?;
    state.store.write("adding a repository", |tx| {
        tx.put_named(REPOSITORIES, &record.name, &record)?;
        tx.put_named_bytes(SECRETS, &secret, &sealed)
    })?;
    tracing::info!(repository = %record.name, location = %record.location, init = request.init, "repository added");
    state
        .changes
        .publish(crate::changes::Change::Repository(record.name.clone()));
    Ok(record)
}

#[tonic::async_trait]
impl Repositories for RepositoriesService {
    async fn create_repository(
        &self,
        request: Request<pb::CreateRepositoryRequest>,
    ) -> Result<Response<pb::Repository>, Status> {
        let who = caller(&request);
        let request = request.into_inner();
        let arguments = serde_json::json!({
            "name": request.name,
            "location": request.location,
            "init": request.init,
            "passphrase": "<redacted>",
        });
        let state = self.state.clone();
        let result = blocking(move || create(&state, request))
            .await
            .map(|record| Response::new(repository(&record, Vec::new())));
        audited(
            &self.state,
            who,
            "/cairn.v1.Repositories/CreateRepository",
            arguments,
            result,
        )
        .await
    }

    async fn list_repositories(
        &self,
        request: Request<pb::ListRepositoriesRequest>,
    ) -> Result<Response<pb::ListRepositoriesResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.page_size);
        let state = self.state.clone();
        let (records, jobs) = blocking(move || {
            let after = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
            Ok(state.store.read("listing repositories", |rx| {
                Ok((
                    rx.list_named::<RepoRecord>(REPOSITORIES, after, limit + 1)?,
                    rx.list_named::<JobRecord>(JOBS, None, usize::MAX)?,
                ))
            })?)
        })
        .await?;
        let more = records.len() > limit;
        let repositories: Vec<pb::Repository> = records
            .iter()
            .take(limit)
            .map(|(_, r)| {
                let using = jobs
                    .iter()
                    .filter(|(_, j)| j.repository == r.name)
                    .map(|(n, _)| n.clone())
                    .collect();
                repository(r, using)
            })
            .collect();
        let next_page_token = if more {
            repositories
                .last()
                .map(|r| r.name.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
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
        let (record, jobs) =
            blocking(move || Ok((get(&state, &name)?, jobs_using(&state, &name)?))).await?;
        Ok(Response::new(repository(&record, jobs)))
    }

    async fn get_repository_stats(
        &self,
        request: Request<pb::GetRepositoryStatsRequest>,
    ) -> Result<Response<pb::RepositoryStats>, Status> {
        let name = request.into_inner().name;
        let state = self.state.clone();
        let stats = blocking(move || {
            let repo = open_indexed(&state, &name)?;
            let stats = repo.stats()?;
            let last_snapshot = repo
                .repo()
                .snapshots()?
                .iter()
                .filter_map(|(_, s)| s.timestamp())
                .max()
                .map(|t| t.as_millisecond());
            let last_check = state.store.read("finding the last check", |rx| {
                Ok(rx
                    .list_numbered_desc::<RunRecord>(RUNS, None, 1, |r| {
                        r.repository == name && r.kind == RunKind::Check && r.state.is_final()
                    })?
                    .into_iter()
                    .next()
                    .map(|(_, r)| r))
            })?;
            Ok((name, stats, last_snapshot, last_check))
        })
        .await?;
        let (name, stats, last_snapshot, last_check) = stats;
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
        }))
    }

    async fn check_repository(
        &self,
        request: Request<pb::CheckRepositoryRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let who = caller(&request);
        let request = request.into_inner();
        let arguments = serde_json::json!({
            "name": request.name,
            "read_data_subset_percent": request.read_data_subset_percent,
        });
        let state = self.state.clone();
        let result = blocking(move || {
            get(&state, &request.name)?;
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
            let id = state.runner.enqueue_check(&request.name, spec, who.uid)?;
            super::runs::current(&state, id)
        })
        .await
        .map(Response::new);
        audited(
            &self.state,
            who,
            "/cairn.v1.Repositories/CheckRepository",
            arguments,
            result,
        )
        .await
    }

    async fn delete_repository(
        &self,
        request: Request<pb::DeleteRepositoryRequest>,
    ) -> Result<Response<pb::DeleteRepositoryResponse>, Status> {
        let who = caller(&request);
        let name = request.into_inner().name;
        let arguments = serde_json::json!({ "name": name });
        let state = self.state.clone();
        let result = blocking(move || {
            get(&state, &name)?;
            let jobs = jobs_using(&state, &name)?;
            if !jobs.is_empty() {
                return Err(DaemonError::FailedPrecondition(format!(
                    "repository {name} is used by job{} {}; delete or move them first",
                    if jobs.len() == 1 { "" } else { "s" },
                    jobs.join(", ")
                )));
            }
            if state.runner.uses_repository(&name) {
                return Err(DaemonError::FailedPrecondition(format!(
                    "a run on repository {name} is going; wait for it or cancel it"
                )));
            }
            state.store.write("forgetting a repository", |tx| {
                tx.delete_named(REPOSITORIES, &name)?;
                tx.delete_named(SECRETS, &RepoRecord::passphrase_secret(&name))?;
                Ok(())
            })?;
            state.unlocked.forget(&name);
            tracing::info!(repository = %name, "repository forgotten (its data is untouched)");
            state
                .changes
                .publish(crate::changes::Change::Repository(name.clone()));
            Ok(())
        })
        .await
        .map(|()| Response::new(pb::DeleteRepositoryResponse {}));
        audited(
            &self.state,
            who,
            "/cairn.v1.Repositories/DeleteRepository",
            arguments,
            result,
        )
        .await
    }
}
