//! A repository's objects in memory: for tests of the engine at its own level, as
//! the reference the S3 and SFTP backends are held to (every rule of [`Backend`] and
//! nothing more), and for faults a disk will not produce on demand. [`Faults`] makes
//! the Nth write fail, makes a write be acknowledged and then lost (what an unsynced
//! write does in a power cut), or makes new objects show in listings only late (as
//! an eventually consistent object store lists them).

use std::collections::BTreeMap;
use std::io::{self, Cursor, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Backend, ObjectInfo, ObjectReader, StagedObject};
use crate::error::{Error, Result};
use crate::layout;

/// Faults to inject; all off by default. Counts are of the writes (whole objects and
/// staged commits) made from the moment they are set. Lock records are never faulted
/// nor counted: they are the bookkeeping of the process under test, not its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The write with this number (1 for the next) fails, as a full disk would.
    pub fail_write: Option<u64>,
    /// The write with this number succeeds but its object never lands.
    pub lose_write: Option<u64>,
    /// New objects stay out of listings until this many later listings were made.
    pub list_late_by: u32,
    /// After this many changes (writes and deletes, lock records aside), every further
    /// change fails and lands nothing: the storage as a process killed at that moment
    /// left it. Lock records are left out because a killed process's lock is stale at
    /// once on its own host.
    pub crash_after: Option<u64>,
}

#[derive(Debug, Default)]
struct Objects {
    objects: BTreeMap<String, Arc<Vec<u8>>>,
    /// Objects not yet listed, with the listings they still wait for.
    unlisted: BTreeMap<String, u32>,
    faults: Faults,
    writes: u64,
    changes: u64,
}

impl Objects {
    /// Counts a change to `name`; an error when the simulated crash has happened.
    fn change(&mut self, name: &str, action: &str) -> Result<()> {
        if kind_of(name) == layout::LOCKS {
            return Ok(());
        }
        self.changes += 1;
        if self.faults.crash_after.is_some_and(|n| self.changes > n) {
            return Err(Error::storage(
                format!("{action} {}", layout::describe(name)),
                "memory",
                io::Error::other("simulated crash: nothing lands any more"),
            ));
        }
        Ok(())
    }
}

/// Objects kept in memory; clones share them (like two handles on one bucket).
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<Objects>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the faults to inject from now on.
    pub fn inject(&self, faults: Faults) {
        let mut state = self.lock();
        state.faults = faults;
        state.writes = 0;
        state.changes = 0;
    }

    /// The writes made since the faults were last set.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// The names of every object held, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Replaces an object's bytes as they are (a damaged or planted object).
    pub fn put_raw(&self, name: &str, bytes: Vec<u8>) {
        self.lock().objects.insert(name.to_owned(), Arc::new(bytes));
    }

    /// An object's bytes as they are stored.
    pub fn get_raw(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().objects.get(name).map(|b| b.as_ref().clone())
    }

    fn lock(&self) -> MutexGuard<'_, Objects> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An object's bytes, shared (not copied); NotFound as the disk says it.
    fn object(&self, name: &str) -> Result<Arc<Vec<u8>>> {
        self.lock().objects.get(name).cloned().ok_or_else(|| {
            Error::io_path(
                std::path::Path::new(&format!("memory:{name}")),
                io::Error::new(io::ErrorKind::NotFound, "no such object"),
            )
        })
    }

    /// Stores a whole object, unless a fault says otherwise.
    fn land(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let mut state = self.lock();
        if kind_of(name) == layout::LOCKS {
            state.objects.insert(name.to_owned(), Arc::new(bytes));
            return Ok(());
        }
        state.change(name, "writing")?;
        state.writes += 1;
        let number = state.writes;
        if state.faults.fail_write == Some(number) {
            return Err(Error::storage(
                format!("writing {}", layout::describe(name)),
                self.location(),
                io::Error::from_raw_os_error(libc::ENOSPC),
            ));
        }
        if state.faults.lose_write == Some(number) {
            return Ok(());
        }
        let late = state.faults.list_late_by;
        if late > 0 {
            state.unlisted.insert(name.to_owned(), late);
        }
        state.objects.insert(name.to_owned(), Arc::new(bytes));
        Ok(())
    }
}

/// The kind directory an object is listed under (`data/ab/<id>` is in `data`).
fn kind_of(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

fn last_component(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn create(&self) -> Result<()> {
        // Objects need no layout here; only a repository already there is refused.
        if self.lock().objects.contains_key(layout::CONFIG) {
            return Err(Error::AlreadyInitialized {
                path: "memory".to_owned(),
            });
        }
        Ok(())
    }

    fn read(&self, name: &str, max_len: u64) -> Result<Vec<u8>> {
        let bytes = self.object(name)?;
        if bytes.len() as u64 > max_len {
            return Err(Error::TooLarge {
                object: layout::describe(name),
                size: bytes.len() as u64,
                limit: max_len,
            });
        }
        Ok(bytes.as_ref().clone())
    }

    fn open(&self, name: &str) -> Result<Box<dyn ObjectReader>> {
        Ok(Box::new(Cursor::new(SharedBytes(self.object(name)?))))
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<()> {
        self.land(name, data.to_vec())
    }

    fn stage(&self) -> Result<Box<dyn StagedObject>> {
        Ok(Box::new(MemoryStaged {
            backend: self.clone(),
            bytes: Vec::new(),
        }))
    }

    fn list(&self, kind: &str) -> Result<Vec<ObjectInfo>> {
        let mut state = self.lock();
        let Objects {
            objects, unlisted, ..
        } = &mut *state;
        let mut out = Vec::new();
        for (name, bytes) in objects.iter() {
            if kind_of(name) != kind || name == kind {
                continue;
            }
            if let Some(waits) = unlisted.get_mut(name) {
                *waits -= 1;
                if *waits > 0 {
                    continue;
                }
                unlisted.remove(name);
            }
            out.push(ObjectInfo {
                name: last_component(name).to_owned(),
                size: bytes.len() as u64,
            });
        }
        Ok(out)
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.lock().objects.get(name).map(|b| b.len() as u64))
    }

    fn delete(&self, name: &str) -> Result<()> {
        let mut state = self.lock();
        state.change(name, "deleting")?;
        state.objects.remove(name);
        state.unlisted.remove(name);
        Ok(())
    }
}

/// An object's bytes shared with the store, read without a copy.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A staged write: its bytes land under a name only on commit.
struct MemoryStaged {
    backend: MemoryBackend,
    bytes: Vec<u8>,
}

impl Write for MemoryStaged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StagedObject for MemoryStaged {
    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        let MemoryStaged { backend, bytes } = *self;
        backend.land(name, bytes)
    }

    fn read_back(&mut self) -> Result<Box<dyn ObjectReader + '_>> {
        Ok(Box::new(Cursor::new(self.bytes.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_written_read_listed_and_deleted_like_on_disk() {
        let backend = MemoryBackend::new();
        backend.create().unwrap();
        backend.write("config", b"c").unwrap();
        backend.write("keys/k1", b"key").unwrap();
        let mut staged = backend.stage().unwrap();
        staged.write_all(b"pack bytes").unwrap();
        staged.commit("data/ab/abcd").unwrap();
        assert_eq!(backend.read("keys/k1", 10).unwrap(), b"key");
        assert!(matches!(
            backend.read("data/ab/abcd", 4),
            Err(Error::TooLarge { size: 10, .. })
        ));
        let listed = backend.list("data").unwrap();
        assert_eq!(
            listed,
            [ObjectInfo {
                name: "abcd".into(),
                size: 10
            }]
        );
        assert_eq!(backend.size("keys/k1").unwrap(), Some(3));
        backend.delete("keys/k1").unwrap();
        backend.delete("keys/k1").unwrap();
        assert_eq!(backend.size("keys/k1").unwrap(), None);
        assert_eq!(
            backend.read("keys/k1", 10).unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
        assert!(matches!(
            backend.create(),
            Err(Error::AlreadyInitialized { .. })
        ));
    }

    #[test]
    fn faults_fail_lose_and_delay_the_writes_they_name() {
        let backend = MemoryBackend::new();
        backend.inject(Faults {
            fail_write: Some(2),
            lose_write: Some(3),
            list_late_by: 2,
            crash_after: None,
        });
        backend.write("snapshots/a", b"1").unwrap();
        let error = backend.write("snapshots/b", b"2").unwrap_err();
        assert!(error.to_string().contains("no space left"), "{error}");
        backend.write("snapshots/c", b"3").unwrap();
        assert_eq!(backend.names(), ["snapshots/a"], "b failed and c was lost");
        assert!(backend.list("snapshots").unwrap().is_empty(), "late");
        assert_eq!(backend.list("snapshots").unwrap().len(), 1, "then listed");
    }

    #[test]
    fn after_a_crash_nothing_lands_but_lock_records() {
        let backend = MemoryBackend::new();
        backend.write("snapshots/a", b"1").unwrap();
        backend.inject(Faults {
            crash_after: Some(1),
            ..Faults::default()
        });
        backend.write("snapshots/b", b"2").unwrap();
        assert!(backend.delete("snapshots/a").is_err());
        assert!(backend.write("snapshots/c", b"3").is_err());
        backend.write("locks/x", b"lock").unwrap();
        backend.delete("locks/x").unwrap();
        assert_eq!(backend.names(), ["snapshots/a", "snapshots/b"]);
    }
}
