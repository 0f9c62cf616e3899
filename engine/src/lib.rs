//! # cairn-engine
//!
//! The library that does Cairn's work: content-defined chunking (fastcdc v2020 with a
//! secret seed), keyed BLAKE3 ids with domain separation, zstd, age encryption, packs,
//! index files, trees and snapshots, on a local disk (object stores next).
//!
//! It is synchronous and knows nothing of async runtimes or the daemon: parallel work
//! runs on scoped OS threads with bounded channels, progress goes to a [`Progress`]
//! sink the caller supplies, and long operations check a [`CancelToken`].
//!
//! The on-disk format is documented field by field in `FORMAT.md`.
//!
//! ```
//! use std::sync::Arc;
//! use cairn_engine::{BackupOptions, CancelToken, LocalBackend, NewKey, NoProgress, Repository,
//!     RestoreOptions, Unlock, InitOptions};
//! use cairn_engine::secrecy::SecretString;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let source = dir.path().join("source");
//! std::fs::create_dir(&source)?;
//! std::fs::write(source.join("hello.txt"), b"hello")?;
//!
//! let backend = Arc::new(LocalBackend::new(dir.path().join("repo")));
//! let passphrase = SecretString::from("correct horse".to_owned());
//! let key = NewKey::Passphrase { passphrase: passphrase.clone(), work_factor: Some(10) };
//! Repository::init(backend.clone(), &key, &InitOptions::default())?;
//!
//! let repo = Repository::open(backend, &Unlock::Passphrase(passphrase))?;
//! let mut repo = repo.load_index(&dir.path().join("cache"))?;
//! let done = repo.backup(&BackupOptions::default().paths([source.clone()]), &NoProgress, &CancelToken::new())?;
//! assert_eq!(done.summary.files_new, 1);
//!
//! let target = dir.path().join("restored");
//! repo.restore(&done.snapshot_id, &RestoreOptions::new(&target), &NoProgress, &CancelToken::new())?;
//! let restored = target.join(source.strip_prefix("/")?).join("hello.txt");
//! assert_eq!(std::fs::read(restored)?, b"hello");
//! # Ok(()) }
//! ```

pub mod alloc;
pub mod backend;
pub mod blob;
pub mod blobs;
pub mod cancel;
pub mod chunker;
pub mod condemn;
pub mod config;
pub mod crypto;
pub mod error;
pub mod forget_record;
pub mod fsmeta;
pub mod host;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod layout;
pub mod ledger;
pub mod lock;
pub mod ops;
pub mod pack;
pub mod passphrase;
pub mod pipeline;
pub mod private_fs;
pub mod progress;
pub mod repository;
pub mod retention;
pub mod shown;
pub mod snapshot;
pub mod snapshot_list;
#[cfg(test)]
mod testutil;
pub mod threads;
pub mod tree;

pub use age::secrecy;
pub use backend::Backend;
pub use backend::local::LocalBackend;
pub use cancel::CancelToken;
pub use config::ChunkerParams;
pub use error::{Error, ErrorKind, Result};
pub use id::{BlobId, PackId, SnapshotId};
pub use keyfile::{KeyKind, NewKey, Unlock};
pub use ops::backup::{BackupOptions, BackupResult, CommandSource};
pub use ops::restore::{RestoreOptions, RestoreSummary};
pub use progress::{NoProgress, Progress};
pub use repository::{IndexedRepository, InitOptions, KeyInfo, Repository};
pub use snapshot::{BackupSummary, Snapshot};
pub use tree::{Node, NodeKind, Tree};
