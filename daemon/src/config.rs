//! `cairnd.toml`: the daemon's own settings (jobs and repositories live in the store and
//! are managed through the API).
//!
//! Every key is optional; a missing file means all defaults, so a user can start the
//! daemon with no config at all. Unknown keys and bad values are rejected with the file,
//! line and reason, at start and at reload (where the running config is kept).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonSection,
    pub access: AccessSection,
    pub logs: LogsSection,
    pub audit: AuditSection,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSection {
    /// Runs at once, over all jobs (each repository has one writer at a time anyway).
    pub max_concurrent_runs: u32,
    /// Where repositories keep their local index caches.
    pub cache_dir: Option<PathBuf>,
    /// Seconds a draining daemon waits for cancelled runs to stop.
    pub stop_timeout_seconds: u32,
    /// Client connections open at once (admins may open a few more, so they always
    /// get in).
    pub max_connections: u32,
    /// Client connections one uid below admin may have open at once.
    pub max_connections_per_uid: u32,
    /// Seconds a new connection has to start talking before it is closed.
    pub handshake_timeout_seconds: u32,
    /// Log follows and watches one uid below admin may have open at once.
    pub max_streams_per_uid: u32,
    /// Log follows and watches all callers below admin may have open at once.
    pub max_streams: u32,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            max_concurrent_runs: 2,
            cache_dir: None,
            stop_timeout_seconds: 60,
            max_connections: 256,
            max_connections_per_uid: 32,
            handshake_timeout_seconds: 10,
            max_streams_per_uid: 16,
            max_streams: 256,
        }
    }
}

/// Who may do what: a caller's role comes from its uid and groups (SO_PEERCRED).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    /// Group that owns the socket (mode 0660); empty: the daemon's own group.
    pub socket_group: String,
    pub admin_uids: Vec<u32>,
    pub admin_groups: Vec<String>,
    pub operator_groups: Vec<String>,
    pub viewer_groups: Vec<String>,
    /// Directories beneath which operators may restore (admins restore anywhere).
    /// Empty by default: a restore as root writes owners and modes from the snapshot,
    /// setuid files included, so opening this is the admin's deliberate choice.
    pub operator_restore_targets: Vec<PathBuf>,
}

impl Default for AccessSection {
    fn default() -> Self {
        AccessSection {
            socket_group: "cairn".into(),
            admin_uids: vec![0],
            admin_groups: vec!["cairn-admin".into()],
            operator_groups: vec!["cairn-operator".into()],
            viewer_groups: vec!["cairn".into()],
            operator_restore_targets: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsSection {
    /// Lowest level logged to journald/stderr and to clients ("trace" .. "error").
    pub level: String,
    /// "auto" (journald when started by systemd, or when the journal is there and
    /// stderr is no terminal; else stderr), "journald" or "stderr".
    pub output: String,
    /// Lines kept per run in the store (the newest; older ones are dropped).
    pub run_lines: u32,
    /// Runs' logs older than this are deleted (their run records stay).
    pub retention_days: u32,
}

impl Default for LogsSection {
    fn default() -> Self {
        LogsSection {
            level: "info".into(),
            output: "auto".into(),
            run_lines: 20_000,
            retention_days: 90,
        }
    }
}

/// How much the audit trail keeps, and what one caller may cost it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Records kept (the newest); older ones are dropped and counted.
    pub max_records: u64,
    /// Records older than this are dropped (and counted).
    pub max_age_days: u32,
    /// Refusals of one caller and RPC within this many seconds: one record and a count.
    pub denial_window_seconds: u32,
    /// Calls a second a caller below admin may make (in bursts of four times that);
    /// beyond it they get RESOURCE_EXHAUSTED. 0: no limit.
    pub calls_per_second: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            max_records: 100_000,
            max_age_days: 400,
            denial_window_seconds: 60,
            calls_per_second: 100,
        }
    }
}

/// A config that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{}: {reason}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        reason: String,
    },
}

impl Config {
    /// Reads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            line: e.span().map(|span| line_of(text, span.start)),
            reason: e.message().to_owned(),
        })?;
        config
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid {
                path: path.to_owned(),
                line: find_key_line(text, key),
                reason: format!("{key}: {reason}"),
            })?;
        Ok(config)
    }

    /// Checks values serde cannot: ranges and names. Returns the key and the reason.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=64).contains(&self.daemon.max_concurrent_runs) {
            return Err((
                "max_concurrent_runs",
                format!("{} is out of range 1..=64", self.daemon.max_concurrent_runs),
            ));
        }
        for (key, value) in [
            ("max_connections", self.daemon.max_connections),
            (
                "max_connections_per_uid",
                self.daemon.max_connections_per_uid,
            ),
            (
                "handshake_timeout_seconds",
                self.daemon.handshake_timeout_seconds,
            ),
            ("max_streams_per_uid", self.daemon.max_streams_per_uid),
            ("max_streams", self.daemon.max_streams),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if self.daemon.stop_timeout_seconds == 0 {
            return Err(("stop_timeout_seconds", "must be at least 1".into()));
        }
        if parse_level(&self.logs.level).is_none() {
            return Err((
                "level",
                format!(
                    "{:?} is not one of trace, debug, info, warn, error",
                    self.logs.level
                ),
            ));
        }
        if !["auto", "journald", "stderr"].contains(&self.logs.output.as_str()) {
            return Err((
                "output",
                format!(
                    "{:?} is not one of auto, journald, stderr",
                    self.logs.output
                ),
            ));
        }
        if let Some(relative) = self
            .access
            .operator_restore_targets
            .iter()
            .find(|p| !p.is_absolute())
        {
            return Err((
                "operator_restore_targets",
                format!("{} is not an absolute path", relative.display()),
            ));
        }
        if self.audit.max_records < 10 {
            return Err(("max_records", "must be at least 10".into()));
        }
        if self.audit.max_age_days == 0 {
            return Err(("max_age_days", "must be at least 1".into()));
        }
        if !(1..=3600).contains(&self.audit.denial_window_seconds) {
            return Err((
                "denial_window_seconds",
                format!(
                    "{} is out of range 1..=3600",
                    self.audit.denial_window_seconds
                ),
            ));
        }
        if self.logs.run_lines == 0 {
            return Err(("run_lines", "must be at least 1".into()));
        }
        if self.logs.retention_days == 0 {
            return Err(("retention_days", "must be at least 1".into()));
        }
        Ok(())
    }

    pub fn log_level(&self) -> tracing::Level {
        parse_level(&self.logs.level).unwrap_or(tracing::Level::INFO)
    }
}

fn parse_level(name: &str) -> Option<tracing::Level> {
    match name.to_ascii_lowercase().as_str() {
        "trace" => Some(tracing::Level::TRACE),
        "debug" => Some(tracing::Level::DEBUG),
        "info" => Some(tracing::Level::INFO),
        "warn" => Some(tracing::Level::WARN),
        "error" => Some(tracing::Level::ERROR),
        _ => None,
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set, for values that parsed but are out of range.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/cairn/cairnd.toml"), text)
    }

    #[test]
    fn an_empty_or_missing_file_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&dir.path().join("absent.toml")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn every_section_is_read() {
        let config = parse(
            "[daemon]\nmax_concurrent_runs = 4\n\n[access]\nadmin_groups = [\"wheel\"]\n\n[logs]\nlevel = \"debug\"\n",
        )
        .unwrap();
        assert_eq!(config.daemon.max_concurrent_runs, 4);
        assert_eq!(config.access.admin_groups, vec!["wheel".to_owned()]);
        assert_eq!(config.log_level(), tracing::Level::DEBUG);
    }

    #[test]
    fn the_shipped_config_is_valid_and_spells_out_the_defaults() {
        let shipped = include_str!("../../packaging/cairnd.toml");
        let config = parse(shipped).unwrap();
        assert_eq!(config.daemon, DaemonSection::default());
        assert_eq!(config.access, AccessSection::default());
        assert_eq!(config.logs, LogsSection::default());
        assert_eq!(config.audit, AuditSection::default());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let error = parse("[daemon]\nmax_concurrent_runs = 2\nmax_runs = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("/etc/cairn/cairnd.toml, line 3"), "{error}");
        assert!(error.contains("max_runs"), "{error}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_with_its_line() {
        let error = parse("[logs]\n\nrun_lines = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_key_and_line() {
        let error = parse("[daemon]\nmax_concurrent_runs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(
            error.contains("max_concurrent_runs: 0 is out of range"),
            "{error}"
        );
        let error = parse("[logs]\nlevel = \"loud\"\n").unwrap_err().to_string();
        assert!(error.contains("\"loud\" is not one of"), "{error}");
        let error = parse("[audit]\nmax_records = 1\n").unwrap_err().to_string();
        assert!(
            error.contains("max_records: must be at least 10"),
            "{error}"
        );
    }
}
