//! cairn.v1.Restores: a snapshot written back on this host, as a run.
//!
//! Admins restore anywhere. Operators only beneath `[access] operator_restore_targets`,
//! judged on the real path of the target's deepest existing directory, so a symlink
//! planted in an allowed directory cannot lead the restore out of it.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::restores_server::Restores;
use tonic::{Request, Response, Status};

use super::{Caller, change};
use crate::audit::Pending;
use crate::auth::Role;
use crate::error::DaemonError;
use crate::state::DaemonState;
use crate::store::RestoreSpec;

#[derive(Debug, Clone)]
pub struct RestoresService {
    pub state: Arc<DaemonState>,
}

/// `path` with its existing part resolved through symlinks (the rest is appended as
/// written; it has no `..`, checked before).
fn real_path(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

/// Whether `target` lies at or beneath one of `allowed` (both resolved).
pub fn target_allowed(target: &Path, allowed: &[PathBuf]) -> bool {
    let target = real_path(target);
    allowed
        .iter()
        .filter_map(|root| root.canonicalize().ok())
        .any(|root| target.starts_with(root))
}

fn check_target(state: &DaemonState, who: Caller, target: &str) -> Result<(), DaemonError> {
    let path = Path::new(target);
    if !path.is_absolute() {
        return Err(DaemonError::InvalidArgument(format!(
            "target: {target:?} is not an absolute path on the daemon's host"
        )));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(DaemonError::InvalidArgument(format!(
            "target: {target:?} contains `..`; give the directory plainly"
        )));
    }
    if who.role >= Role::Admin {
        return Ok(());
    }
    let allowed = state.config().access.operator_restore_targets;
    if target_allowed(path, &allowed) {
        return Ok(());
    }
    Err(DaemonError::PermissionDenied(if allowed.is_empty() {
        format!(
            "only admins restore on this host: no [access] operator_restore_targets in {}",
            state.config_path.display()
        )
    } else {
        format!(
            "operators restore only beneath {} ([access] operator_restore_targets in {}); {target} is not",
            allowed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            state.config_path.display()
        )
    }))
}

fn create(
    state: &DaemonState,
    who: Caller,
    request: pb::CreateRestoreRequest,
    audit: &Pending,
) -> Result<pb::Run, DaemonError> {
    check_target(state, who, &request.target)?;
    let repo = state.repos().open(&request.repository)?;
    let query = if request.snapshot.is_empty() {
        "latest"
    } else {
        request.snapshot.as_str()
    };
    let (snapshot, _) = repo.find_snapshot(query)?;
    let spec = RestoreSpec {
        snapshot_id: snapshot.to_hex(),
        path: request.path,
        target: request.target,
        includes: request.includes,
        excludes: request.excludes,
        verify: request.verify,
        force_root_target: request.force_root_target,
    };
    let id = state
        .runner
        .enqueue_restore(&request.repository, spec, audit)?;
    super::runs::current(state, id)
}

#[tonic::async_trait]
impl Restores for RestoresService {
    async fn create_restore(
        &self,
        request: Request<pb::CreateRestoreRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let arguments = |r: &pb::CreateRestoreRequest| {
            serde_json::json!({
                "repository": r.repository,
                "snapshot": r.snapshot,
                "path": r.path,
                "target": r.target,
                "includes": r.includes,
                "excludes": r.excludes,
                "verify": r.verify,
                "force_root_target": r.force_root_target,
            })
        };
        change(&self.state, request, arguments, create).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_beneath_an_allowed_directory_pass_and_symlinks_cannot_lead_out() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("restores");
        let outside = dir.path().join("etc");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("escape")).unwrap();
        let roots = vec![allowed.clone()];

        assert!(target_allowed(&allowed, &roots));
        assert!(target_allowed(&allowed.join("new/deeper"), &roots));
        assert!(!target_allowed(&outside, &roots));
        assert!(!target_allowed(&allowed.join("escape"), &roots));
        assert!(!target_allowed(&allowed.join("escape/new"), &roots));
        assert!(
            !target_allowed(&dir.path().join("restores-other"), &roots),
            "a name that only starts like the allowed one"
        );
        assert!(!target_allowed(&allowed, &[]));
    }
}
