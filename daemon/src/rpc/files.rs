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

/// Entries per page when the request names none, and at most.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 5000;

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

/// One page of `path`: the `page_size` smallest names (by bytes) after the token's
/// name. The whole directory is read for each page, but only a page of names is kept
/// (a bounded heap), so a directory of millions costs time, not memory.
pub fn list(
    path: &str,
    page_size: u32,
    page_token: &str,
) -> Result<pb::ListDirectoryResponse, DaemonError> {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = normalise(path)?;
    let shown = dir.display().to_string();
    let after = hex::decode(page_token).map_err(|_| {
        DaemonError::InvalidArgument("page_token: not a token this daemon gave out".into())
    })?;
    let page = match page_size as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let reading = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DaemonError::NotFound(format!("{shown} does not exist")),
        std::io::ErrorKind::NotADirectory => {
            DaemonError::InvalidArgument(format!("path: {shown} is not a directory"))
        }
        _ => DaemonError::FailedPrecondition(format!("cannot read {shown}: {e}")),
    })?;
    // The page plus one (to know whether more follow): the largest on top, dropped
    // whenever a smaller one comes.
    let mut smallest: std::collections::BinaryHeap<Vec<u8>> = std::collections::BinaryHeap::new();
    let mut total = 0u64;
    let mut unreadable = Vec::new();
    for item in reading {
        let name = match item {
            Ok(item) => item.file_name().as_bytes().to_vec(),
            Err(e) => {
                unreadable.push(format!("{shown}: {e}"));
                continue;
            }
        };
        total += 1;
        if !page_token.is_empty() && name <= after {
            continue;
        }
        smallest.push(name);
        if smallest.len() > page + 1 {
            smallest.pop();
        }
    }
    let mut names = smallest.into_sorted_vec();
    let more = names.len() > page;
    names.truncate(page);
    let next_page_token = if more {
        names.last().map(hex::encode).unwrap_or_default()
    } else {
        String::new()
    };
    let mut entries = Vec::with_capacity(names.len());
    for raw in names {
        let path = dir.join(std::ffi::OsStr::from_bytes(&raw));
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                let target = if meta.file_type().is_symlink() {
                    std::fs::read_link(&path)
                        .map(|t| t.as_os_str().as_bytes().to_vec())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                entries.push(pb::DirectoryEntry {
                    name: cairn_engine::shown::name(&raw),
                    kind: kind(meta.file_type()).into(),
                    size: meta.len(),
                    mtime: Some(prost_types::Timestamp {
                        seconds: meta.mtime(),
                        nanos: 0,
                    }),
                    link_target: cairn_engine::shown::name(&target),
                    raw_name: raw,
                    raw_link_target: target,
                });
            }
            Err(e) => unreadable.push(format!("{}: {e}", cairn_engine::shown::name(&raw))),
        }
    }
    Ok(pb::ListDirectoryResponse {
        path: shown,
        entries,
        unreadable,
        next_page_token,
        total_entries: total,
    })
}

#[tonic::async_trait]
impl Files for FilesService {
    async fn list_directory(
        &self,
        request: Request<pb::ListDirectoryRequest>,
    ) -> Result<Response<pb::ListDirectoryResponse>, Status> {
        let request = request.into_inner();
        blocking(move || list(&request.path, request.page_size, &request.page_token))
            .await
            .map(Response::new)
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
        let listed = list(&format!("{}/a/../", dir.path().display()), 0, "").unwrap();
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
            matches!(list("etc", 0, ""), Err(DaemonError::InvalidArgument(m)) if m.contains("relative"))
        );
        let missing = dir.path().join("nope").display().to_string();
        assert!(
            matches!(list(&missing, 0, ""), Err(DaemonError::NotFound(m)) if m.contains("nope"))
        );
        let file = dir.path().join("b.txt").display().to_string();
        assert!(
            matches!(list(&file, 0, ""), Err(DaemonError::InvalidArgument(m)) if m.contains("not a directory"))
        );
    }

    #[test]
    fn pages_cover_every_entry_once_in_byte_order_and_odd_names_stay_distinct() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tempfile::tempdir().unwrap();
        for i in 0..25 {
            std::fs::write(dir.path().join(format!("f{i:03}")), b"").unwrap();
        }
        for raw in [&b"a\xffb"[..], b"a\xfeb", b"back\\slash"] {
            std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(raw)), b"").unwrap();
        }
        let path = dir.path().display().to_string();
        let (mut raw, mut shown, mut token, mut pages) = (Vec::new(), Vec::new(), String::new(), 0);
        loop {
            let page = list(&path, 10, &token).unwrap();
            assert_eq!(page.total_entries, 28);
            pages += 1;
            raw.extend(page.entries.iter().map(|e| e.raw_name.clone()));
            shown.extend(page.entries.iter().map(|e| e.name.clone()));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(pages, 3);
        let mut sorted = raw.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(raw, sorted, "every entry once, in byte order");
        assert_eq!(raw.len(), 28);
        assert!(shown.contains(&"a\\xffb".to_owned()) && shown.contains(&"a\\xfeb".to_owned()));
        assert!(shown.contains(&"back\\\\slash".to_owned()));
        assert!(matches!(
            list(&path, 10, "not hex"),
            Err(DaemonError::InvalidArgument(m)) if m.contains("page_token")
        ));
    }
}
