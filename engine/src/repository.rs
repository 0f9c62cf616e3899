//! A repository moves through states: `Repository` (config read, a key opened) and
//! `IndexedRepository` (the index loaded); operations exist only where they are valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tracing::{debug, info, warn};

use crate::backend::Backend;
use crate::config::{CONFIG_FORMAT, ChunkerParams, ConfigBody, FORMAT_VERSION};
use crate::crypto::{Keys, MasterSecrets, random_bytes};
use crate::error::{Error, Result};
use crate::id::{KeyId, SnapshotId, hex_prefix_matches};
use crate::index::Index;
use crate::keyfile::{self, KeyFile, KeyKind, NewKey, Unlock};
use crate::layout;
use crate::snapshot::Snapshot;

/// Under a repository's cache directory: the id of the key that opened it last.
const REMEMBERED_KEY: &str = "key";

/// Notes which key opened the repository (not a secret: key ids are file names).
/// Best effort: without it the next open only tries keys in cost order.
fn remember_key(path: &Path, key: &KeyId) {
    let written = path
        .parent()
        .map_or(Ok(()), crate::private_fs::create_dir_all)
        .and_then(|()| crate::private_fs::write(path, key.to_hex().as_bytes()));
    if let Err(e) = written {
        debug!(path = %path.display(), error = %e, "could not remember the key");
    }
}

/// Settings for a new repository.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub compression_level: i32,
    pub pack_size: u32,
    pub key_label: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::default(),
            compression_level: 3,
            pack_size: 16 * 1024 * 1024,
            key_label: "initial key".into(),
        }
    }
}

impl InitOptions {
    pub fn chunker(mut self, params: ChunkerParams) -> Self {
        self.chunker = params;
        self
    }
    pub fn compression_level(mut self, level: i32) -> Self {
        self.compression_level = level;
        self
    }
    pub fn pack_size(mut self, bytes: u32) -> Self {
        self.pack_size = bytes;
        self
    }
    pub fn key_label(mut self, label: impl Into<String>) -> Self {
        self.key_label = label.into();
        self
    }
}

/// A key file as `key list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: KeyId,
    pub current: bool,
    /// `None` for a key file that cannot be read (see `problem`).
    pub kind: Option<KeyKind>,
    pub label: String,
    /// It can add backups but not read them.
    pub write_only: bool,
    pub recipient: Option<String>,
    pub created: String,
    pub host: String,
    pub username: String,
    /// Why the key file cannot be used (damaged or planted): it can only be removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// An open repository: config verified, master secrets decrypted.
#[derive(Debug, Clone)]
pub struct Repository {
    backend: Arc<dyn Backend>,
    config: ConfigBody,
    keys: Arc<Keys>,
    secrets: Arc<MasterSecrets>,
    key_id: KeyId,
    /// Where this host keeps its caches of repositories (index, snapshot record).
    cache_root: Option<PathBuf>,
}

impl Repository {
    /// Creates a new repository, protected by one key.
    pub fn init(
        backend: Arc<dyn Backend>,
        new_key: &NewKey,
        options: &InitOptions,
    ) -> Result<Repository> {
        options.chunker.validate()?;
        if !(0..=22).contains(&options.compression_level) {
            return Err(Error::invalid("compression level", "must be 0 (off) to 22"));
        }
        if !(1024 * 1024..=256 * 1024 * 1024).contains(&options.pack_size) {
            return Err(Error::invalid(
                "pack size",
                "must be between 1 MiB and 256 MiB",
            ));
        }
        if backend.size(layout::CONFIG)?.is_some() {
            return Err(Error::AlreadyInitialized {
                path: backend.location(),
            });
        }
        let secrets = MasterSecrets::generate();
        let keys = Keys::derive(&secrets);
        let config = ConfigBody {
            format: CONFIG_FORMAT.into(),
            version: FORMAT_VERSION,
            id: hex::encode(random_bytes::<32>()),
            created: jiff::Timestamp::now().to_string(),
            chunker: options.chunker,
            compression_level: options.compression_level,
            pack_size: options.pack_size,
            recipient: secrets.recipient().to_string(),
        };
        backend.create()?;
        let (key_id, key_bytes) =
            KeyFile::create(&secrets, &config.id, new_key, &options.key_label)?;
        backend.write(&layout::key(&key_id), &key_bytes)?;
        // The config goes last: its presence is what makes the directory a repository.
        backend.write(layout::CONFIG, &config.encode(&keys)?)?;
        info!(repository = %backend.location(), id = %&config.id[..8], "repository created");
        Ok(Repository {
            backend,
            config,
            keys: Arc::new(keys),
            secrets: Arc::new(secrets),
            key_id,
            cache_root: None,
        })
    }

    /// Opens a repository with a passphrase or an identity file.
    pub fn open(backend: Arc<dyn Backend>, unlock: &Unlock) -> Result<Repository> {
        Self::open_with_cache(backend, unlock, None)
    }

    /// Opens a repository, trying first the key that opened it last time on this host
    /// (remembered under `cache_root`), then the others, cheapest first. A key file that
    /// is damaged, unreadable or costs more than [`crate::passphrase`] allows is skipped
    /// with a warning: one bad key file never locks out the others.
    pub fn open_with_cache(
        backend: Arc<dyn Backend>,
        unlock: &Unlock,
        cache_root: Option<&Path>,
    ) -> Result<Repository> {
        let config_bytes = match backend.read(layout::CONFIG, layout::MAX_CONFIG_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                return Err(Error::NotARepository {
                    path: backend.location(),
                });
            }
            Err(e) => return Err(e),
        };
        let (config, mac) = ConfigBody::decode(&config_bytes)?;
        let identities = keyfile::identities(unlock)?;
        let remembered_at = cache_root.map(|root| root.join(&config.id).join(REMEMBERED_KEY));
        let remembered = remembered_at
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| KeyId::parse(text.trim()).ok());
        let mut skipped = Vec::new();
        let mut candidates = Vec::new();
        for object in backend.list(layout::KEYS)? {
            let Ok(key_id) = KeyId::parse(&object.name) else {
                continue;
            };
            let name = format!("key {}", key_id.short());
            let file = backend
                .read(&layout::key(&key_id), layout::MAX_KEY_BYTES)
                .and_then(|stored| KeyFile::parse(&stored, &name));
            match file {
                Ok(file) if file.accepts(unlock) => candidates.push((key_id, file)),
                Ok(_) => {}
                Err(e) => skipped.push(e.to_string()),
            }
        }
        // The remembered key first, then by cost: a planted costly key is tried last.
        candidates.sort_by_key(|(id, file)| (Some(*id) != remembered, file.cost(), *id));
        for (key_id, file) in candidates {
            let name = format!("key {}", key_id.short());
            debug!(key = %key_id.short(), cost = file.cost(), "trying key");
            let (repository_id, secrets) = match file.open(unlock, &identities, &name) {
                Ok(Some(opened)) => opened,
                Ok(None) => continue,
                Err(e) => {
                    skipped.push(e.to_string());
                    continue;
                }
            };
            if repository_id != config.id {
                skipped.push(format!("{name} belongs to another repository"));
                continue;
            }
            let keys = Keys::derive(&secrets);
            config.verify(&mac, &keys)?;
            for problem in &skipped {
                warn!(problem = %problem, "key file skipped");
            }
            debug!(key = %key_id.short(), "repository key opened");
            if let Some(path) = &remembered_at
                && remembered != Some(key_id)
            {
                remember_key(path, &key_id);
            }
            return Ok(Repository {
                backend,
                config,
                keys: Arc::new(keys),
                secrets: Arc::new(secrets),
                key_id,
                cache_root: cache_root.map(Path::to_owned),
            });
        }
        for problem in &skipped {
            warn!(problem = %problem, "key file skipped");
        }
        Err(Error::WrongKey {
            what: match unlock {
                Unlock::Passphrase(_) => "passphrase",
                Unlock::IdentityFile(_) => "identity file",
            },
            skipped: if skipped.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} key files could not be tried: {})",
                    skipped.len(),
                    skipped.join("; ")
                )
            },
        })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn config(&self) -> &ConfigBody {
        &self.config
    }

    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Where this host's caches of repositories live, when opened with one.
    pub fn cache_root(&self) -> Option<&Path> {
        self.cache_root.as_deref()
    }

    /// The local cache directory of this repository under `cache_root`.
    pub fn cache_dir(&self, cache_root: &Path) -> PathBuf {
        cache_root.join(&self.config.id)
    }

    /// Loads the index (through the local cache) and moves to the indexed state.
    ///
    /// A damaged index file is left out with a warning; the packs no healthy index
    /// file names are then located by their own headers, so every restorable blob
    /// stays restorable.
    pub fn load_index(self, cache_root: &Path) -> Result<IndexedRepository> {
        let mut index = Index::load(
            self.backend.as_ref(),
            &self.keys,
            &self.cache_dir(cache_root),
        )?;
        if !index.damaged_files().is_empty() {
            for (pack, error) in
                index.recover_from_pack_headers(self.backend.as_ref(), &self.keys)?
            {
                warn!(pack = %pack.short(), %error, "pack header unreadable; its blobs cannot be located");
            }
        }
        Ok(IndexedRepository { repo: self, index })
    }

    /// All readable snapshots, oldest first. A snapshot record that does not verify
    /// is left out with a warning (see [`Repository::snapshot_list`] for the details).
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(self.snapshot_list()?.snapshots)
    }

    pub fn snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let stored = self
            .backend
            .read(&layout::snapshot(id), layout::MAX_SNAPSHOT_BYTES)?;
        Snapshot::open(&self.keys, id, &stored)
    }

    /// Resolves `latest`, a full id or a unique id prefix.
    pub fn find_snapshot(&self, query: &str) -> Result<(SnapshotId, Snapshot)> {
        if query == "latest" {
            return self
                .snapshots()?
                .pop()
                .ok_or_else(|| Error::SnapshotNotFound {
                    query: "latest (the repository has no snapshots)".into(),
                });
        }
        if query.is_empty() || !query.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                format!("snapshot {query:?}"),
                "expected `latest` or a hexadecimal id prefix",
            ));
        }
        let matches: Vec<SnapshotId> = self
            .backend
            .list(layout::SNAPSHOTS)?
            .into_iter()
            .filter_map(|o| SnapshotId::parse(&o.name).ok())
            .filter(|id| hex_prefix_matches(id.as_bytes(), query))
            .collect();
        match matches.as_slice() {
            [] => Err(Error::SnapshotNotFound {
                query: query.into(),
            }),
            [id] => Ok((*id, self.snapshot(id)?)),
            _ => Err(Error::AmbiguousSnapshot {
                prefix: query.into(),
                count: matches.len(),
            }),
        }
    }

    /// Stores a snapshot record; it becomes visible atomically.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        let (id, stored) = snapshot.seal(&self.keys)?;
        self.backend.write(&layout::snapshot(&id), &stored)?;
        Ok(id)
    }

    /// Every key file, oldest first; one that cannot be read is listed with its
    /// problem (so it can be seen and removed), never a reason to fail.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for object in self.backend.list(layout::KEYS)? {
            let Ok(id) = KeyId::parse(&object.name) else {
                continue;
            };
            let parsed = self
                .backend
                .read(&layout::key(&id), layout::MAX_KEY_BYTES)
                .and_then(|stored| KeyFile::parse(&stored, &format!("key {}", id.short())));
            let info = match parsed {
                Ok(file) => KeyInfo {
                    id,
                    current: id == self.key_id,
                    kind: Some(file.kind),
                    label: file.label,
                    write_only: file.write_only,
                    recipient: file.recipient,
                    created: file.created,
                    host: file.host,
                    username: file.username,
                    problem: None,
                },
                Err(e) if e.kind() == crate::ErrorKind::DataLoss => KeyInfo {
                    id,
                    current: false,
                    kind: None,
                    label: String::new(),
                    write_only: false,
                    recipient: None,
                    created: String::new(),
                    host: String::new(),
                    username: String::new(),
                    problem: Some(e.to_string()),
                },
                Err(e) => return Err(e),
            };
            out.push(info);
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    /// Adds a key file holding the same master secrets, or, `write_only`, all of them
    /// but the identity: a key that can add backups and never read one.
    pub fn add_key(&self, new_key: &NewKey, label: &str, write_only: bool) -> Result<KeyId> {
        self.require_full_key("managing keys")?;
        let secrets = if write_only {
            self.secrets.write_only()
        } else {
            self.secrets.as_ref().clone_secrets()
        };
        let (id, bytes) = KeyFile::create(&secrets, &self.config.id, new_key, label)?;
        self.backend.write(&layout::key(&id), &bytes)?;
        info!(key = %id.short(), "key added");
        Ok(id)
    }

    /// Whether the key that opened the repository can decrypt (false: write-only).
    pub fn can_read(&self) -> bool {
        self.keys.can_read()
    }

    /// Refuses `what` with a write-only key: reading, forgetting, pruning and key
    /// management belong to a trusted host with a full key.
    pub fn require_full_key(&self, what: &str) -> Result<()> {
        if self.can_read() {
            Ok(())
        } else {
            Err(Error::WriteOnly { what: what.into() })
        }
    }

    /// Removes a key file by id prefix. The key in use and the last key are kept.
    pub fn remove_key(&self, prefix: &str) -> Result<KeyId> {
        self.require_full_key("managing keys")?;
        let keys = self.list_keys()?;
        let matching: Vec<&KeyInfo> = keys
            .iter()
            .filter(|k| hex_prefix_matches(k.id.as_bytes(), prefix))
            .collect();
        let key = match matching.as_slice() {
            [] => {
                return Err(Error::invalid(
                    format!("key {prefix}"),
                    "no key has this id prefix",
                ));
            }
            [key] => *key,
            _ => {
                return Err(Error::invalid(
                    format!("key {prefix}"),
                    "prefix matches several keys",
                ));
            }
        };
        if key.current {
            return Err(Error::KeyRemoval {
                key: key.id.short(),
                reason: "it is the key this command was opened with; open with another key to remove it",
            });
        }
        // A key file that cannot be read opens nothing: removing it never locks
        // anyone out; removing the last readable one would.
        let readable = keys.iter().filter(|k| k.problem.is_none()).count();
        if key.problem.is_none() && readable < 2 {
            return Err(Error::KeyRemoval {
                key: key.id.short(),
                reason: "it is the last key",
            });
        }
        self.backend.delete(&layout::key(&key.id))?;
        info!(key = %key.id.short(), "key removed");
        Ok(key.id)
    }
}

/// A repository whose index is loaded: data operations live here.
#[derive(Debug)]
pub struct IndexedRepository {
    pub(crate) repo: Repository,
    pub(crate) index: Index,
}

impl IndexedRepository {
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn into_parts(self) -> (Repository, Index) {
        (self.repo, self.index)
    }
}
