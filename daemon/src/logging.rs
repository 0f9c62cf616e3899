//! Sets up the daemon's log: the output (journald or stderr, at the config's level or
//! CAIRN_LOG) and the hub that live clients and the run log store read from.

use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Config;
use crate::logs::{HubLayer, LogHub};

/// Where systemd-journald takes native protocol messages.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Where the output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Journald,
    Stderr,
}

/// The output for `setting` ("auto", "journald", "stderr"; CAIRN_LOG_OUTPUT wins).
/// Auto picks journald when systemd connected stderr to the journal (JOURNAL_STREAM),
/// or when the journal is there and nobody watches stderr at a terminal.
pub fn choose_output(setting: &str) -> Output {
    let setting = std::env::var("CAIRN_LOG_OUTPUT").unwrap_or_else(|_| setting.to_owned());
    match setting.as_str() {
        "journald" => Output::Journald,
        "stderr" => Output::Stderr,
        _ => {
            let started_by_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
            let journal_there = std::path::Path::new(JOURNAL_SOCKET).exists();
            let at_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            if started_by_systemd || (journal_there && !at_terminal) {
                Output::Journald
            } else {
                Output::Stderr
            }
        }
    }
}

/// Installs the global subscriber; returns the hub every line also goes to.
pub fn init(config: &Config) -> Arc<LogHub> {
    let hub = LogHub::new();
    let filter = || {
        EnvFilter::try_from_env("CAIRN_LOG")
            .unwrap_or_else(|_| EnvFilter::new(config.log_level().as_str().to_ascii_lowercase()))
    };
    let registry = tracing_subscriber::registry()
        .with(filter())
        .with(HubLayer::new(hub.clone()));
    let mut output = choose_output(&config.logs.output);
    if output == Output::Journald {
        match tracing_journald::layer() {
            Ok(journald) => {
                // Fields go in as they are named (CAIRN_JOB, CAIRN_RUN, PATH, ...).
                let journald = journald
                    .with_field_prefix(None)
                    .with_syslog_identifier("cairnd".into());
                let _ = registry.with(journald).try_init();
                return hub;
            }
            Err(e) => {
                eprintln!("cairnd: journald is not reachable ({e}); logging to stderr");
                output = Output::Stderr;
            }
        }
    }
    debug_assert_eq!(output, Output::Stderr);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = registry.with(stderr).try_init();
    hub
}
