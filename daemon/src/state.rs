//! What every part of the running daemon shares.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::auth::RoleMap;
use crate::changes::Changes;
use crate::config::{Config, ConfigError};
use crate::jobs::Jobs;
use crate::logs::LogHub;
use crate::repos::Repos;
use crate::runner::Runner;
use crate::secrets::Sealer;
use crate::store::{Store, UnixMs, now_ms};

#[derive(Debug)]
pub struct DaemonState {
    pub store: Arc<Store>,
    pub sealer: Arc<Sealer>,
    pub runner: Runner,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub socket_path: PathBuf,
    pub started: UnixMs,
    /// The daemon's own uid (admin of itself).
    pub own_uid: u32,
    /// Wakes the scheduler when jobs change.
    pub jobs_changed: Arc<tokio::sync::Notify>,
    /// Runs, jobs and repositories as they change, for live clients.
    pub changes: Changes,
    /// Every log line, for live clients.
    pub logs: Arc<LogHub>,
    /// Becomes true when the daemon stops: endless streams (log followers) end.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Repositories opened for the API (snapshots, browsing, restores, stats).
    pub unlocked: crate::unlocked::Unlocked,
    /// Refusals being coalesced and each caller's rate.
    pub audit: crate::audit::AuditTrail,
    /// Endless calls open per uid.
    pub streams: crate::streams::StreamQuota,
    live: RwLock<Live>,
}

/// What a reload replaces.
#[derive(Debug, Clone)]
struct Live {
    config: Config,
    roles: RoleMap,
}

/// Paths and identity the daemon runs with.
#[derive(Debug, Clone)]
pub struct Setup {
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub socket_path: PathBuf,
    pub own_uid: u32,
}

impl DaemonState {
    pub fn new(
        setup: Setup,
        config: Config,
        store: Arc<Store>,
        sealer: Arc<Sealer>,
        logs: Arc<LogHub>,
    ) -> Self {
        let cache_dir = config
            .daemon
            .cache_dir
            .clone()
            .unwrap_or_else(|| setup.cache_dir.clone());
        let changes = Changes::default();
        let runner = Runner::new(
            store.clone(),
            sealer.clone(),
            cache_dir.clone(),
            config.daemon.max_concurrent_runs as usize,
            changes.clone(),
        );
        let roles = RoleMap::new(&config.access, setup.own_uid, cairn_engine::host::group_id);
        DaemonState {
            store,
            sealer,
            runner,
            config_path: setup.config_path,
            state_dir: setup.state_dir,
            cache_dir,
            socket_path: setup.socket_path,
            started: now_ms(),
            own_uid: setup.own_uid,
            jobs_changed: Arc::new(tokio::sync::Notify::new()),
            changes,
            logs,
            stopping: tokio::sync::watch::Sender::new(false),
            unlocked: crate::unlocked::Unlocked::default(),
            audit: crate::audit::AuditTrail::default(),
            streams: crate::streams::StreamQuota::default(),
            live: RwLock::new(Live { config, roles }),
        }
    }

    pub fn config(&self) -> Config {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    /// The `[audit]` section alone: read on every call, so not the whole config.
    pub fn audit_config(&self) -> crate::config::AuditSection {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .audit
    }

    pub fn roles(&self) -> RoleMap {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .roles
            .clone()
    }

    /// The rules for jobs, over this daemon's store and runs.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs {
            store: &self.store,
            runs: &self.runner,
            changes: &self.changes,
            scheduler: &self.jobs_changed,
        }
    }

    /// The rules for repositories, over this daemon's store, secrets and runs.
    pub fn repos(&self) -> Repos<'_> {
        Repos {
            store: &self.store,
            sealer: &self.sealer,
            unlocked: &self.unlocked,
            cache_dir: &self.cache_dir,
            runs: &self.runner,
            changes: &self.changes,
        }
    }

    /// Re-reads the config file. An invalid file changes nothing and says why; so does
    /// a file that went missing or empty (at start that means "all defaults", but a
    /// running daemon reset to defaults by a truncated or deleted file would be a
    /// silent surprise; restart it to run on the defaults).
    pub fn reload(&self) -> Result<(), ConfigError> {
        let gone = match std::fs::read_to_string(&self.config_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("is missing"),
            Ok(text) if text.trim().is_empty() => Some("is empty"),
            _ => None,
        };
        if let Some(gone) = gone
            && self.config() != Config::default()
        {
            return Err(ConfigError::Invalid {
                path: self.config_path.clone(),
                line: None,
                reason: format!(
                    "the file {gone}: reloading it would reset every setting to its default; put the configuration back (or restart cairnd to run on the defaults)"
                ),
            });
        }
        let config = Config::load(&self.config_path)?;
        let roles = RoleMap::new(&config.access, self.own_uid, cairn_engine::host::group_id);
        self.runner
            .set_max_concurrent(config.daemon.max_concurrent_runs as usize);
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Live { config, roles };
        tracing::info!(path = %self.config_path.display(), "configuration reloaded");
        Ok(())
    }
}
