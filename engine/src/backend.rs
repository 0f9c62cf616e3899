//! Storage backends: where a repository's objects live. The trait is deliberately
//! small so an object store fits it as well as a local disk.
//!
//! Object names are slash-separated relative paths (`config`, `keys/<id>`,
//! `data/ab/<id>`). Every write is atomic: a reader sees the whole object or none.

pub mod local;
pub mod location;
pub mod memory;
pub mod open;
pub(crate) mod pack_cache;
pub mod remote;
pub mod s3;
mod s3_put;
pub mod sftp;

use std::fmt::Debug;
use std::io::{Read, Seek, Write};

use crate::error::Result;

/// A readable, seekable view of one stored object.
pub trait ObjectReader: Read + Seek + Send {}
impl<T: Read + Seek + Send> ObjectReader for T {}

/// An object being written in pieces (a pack); becomes visible only on `commit`.
pub trait StagedObject: Write + Send {
    /// Makes the object durable and visible under `name`.
    fn commit(self: Box<Self>, name: &str) -> Result<()>;
    /// The bytes written so far, read back (used to verify before committing).
    fn read_back(&mut self) -> Result<Box<dyn ObjectReader + '_>>;
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The last path component (the id for content-named objects).
    pub name: String,
    pub size: u64,
}

pub trait Backend: Send + Sync + Debug {
    /// Where this backend points, for messages.
    fn location(&self) -> String;
    /// Creates the layout of an empty repository. Fails if one already exists.
    fn create(&self) -> Result<()>;
    /// Reads a whole object of at most `max_len` bytes: a larger one is refused with
    /// [`crate::Error::TooLarge`] before it is read, so a planted giant costs nothing.
    /// Only regular files (or plain objects) are read, never through a symlink.
    fn read(&self, name: &str, max_len: u64) -> Result<Vec<u8>>;
    /// Opens an object for random access (same rules as `read`, without a size bound:
    /// packs are read piece by piece).
    fn open(&self, name: &str) -> Result<Box<dyn ObjectReader>>;
    /// Writes a whole object atomically, replacing any object of that name.
    fn write(&self, name: &str, data: &[u8]) -> Result<()>;
    /// Starts a staged write for a large object whose name is known only at the end.
    fn stage(&self) -> Result<Box<dyn StagedObject>>;
    /// Lists the objects of a type (`keys`, `index`, `snapshots`, `data`, `locks`).
    fn list(&self, kind: &str) -> Result<Vec<ObjectInfo>>;
    /// Size of an object, or `None` when it does not exist.
    fn size(&self, name: &str) -> Result<Option<u64>>;
    /// Removes an object; removing a missing object is not an error.
    fn delete(&self, name: &str) -> Result<()>;
    /// The directory holding the repository when it is on a local filesystem (so a
    /// backup of a tree that contains it can leave it out).
    fn local_root(&self) -> Option<&std::path::Path> {
        None
    }
    /// How many packs a backup uploads at once: one for a local disk (the fsync is
    /// the cost), a few for a network store (the round trip is).
    fn parallel_uploads(&self) -> usize {
        1
    }
    /// Whether announcing the packs about to be opened ([`Backend::prefetch`]) pays:
    /// a network backend downloads them ahead, a local disk has nothing to gain.
    fn reads_ahead(&self) -> bool {
        false
    }
    /// Objects that will be opened soon, in the order they will be.
    fn prefetch(&self, _names: &[String]) {}
    /// Retries and the last error since the backend was opened (network backends).
    fn health(&self) -> Option<remote::BackendHealth> {
        None
    }
}
