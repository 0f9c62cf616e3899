//! A repository in a local directory.
//!
//! Writes go to `tmp/` first, are fsynced, renamed into place and the parent directory
//! is fsynced: on Linux filesystems with ordered metadata (ext4, xfs, btrfs) this makes
//! the object either wholly present or absent after a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Backend, ObjectInfo, ObjectReader, StagedObject};
use crate::error::{Error, IoContext, Result};

const TYPE_DIRS: [&str; 7] = [
    "keys",
    "data",
    "index",
    "snapshots",
    "locks",
    "forgotten",
    "condemned",
];

/// A temporary file at least this old whose writer is gone (no lock on it) is left
/// from an interrupted write. The age guards the moment between a writer creating
/// its file and locking it.
const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);
/// How often a long-lived process (the daemon) sweeps again.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
    /// When this process last swept `tmp/` of files left by interrupted writes.
    swept: Arc<Mutex<Option<Instant>>>,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend {
            root: root.into(),
            swept: Arc::new(Mutex::new(None)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Opens an object for reading: never through a symlink (a planted link to
    /// `/dev/zero` would be read until memory runs out), and never anything but a
    /// regular file (opening a planted FIFO does not wait for a writer: it is refused).
    fn open_object(&self, name: &str) -> Result<(File, u64)> {
        let path = self.path(name);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => Error::corrupt(
                    crate::layout::describe(name),
                    "it is a symlink; repository objects are regular files (planted or damaged)",
                ),
                _ => Error::io_path(&path, e),
            })?;
        let meta = file.metadata().at_path(&path)?;
        if !meta.is_file() {
            return Err(Error::corrupt(
                crate::layout::describe(name),
                format!(
                    "it is a {}, not a regular file (planted or damaged)",
                    file_type_name(&meta)
                ),
            ));
        }
        Ok((file, meta.len()))
    }

    /// Removes temporary files whose writer is gone: each writer holds a lock on its
    /// file until the file is renamed into place or removed, and the kernel drops the
    /// lock when the writer dies, even by SIGKILL. Before a process's first write, and
    /// again each hour in a process that lives that long.
    fn sweep_stale_temp_files(&self) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(|e| e.into_inner());
            if swept.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
                return;
            }
            *swept = Some(Instant::now());
        }
        let dir = self.root.join("tmp");
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "tmp") {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMP_AGE);
            if !old {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let unlocked =
                rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok();
            if unlocked && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(files = removed, dir = %dir.display(), "removed temporary files left by interrupted writes");
        }
    }

    fn temp_file(&self) -> Result<(PathBuf, File)> {
        self.sweep_stale_temp_files();
        let dir = self.root.join("tmp");
        for _ in 0..16 {
            let name = hex::encode(crate::crypto::random_bytes::<12>());
            let path = dir.join(format!("{name}.tmp"));
            match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    // Held until the file is renamed into place or removed: the sweep
                    // of another process leaves it alone.
                    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                        .map_err(|e| Error::io_path(&path, e.into()))?;
                    return Ok((path, file));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::storage(
                        "creating a temporary file",
                        self.location(),
                        e,
                    ));
                }
            }
        }
        Err(Error::io_path(
            &dir,
            io::Error::other("could not create a unique temporary file"),
        ))
    }

    /// Moves a fully written, fsynced temp file into place and makes the rename durable.
    /// When only the last step fails the object is in place: the error says so.
    fn publish(&self, temp: &Path, name: &str) -> Result<()> {
        let target = self.path(name);
        let mut renamed = fs::rename(temp, &target);
        if let Err(e) = &renamed
            && e.kind() == io::ErrorKind::NotFound
            && temp.exists()
            && let Some(parent) = target.parent()
        {
            // The directory of a kind added to the format after this repository was made.
            crate::private_fs::create_dir_all(parent).at_path(parent)?;
            fsync_dir(&self.root)?;
            renamed = fs::rename(temp, &target);
        }
        if let Err(e) = renamed {
            let _ = fs::remove_file(temp);
            return Err(Error::storage(
                format!("moving {} into place", crate::layout::describe(name)),
                self.location(),
                e,
            ));
        }
        let parent = target.parent().unwrap_or(&self.root);
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::NotDurable {
                object: crate::layout::describe(name),
                location: self.location(),
                source: e,
            })
    }
}

/// What a directory without a config holds.
enum Leftover {
    Empty,
    /// Only the layout and the key and temporary files of an `init` that was stopped
    /// (by a full disk, a signal): these files.
    InterruptedInit(Vec<PathBuf>),
    /// Anything else, by name (a few).
    Foreign(Vec<String>),
}

impl LocalBackend {
    fn leftover_of_init(&self) -> Result<Leftover> {
        let mut top = Vec::new();
        for entry in fs::read_dir(&self.root).at_path(&self.root)? {
            top.push(entry.at_path(&self.root)?);
        }
        if top.is_empty() {
            return Ok(Leftover::Empty);
        }
        let ours = |name: &str| TYPE_DIRS.contains(&name) || name == "tmp";
        let foreign: Vec<String> = top
            .iter()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !ours(name))
            .take(5)
            .collect();
        if !foreign.is_empty() {
            return Ok(Leftover::Foreign(foreign));
        }
        // Key and temporary files are what an init writes; anything stored elsewhere
        // means a repository lost its config, which is not ours to remove.
        let mut files = Vec::new();
        for kind in TYPE_DIRS.iter().chain(std::iter::once(&"tmp")) {
            let mut pending = vec![self.root.join(kind)];
            while let Some(dir) = pending.pop() {
                let Ok(entries) = fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries {
                    let entry = entry.at_path(&dir)?;
                    let path = entry.path();
                    if entry.file_type().at_path(&path)?.is_dir() {
                        pending.push(path);
                    } else if *kind == "keys" || *kind == "tmp" {
                        files.push(path);
                    } else {
                        return Ok(Leftover::Foreign(vec![format!(
                            "{} but no config",
                            path.strip_prefix(&self.root).unwrap_or(&path).display()
                        )]));
                    }
                }
            }
        }
        Ok(Leftover::InterruptedInit(files))
    }
}

fn file_type_name(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|d| d.sync_all()).at_path(path)
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<()> {
        if self.path("config").exists() {
            return Err(Error::AlreadyInitialized {
                path: self.location(),
            });
        }
        let layout_failed = |e: io::Error| {
            Error::storage("creating the repository's directories", self.location(), e)
        };
        crate::private_fs::create_dir_all(&self.root).map_err(layout_failed)?;
        match self.leftover_of_init()? {
            Leftover::Empty => {}
            Leftover::InterruptedInit(files) => {
                // `init` writes the config last: without it, the key files here guard
                // secrets no data was ever written with. Start over.
                for file in &files {
                    fs::remove_file(file).at_path(file)?;
                }
                tracing::info!(repository = %self.location(), files = files.len(), "finishing an interrupted init");
            }
            Leftover::Foreign(names) => {
                return Err(Error::invalid(
                    format!("repository path {}", self.root.display()),
                    format!(
                        "the directory is not empty (it holds {}); choose an empty or new directory",
                        names.join(", ")
                    ),
                ));
            }
        }
        for dir in TYPE_DIRS.iter().chain(std::iter::once(&"tmp")) {
            let path = self.root.join(dir);
            crate::private_fs::create_dir_all(&path).map_err(layout_failed)?;
        }
        for prefix in 0..=255u8 {
            let path = self.root.join("data").join(format!("{prefix:02x}"));
            crate::private_fs::create_dir_all(&path).map_err(layout_failed)?;
        }
        fsync_dir(&self.root)
    }

    fn read(&self, name: &str, max_len: u64) -> Result<Vec<u8>> {
        let (file, len) = self.open_object(name)?;
        if len > max_len {
            return Err(Error::TooLarge {
                object: crate::layout::describe(name),
                size: len,
                limit: max_len,
            });
        }
        let path = self.path(name);
        let mut bytes = Vec::with_capacity(len as usize);
        // The file may grow while it is read: never read more than the bound.
        file.take(max_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .at_path(&path)?;
        if bytes.len() as u64 > max_len {
            return Err(Error::TooLarge {
                object: crate::layout::describe(name),
                size: bytes.len() as u64,
                limit: max_len,
            });
        }
        Ok(bytes)
    }

    fn open(&self, name: &str) -> Result<Box<dyn ObjectReader>> {
        Ok(Box::new(self.open_object(name)?.0))
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<()> {
        let (temp, mut file) = self.temp_file()?;
        let result = file.write_all(data).and_then(|()| file.sync_all());
        if let Err(e) = result {
            drop(file);
            let _ = fs::remove_file(&temp);
            return Err(Error::storage(
                format!("writing {}", crate::layout::describe(name)),
                self.location(),
                e,
            ));
        }
        drop(file);
        self.publish(&temp, name)
    }

    fn stage(&self) -> Result<Box<dyn StagedObject>> {
        let (path, file) = self.temp_file()?;
        Ok(Box::new(LocalStaged {
            backend: self.clone(),
            path,
            file: Some(file),
        }))
    }

    fn list(&self, kind: &str) -> Result<Vec<ObjectInfo>> {
        let dir = self.path(kind);
        let mut out = Vec::new();
        let mut pending = vec![dir.clone()];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                // A kind added to the format after the repository was made has no
                // directory yet: it has no objects.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && (dir != self.path(kind) || self.root.join("config").exists()) =>
                {
                    continue;
                }
                Err(e) => return Err(Error::io_path(&dir, e)),
            };
            for entry in entries {
                let entry = entry.at_path(&dir)?;
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    // Deleted since the directory was read (a prune, a forget).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io_path(&entry.path(), e)),
                };
                if meta.is_dir() {
                    pending.push(entry.path());
                } else if let Some(name) = entry.file_name().to_str() {
                    out.push(ObjectInfo {
                        name: name.to_owned(),
                        size: meta.len(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        let path = self.path(name);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io_path(&path, e)),
        }
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io_path(&path, e)),
        }
    }
}

/// A pack being written into `tmp/`.
struct LocalStaged {
    backend: LocalBackend,
    path: PathBuf,
    file: Option<File>,
}

impl Write for LocalStaged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("staged object already committed"))?
            .write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StagedObject for LocalStaged {
    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::invalid("staged object", "committed twice"))?;
        if let Err(e) = file.sync_all() {
            // The file is not committed: dropping `self` removes it.
            self.file = Some(file);
            return Err(Error::storage(
                format!("syncing {}", crate::layout::describe(name)),
                self.backend.location(),
                e,
            ));
        }
        drop(file);
        self.backend.publish(&self.path, name)
    }

    fn read_back(&mut self) -> Result<Box<dyn ObjectReader + '_>> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::invalid("staged object", "already committed"))?;
        file.seek(SeekFrom::Start(0)).at_path(&self.path)?;
        Ok(Box::new(file))
    }
}

impl Drop for LocalStaged {
    fn drop(&mut self) {
        // Not committed: an abandoned pack (error or cancellation) leaves no debris.
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
