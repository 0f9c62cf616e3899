//! Commands that work straight on a repository, with no daemon.

mod backup;
pub mod browse;
mod check;
mod forget;
mod keys;
mod prune;
mod repair;
mod restore;
mod snapshots;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use cairn_engine::backend::location::Location;
use cairn_engine::backend::open::{BackendOptions, open_backend};
use cairn_engine::{Backend, CancelToken, IndexedRepository, Repository, SnapshotId, Unlock};

use crate::cli::{Cli, Command, OutputFormat};
use crate::output::Outcome;
use crate::secrets;

/// What every offline command needs from the global flags.
#[derive(Debug)]
pub struct Ctx {
    pub location: Location,
    pub backend_options: BackendOptions,
    pub passphrase_file: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
    pub output: OutputFormat,
    pub cache_dir: PathBuf,
    pub progress: bool,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }

    pub fn backend(&self) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(open_backend(&self.location, &self.backend_options)?)
    }

    pub fn unlock(&self) -> anyhow::Result<Unlock> {
        if let Some(path) = &self.identity_file {
            return Ok(Unlock::IdentityFile(path.clone()));
        }
        Ok(Unlock::Passphrase(secrets::passphrase(
            self.passphrase_file.as_deref(),
        )?))
    }

    pub fn open(&self) -> anyhow::Result<Repository> {
        let unlock = self.unlock()?;
        Ok(Repository::open_with_cache(
            self.backend()?,
            &unlock,
            Some(&self.cache_dir),
        )?)
    }

    pub fn open_indexed(&self) -> anyhow::Result<IndexedRepository> {
        self.indexed(self.open()?)
    }

    /// `repo`, opened already, with its index (a second open would derive the key again).
    pub fn indexed(&self, repo: Repository) -> anyhow::Result<IndexedRepository> {
        repo.load_index(&self.cache_dir)
            .with_context(|| format!("loading the index cache under {}", self.cache_dir.display()))
    }

    /// A progress bar when on a terminal, not disabled and not printing JSON.
    pub fn bar(&self) -> Option<crate::progress_bar::Bar> {
        crate::progress_bar::Bar::new(self.progress && !self.json())
    }
}

fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("cairn");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache").join("cairn");
    }
    PathBuf::from("/var/cache/cairn")
}

pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let Some(repo) = cli.repo.clone() else {
        if matches!(cli.command, Command::Restore(_)) {
            bail!(
                "no repository given: `cairn -r PATH restore ...` restores straight from a repository; `cairn restore ... --repo NAME` asks cairnd"
            );
        }
        bail!("no repository given: use -r/--repo PATH before the command, or set CAIRN_REPO");
    };
    let ctx = Ctx {
        location: Location::parse(&repo)?,
        backend_options: BackendOptions::from_list(&cli.options)?,
        passphrase_file: cli.passphrase_file.clone(),
        identity_file: cli.identity_file.clone(),
        output: cli.output,
        cache_dir: cli.cache_dir.clone().unwrap_or_else(default_cache_dir),
        progress: !cli.no_progress,
    };
    match cli.command {
        Command::Init(args) => keys::init(&ctx, &args),
        Command::Backup(args) => backup::run(&ctx, &args),
        Command::Snapshots(args) => snapshots::list(&ctx, &args),
        Command::Ls(args) => browse::ls(&ctx, &args),
        Command::Dump(args) => browse::dump(&ctx, &args),
        Command::Restore(args) => restore::run(&ctx, &args),
        Command::Diff(args) => browse::diff(&ctx, &args),
        Command::Check(args) => check::run(&ctx, &args),
        Command::Stats => snapshots::stats(&ctx),
        Command::Forget(args) => forget::run(&ctx, &args),
        Command::Prune(args) => prune::run(&ctx, &args),
        Command::Repair(command) => repair::run(&ctx, &command),
        Command::Key(command) => keys::run(&ctx, command),
        Command::Status
        | Command::Repo(_)
        | Command::Job(_)
        | Command::Run(_)
        | Command::Logs(_)
        | Command::Audit(_)
        | Command::Snapshot(_)
        | Command::Apply(_)
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Console(_) => {
            unreachable!("daemon commands, the console and docs are dispatched in main")
        }
    }
}

/// Splits `SNAP[:PATH]`.
pub fn split_target(text: &str) -> (&str, Option<&Path>) {
    match text.split_once(':') {
        Some((snap, path)) => (snap, Some(Path::new(path))),
        None => (text, None),
    }
}

/// Resolves `latest` or an id prefix.
pub fn find_snapshot(repo: &Repository, query: &str) -> anyhow::Result<SnapshotId> {
    Ok(repo.find_snapshot(query)?.0)
}

/// A cancel token set by SIGINT and SIGTERM, so long commands stop cleanly.
pub fn cancel_on_signals() -> anyhow::Result<CancelToken> {
    let token = CancelToken::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, token.flag()).context("installing signal handlers")?;
    }
    Ok(token)
}
