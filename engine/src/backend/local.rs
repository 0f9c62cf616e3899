//! A repository in a local directory.
//!
//! Writes go to `tmp/` first, are fsynced, renamed into place and the parent directory
//! is fsynced: on Linux filesystems with ordered metadata (ext4, xfs, btrfs) this makes
//! the object either wholly present or absent after a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Backend, ObjectInfo, ObjectReader, StagedObject};
use crate::error::{Error, IoContext, Result};

const TYPE_DIRS: [&str; 5] = ["keys", "data", "index", "snapshots", "locks"];

#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn temp_file(&self) -> Result<(PathBuf, File)> {
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
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io_path(&path, e)),
            }
        }
        Err(Error::io_path(
            &dir,
            io::Error::other("could not create a unique temporary file"),
        ))
    }

    /// Moves a fully written, fsynced temp file into place and makes the rename durable.
    fn publish(&self, temp: &Path, name: &str) -> Result<()> {
        let target = self.path(name);
        if let Err(e) = fs::rename(temp, &target) {
            let _ = fs::remove_file(temp);
            return Err(Error::io_path(&target, e));
        }
        let parent = target.parent().unwrap_or(&self.root);
        File::open(parent)
            .and_then(|d| d.sync_all())
            .at_path(parent)
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
        fs::create_dir_all(&self.root).at_path(&self.root)?;
        if fs::read_dir(&self.root)
            .at_path(&self.root)?
            .next()
            .is_some()
        {
            return Err(Error::invalid(
                format!("repository path {}", self.root.display()),
                "the directory is not empty; choose an empty or new directory",
            ));
        }
        for dir in TYPE_DIRS.iter().chain(std::iter::once(&"tmp")) {
            let path = self.root.join(dir);
            fs::create_dir_all(&path).at_path(&path)?;
        }
        for prefix in 0..=255u8 {
            let path = self.root.join("data").join(format!("{prefix:02x}"));
            fs::create_dir_all(&path).at_path(&path)?;
        }
        fsync_dir(&self.root)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path(name);
        fs::read(&path).at_path(&path)
    }

    fn open(&self, name: &str) -> Result<Box<dyn ObjectReader>> {
        let path = self.path(name);
        Ok(Box::new(File::open(&path).at_path(&path)?))
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<()> {
        let (temp, mut file) = self.temp_file()?;
        let result = file.write_all(data).and_then(|()| file.sync_all());
        if let Err(e) = result {
            drop(file);
            let _ = fs::remove_file(&temp);
            return Err(Error::io(
                format!("{} (writing {name})", self.location()),
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
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir != self.path(kind) => continue,
                Err(e) => return Err(Error::io_path(&dir, e)),
            };
            for entry in entries {
                let entry = entry.at_path(&dir)?;
                let meta = entry.metadata().at_path(&entry.path())?;
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
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io_path(&path, e)),
        }
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
        file.sync_all().at_path(&self.path)?;
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
