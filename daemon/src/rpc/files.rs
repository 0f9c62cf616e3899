//! cairn.v1.Files: one directory of the daemon's host, for picking a job's sources in
//! the console. Admin only: the daemon reads as itself (usually root), so this shows
//! what an admin could read anyway.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use cairn_proto::v1 as pb;
use cairn_proto::v1::files_server::Files;
use tonic::{Request, Response, Status};

use super::blocking;
use crate::error::DaemonError;

/// Entries listed at most (a directory with more is cut, saying so).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Default)]
pub struct FilesService;

/// An absolute path without `.`, `..` or a trailing slash.
fn normalise(path: &str) -> Result<PathBuf, DaemonError> {
    let path = if path.is_empty() { "/" } else { path };
    if !path.starts_with('/') {
        return Err(DaemonError::InvalidArgument(format!(
            "path: {} is relative; give an absolute path",
            crate::error::echo(path)
        )));
    }
    let mut out = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

fn kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_dir() {
        "dir"
    } else if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_char_device() {
        "chardev"
    } else if file_type.is_block_device() {
        "blockdev"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "file"
    }
}

pub fn list(path: &str) -> Result<pb::ListDirectoryResponse, DaemonError> {
    let dir = normalise(path)?;
    let shown = dir.display().to_string();
    let reading = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DaemonError::NotFound(format!("{shown} does not exist")),
        std::io::ErrorKind::NotADirectory => {
            DaemonError::InvalidArgument(format!("path: {shown} is not a directory"))
        }
        _ => DaemonError::FailedPrecondition(format!("cannot read {shown}: {e}")),
    })?;
    let mut entries = Vec::new();
    let mut unreadable = Vec::new();
    for item in reading.take(MAX_ENTRIES) {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                unreadable.push(format!("{shown}: {e}"));
                continue;
            }
        };
        let name = item.file_name().to_string_lossy().into_owned();
        match item.metadata() {
            Ok(meta) => entries.push(pb::DirectoryEntry {
                kind: kind(meta.file_type()).into(),
                size: meta.len(),
                mtime: Some(prost_types::Timestamp {
                    seconds: meta.mtime(),
                    nanos: 0,
                }),
                link_target: if meta.file_type().is_symlink() {
                    std::fs::read_link(item.path())
                        .map(|t| t.display().to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                name,
            }),
            Err(e) => unreadable.push(format!("{name}: {e}")),
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pb::ListDirectoryResponse {
        path: shown,
        entries,
        unreadable,
    })
}

#[tonic::async_trait]
impl Files for FilesService {
    async fn list_directory(
        &self,
        request: Request<pb::ListDirectoryRequest>,
    ) -> Result<Response<pb::ListDirectoryResponse>, Status> {
        let path = request.into_inner().path;
        blocking(move || list(&path)).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_directory_in_name_order_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), b"12345").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("b.txt", dir.path().join("c")).unwrap();
        let listed = list(&format!("{}/a/../", dir.path().display())).unwrap();
        assert_eq!(listed.path, dir.path().display().to_string());
        let seen: Vec<(&str, &str, u64, &str)> = listed
            .entries
            .iter()
            .map(|e| {
                (
                    e.name.as_str(),
                    e.kind.as_str(),
                    e.size,
                    e.link_target.as_str(),
                )
            })
            .collect();
        assert_eq!((seen[0].0, seen[0].1), ("a", "dir"));
        assert_eq!(seen[1], ("b.txt", "file", 5, ""));
        assert_eq!((seen[2].0, seen[2].1, seen[2].3), ("c", "symlink", "b.txt"));

        assert!(
            matches!(list("etc"), Err(DaemonError::InvalidArgument(m)) if m.contains("relative"))
        );
        let missing = dir.path().join("nope").display().to_string();
        assert!(matches!(list(&missing), Err(DaemonError::NotFound(m)) if m.contains("nope")));
        let file = dir.path().join("b.txt").display().to_string();
        assert!(
            matches!(list(&file), Err(DaemonError::InvalidArgument(m)) if m.contains("not a directory"))
        );
    }
}
