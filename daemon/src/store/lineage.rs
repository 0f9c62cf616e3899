//! What the state dir knows about its store, kept beside it in `store.lineage`: the
//! store's id, its generation (raised by every durable change of what the store holds),
//! the next run id and audit sequence number, and how much it held. A store that went
//! missing, was swapped for another or was rolled back to an older copy is told apart
//! from a first start by it — PostgreSQL's refusal to start on a data directory it does
//! not trust, for cairnd's one file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AuditLink, UnixMs};

pub const LINEAGE_FILE: &str = "store.lineage";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    pub store_id: u64,
    pub generation: u64,
    pub next_run: u64,
    pub next_audit: u64,
    pub repositories: u64,
    pub jobs: u64,
    pub written: UnixMs,
    /// The newest link of the audit chain (see `audit/chain.rs`): records cut off the
    /// end of the trail show against it.
    #[serde(default)]
    pub audit_head: Option<AuditLink>,
}

impl Lineage {
    /// The lineage in `state_dir`, if it has one. An unreadable file is an error: it
    /// is what would tell a lost store from a first start.
    pub fn load(state_dir: &Path) -> Result<Option<Lineage>, String> {
        let path = state_dir.join(LINEAGE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} cannot be read ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Replaces the file whole (a crash leaves the old one or the new one).
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let path = state_dir.join(LINEAGE_FILE);
        let partial = state_dir.join(format!("{LINEAGE_FILE}.partial"));
        let mut file = cairn_engine::private_fs::create(&partial)?;
        file.write_all(&serde_json::to_vec(self).unwrap_or_default())?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)
    }

    /// "3 repositories, 5 jobs, runs up to 120 and audit entries up to 900".
    pub fn held(&self) -> String {
        format!(
            "{} repositories, {} jobs, runs up to {} and audit entries up to {}",
            self.repositories,
            self.jobs,
            self.next_run.saturating_sub(1),
            self.next_audit.saturating_sub(1)
        )
    }

    /// Whether the store it describes held anything worth refusing to lose.
    pub fn held_anything(&self) -> bool {
        self.repositories > 0 || self.jobs > 0 || self.next_run > 1 || self.next_audit > 1
    }
}

/// How a store found at start compares with the lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to say (first start, or the store is the one last written).
    Trusted,
    /// The store is older than the lineage: changes after its generation are lost.
    RolledBack { lineage: Lineage, found: u64 },
}

/// Why the daemon will not start on the store it found.
pub fn missing_store(path: &Path, lineage: &Lineage) -> String {
    format!(
        "the store {} is missing or empty, but {} says it held {} (generation {}, last written {}). Starting would begin an empty history: repositories, jobs, sealed passphrases, run history and audit trail would be gone. Put it back (`cairnd store restore` takes the last verified copy from {}), or start with --new-store to begin afresh",
        path.display(),
        lineage_path(path).display(),
        lineage.held(),
        lineage.generation,
        shown_time(lineage.written),
        copies_dir(path).display()
    )
}

pub fn other_store(path: &Path, lineage: &Lineage, found: u64) -> String {
    format!(
        "the store {} is not the one this state dir last used (its id is {found:016x}; {} names {:016x}, which held {}). Put the right one back, or start with --new-store to take this one",
        path.display(),
        lineage_path(path).display(),
        lineage.store_id,
        lineage.held()
    )
}

pub fn lineage_path(store: &Path) -> PathBuf {
    store.with_file_name(LINEAGE_FILE)
}

/// Where the daemon keeps its verified copies of the store.
pub fn copies_dir(store: &Path) -> PathBuf {
    store.with_file_name("store-copies")
}

pub fn shown_time(ms: UnixMs) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}
