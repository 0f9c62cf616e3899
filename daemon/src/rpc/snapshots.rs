//! cairn.v1.Snapshots: the snapshots in a repository, and browsing one. Read straight
//! from the repository (the store keeps no copy: the repository is the truth, and
//! snapshots made by the offline CLI or another host show up too).

use std::path::Path;
use std::sync::Arc;

use cairn_engine::ops::browse::Resolved;
use cairn_engine::{Node, NodeKind, Snapshot, SnapshotId};
use cairn_proto::v1 as pb;
use cairn_proto::v1::snapshots_server::Snapshots;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use super::{blocking, page_size};
use crate::error::DaemonError;
use crate::jobs::options::backup_options;
use crate::state::DaemonState;
use crate::store::{JOBS, JobKind, JobRecord};

#[derive(Debug, Clone)]
pub struct SnapshotsService {
    pub state: Arc<DaemonState>,
}

/// The host and paths a job's snapshots record.
fn job_identity(
    state: &DaemonState,
    job: &str,
) -> Result<(String, (String, Vec<String>)), DaemonError> {
    let record: JobRecord = state
        .store
        .read("reading a job", |rx| rx.get_named(JOBS, job))?
        .ok_or_else(|| {
            DaemonError::NotFound(format!("no job named {job:?}; `cairn job list` shows them"))
        })?;
    let JobKind::Backup(spec) = &record.kind else {
        return Err(DaemonError::InvalidArgument(format!(
            "job: {job} is a {} job and makes no snapshots",
            record.kind.name()
        )));
    };
    let options = backup_options(spec, &[]);
    Ok((record.repository, options.recorded_host_and_paths()?))
}

fn snapshot_time(snapshot: &Snapshot) -> Option<Timestamp> {
    snapshot.timestamp().map(|t| Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    })
}

fn to_pb(repository: &str, id: &SnapshotId, s: &Snapshot) -> pb::Snapshot {
    pb::Snapshot {
        id: id.to_hex(),
        repository: repository.to_owned(),
        time: snapshot_time(s),
        host: s.host.clone(),
        paths: s.paths.clone(),
        tags: s.tags.clone(),
        parent: s.parent.map(|p| p.to_hex()).unwrap_or_default(),
        files_new: s.summary.files_new,
        files_changed: s.summary.files_changed,
        files_unchanged: s.summary.files_unchanged,
        bytes_added: s.summary.bytes_added,
        total_bytes: s.summary.bytes_total,
    }
}

fn list(
    state: &DaemonState,
    request: pb::ListSnapshotsRequest,
) -> Result<pb::ListSnapshotsResponse, DaemonError> {
    let mut repository = request.repository.clone();
    let mut only = None;
    if !request.job.is_empty() {
        let (job_repository, identity) = job_identity(state, &request.job)?;
        if repository.is_empty() {
            repository = job_repository;
        } else if repository != job_repository {
            return Err(DaemonError::InvalidArgument(format!(
                "job: {} backs up to repository {job_repository}, not {repository}",
                request.job
            )));
        }
        only = Some(identity);
    }
    if repository.is_empty() {
        return Err(DaemonError::InvalidArgument(
            "repository: empty; name a repository (`cairn repo list`) or a job".into(),
        ));
    }
    let mut snapshots = state.repos().open(&repository)?.snapshots()?;
    if only.is_some() {
        // What the job made: snapshots recording it, and those of its runs from before
        // snapshots recorded their job. A snapshot made by hand of the same paths is
        // not the job's.
        let earlier = crate::jobs::made_by_job(&state.store, &request.job)?;
        snapshots.retain(|(id, s)| match &s.job {
            Some(job) => *job == request.job,
            None => earlier.contains(id),
        });
    }
    // Newest first; the id breaks ties so pages never skip or repeat one.
    snapshots.sort_by(|(a_id, a), (b_id, b)| {
        b.timestamp()
            .cmp(&a.timestamp())
            .then_with(|| b_id.to_hex().cmp(&a_id.to_hex()))
    });
    let start = if request.page_token.is_empty() {
        0
    } else {
        snapshots
            .iter()
            .position(|(id, _)| id.to_hex() == request.page_token)
            .map(|i| i + 1)
            .ok_or_else(|| {
                DaemonError::InvalidArgument(
                    "page_token: that snapshot is gone (forgotten since); list again from the start"
                        .into(),
                )
            })?
    };
    let limit = page_size(request.page_size);
    let page: Vec<pb::Snapshot> = snapshots
        .iter()
        .skip(start)
        .take(limit)
        .map(|(id, s)| to_pb(&repository, id, s))
        .collect();
    let next_page_token = if start + page.len() < snapshots.len() {
        page.last().map(|s| s.id.clone()).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListSnapshotsResponse {
        snapshots: page,
        next_page_token,
    })
}

fn entry(node: &Node) -> pb::TreeEntry {
    pb::TreeEntry {
        name: node.name_lossy(),
        kind: node.kind.name().to_owned(),
        size: node.size,
        mode: node.mode,
        mtime: Some(Timestamp {
            seconds: node.mtime.secs,
            nanos: i32::try_from(node.mtime.nanos).unwrap_or(0),
        }),
        uid: node.uid,
        gid: node.gid,
        link_target: if node.kind == NodeKind::Symlink {
            String::from_utf8_lossy(&node.link_target).into_owned()
        } else {
            String::new()
        },
    }
}

fn list_tree(
    state: &DaemonState,
    request: pb::ListTreeRequest,
) -> Result<pb::ListTreeResponse, DaemonError> {
    let repo = state.repos().open_indexed(&request.repository)?;
    let query = if request.snapshot.is_empty() {
        "latest"
    } else {
        request.snapshot.as_str()
    };
    let (id, _) = repo.repo().find_snapshot(query)?;
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path.as_str()
    };
    let tree = match repo.resolve(&id, Path::new(path))? {
        Resolved::Dir(_, tree) => tree,
        Resolved::Leaf(node) => {
            return Err(DaemonError::InvalidArgument(format!(
                "path: {path} is a {} in snapshot {}, not a directory",
                node.kind.name(),
                id.short()
            )));
        }
    };
    let limit = page_size(request.page_size);
    // Tree nodes are sorted by name bytes; the token is the last name sent.
    let after = request.page_token.as_bytes();
    let start = tree
        .nodes
        .partition_point(|n| !after.is_empty() && n.name.as_slice() <= after);
    let entries: Vec<pb::TreeEntry> = tree.nodes[start..].iter().take(limit).map(entry).collect();
    let next_page_token = if start + entries.len() < tree.nodes.len() {
        entries.last().map(|e| e.name.clone()).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListTreeResponse {
        snapshot_id: id.to_hex(),
        path: path.to_owned(),
        entries,
        next_page_token,
    })
}

/// Changes listed by default and at most.
const DIFF_DEFAULT: usize = 1000;
const DIFF_MAX: usize = 100_000;

fn diff(
    state: &DaemonState,
    request: pb::DiffSnapshotsRequest,
) -> Result<pb::DiffSnapshotsResponse, DaemonError> {
    let repo = state.repos().open_indexed(&request.repository)?;
    let (from, _) = repo.repo().find_snapshot(&request.from)?;
    let (to, _) = repo.repo().find_snapshot(&request.to)?;
    let summary = repo.diff(&from, &to)?;
    let limit = match request.limit as usize {
        0 => DIFF_DEFAULT,
        n => n.min(DIFF_MAX),
    };
    let changes = summary
        .changes
        .iter()
        .take(limit)
        .map(|c| pb::SnapshotChange {
            path: c.path.clone(),
            change: c.change.name().to_owned(),
            kind: c.kind.to_owned(),
        })
        .collect();
    Ok(pb::DiffSnapshotsResponse {
        from_id: from.to_hex(),
        to_id: to.to_hex(),
        added: summary.added,
        removed: summary.removed,
        modified: summary.modified,
        metadata: summary.metadata,
        type_changed: summary.type_changed,
        truncated: summary.changes.len() > limit,
        changes,
    })
}

#[tonic::async_trait]
impl Snapshots for SnapshotsService {
    async fn forget_snapshots(
        &self,
        request: Request<pb::ForgetSnapshotsRequest>,
    ) -> Result<Response<pb::ForgetSnapshotsResponse>, Status> {
        let arguments = |r: &pb::ForgetSnapshotsRequest| serde_json::json!({ "repository": r.repository, "snapshots": r.snapshots });
        super::change(
            &self.state,
            request,
            arguments,
            |state, _, request, _| {
                if request.snapshots.is_empty() {
                    return Err(DaemonError::InvalidArgument(
                        "snapshots: name at least one snapshot to forget".into(),
                    ));
                }
                let repo = state.repos().open(&request.repository)?;
                // Every id is resolved before anything is removed.
                let plan = repo.plan_forget_ids(&request.snapshots)?;
                repo.forget(&plan)?;
                let forgotten: Vec<String> = plan.dropped().map(|e| e.id.to_hex()).collect();
                tracing::info!(repository = %request.repository, count = forgotten.len(), "snapshots forgotten");
                Ok(pb::ForgetSnapshotsResponse { forgotten })
            },
        )
        .await
    }

    async fn diff_snapshots(
        &self,
        request: Request<pb::DiffSnapshotsRequest>,
    ) -> Result<Response<pb::DiffSnapshotsResponse>, Status> {
        let request = request.into_inner();
        let state = self.state.clone();
        blocking(move || diff(&state, request))
            .await
            .map(Response::new)
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let request = request.into_inner();
        let state = self.state.clone();
        blocking(move || list(&state, request))
            .await
            .map(Response::new)
    }

    async fn plan_retention(
        &self,
        request: Request<pb::PlanRetentionRequest>,
    ) -> Result<Response<pb::PlanRetentionResponse>, Status> {
        let request = request.into_inner();
        let state = self.state.clone();
        blocking(move || super::retention::plan(&state, request))
            .await
            .map(Response::new)
    }

    async fn list_tree(
        &self,
        request: Request<pb::ListTreeRequest>,
    ) -> Result<Response<pb::ListTreeResponse>, Status> {
        let request = request.into_inner();
        let state = self.state.clone();
        blocking(move || list_tree(&state, request))
            .await
            .map(Response::new)
    }
}
