//! cairnd: reads top to bottom like its boot: arguments, paths, config, logging,
//! directories, store, identity, runner, socket, serve, drain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cairn_daemon::config::Config;
use cairn_daemon::logs::{Limits, LogHub, StoreWriter};
use cairn_daemon::paths::{Env, Paths};
use cairn_daemon::secrets::Sealer;
use cairn_daemon::state::{DaemonState, Setup};
use cairn_daemon::store::Store;
use cairn_daemon::store::lineage::Verdict;
use cairn_daemon::{scheduler, server, socket, systemd};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Freed memory is wiped, so secrets do not outlive their buffers (see wiping_alloc.rs).
#[global_allocator]
static ALLOCATOR: cairn_daemon::wiping_alloc::WipingAllocator =
    cairn_daemon::wiping_alloc::WipingAllocator;

/// Cairn's daemon: owns schedules, history and every backup, check and restore.
#[derive(Debug, Parser)]
#[command(name = "cairnd", version)]
struct Args {
    /// Config file (default: /etc/cairn/cairnd.toml as root, else $XDG_CONFIG_HOME/cairn).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Socket to serve on (default: /run/cairn/cairnd.sock, or under $XDG_RUNTIME_DIR).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Where the store and the identity live (default: /var/lib/cairn or $XDG_STATE_HOME).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Index caches of the repositories (default: /var/cache/cairn or $XDG_CACHE_HOME;
    /// `[daemon] cache_dir` in the config wins).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Start on a new, empty store although the state dir says the old one held
    /// repositories, jobs or history (it was lost and will not come back).
    #[arg(long)]
    new_store: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the paths this daemon would use, and exit.
    Paths,
    /// Put the daemon's identity where systemd loads it as a credential (the state
    /// dir's identity when there is one, else a new one); leaves an existing file.
    InitIdentity {
        /// e.g. /etc/credstore/cairnd.identity (LoadCredential=identity:... in the unit).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// The store: verified copies, restoring one, checking it.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The audit trail's tamper evidence.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check every link of the audit trail's hash chain (also while cairnd runs) and
    /// print its head; exit 1 when a record was changed, removed or reordered.
    Verify {
        /// A copy of the store to verify instead (its end is not compared with the
        /// lineage: a copy is older than the store).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum StoreCommand {
    /// Read every record of the store (or of a copy); exit 1 when some are damaged.
    Check {
        /// A copy to check instead of the store.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Make a verified copy of the store (also while cairnd runs).
    Backup {
        /// Where (default: a new file in store-copies/ beside the store).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Put a verified copy in place of the store (cairnd must be stopped); the store
    /// it replaces is kept beside it. Run and audit numbers continue after the newest
    /// ever used.
    Restore {
        /// The copy (default: the newest in store-copies/).
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Started by ssh to give an SFTP key's passphrase: answer that and nothing else.
    if let Some(code) = cairn_engine::backend::sftp::askpass_helper() {
        return ExitCode::from(code);
    }
    cairn_engine::alloc::bound_large_buffer_retention();
    let args = Args::parse();
    let env = Env::current();
    let mut paths = match Paths::resolve(&env) {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("cairnd: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(config) = args.config {
        paths.config_file = config;
    }
    if let Some(socket) = args.socket {
        paths.socket = socket;
    }
    if let Some(state) = args.state_dir {
        paths.state_dir = state;
    }
    if let Some(cache) = args.cache_dir {
        paths.cache_dir = cache;
    }
    if let Some(Command::InitIdentity { out }) = &args.command {
        return match Sealer::provision(out, &paths.state_dir) {
            Ok(said) => {
                println!("{said}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cairnd: {e}");
                ExitCode::from(2)
            }
        };
    }
    let admin = match &args.command {
        Some(Command::Store(command)) => Some(command_of(command)),
        Some(Command::Audit(AuditCommand::Verify { file })) => Some(
            cairn_daemon::store_admin::Command::AuditVerify(file.clone()),
        ),
        _ => None,
    };
    if let Some(command) = admin {
        let store = paths.state_dir.join("cairnd.redb");
        return match cairn_daemon::store_admin::run(&store, command) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("cairnd: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Paths) = args.command {
        println!("config {}", paths.config_file.display());
        println!("state  {}", paths.state_dir.display());
        println!("cache  {}", paths.cache_dir.display());
        println!("socket {}", paths.socket.display());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(&paths.config_file) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("cairnd: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = cairn_daemon::logging::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cairnd-io")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cairnd: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(paths, config, env.uid, logs, args.new_store)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("cairnd: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The newest link of the audit chain, into the journal: an anchor outside the state
/// dir that `cairnd audit verify` can be held against.
fn log_audit_head(store: &Store) {
    use cairn_daemon::store::{AUDIT, AuditRecord};
    let newest = store.read("reading the audit head", |rx| {
        rx.list_numbered_desc::<AuditRecord>(AUDIT, None, 1, |_| true)
    });
    if let Ok(Some((seq, record))) = newest.map(|found| found.into_iter().next()) {
        tracing::info!(seq, hash = %record.hash, "audit trail head (`cairnd audit verify` checks the chain up to it)");
    }
}

fn command_of(command: &StoreCommand) -> cairn_daemon::store_admin::Command {
    use cairn_daemon::store_admin::Command as C;
    match command {
        StoreCommand::Check { file } => C::Check(file.clone()),
        StoreCommand::Backup { out } => C::Backup(out.clone()),
        StoreCommand::Restore { from } => C::Restore(from.clone()),
    }
}

async fn run(
    paths: Paths,
    config: Config,
    own_uid: u32,
    logs: Arc<LogHub>,
    new_store: bool,
) -> anyhow::Result<()> {
    socket::create_private_dir(&paths.state_dir, 0o700)
        .with_context(|| format!("creating the state dir {}", paths.state_dir.display()))?;
    cairn_engine::private_fs::create_dir_all(&paths.cache_dir)
        .with_context(|| format!("creating the cache dir {}", paths.cache_dir.display()))?;
    let (store, verdict) = Store::open_checked(&paths.state_dir.join("cairnd.redb"), new_store)?;
    if let Verdict::RolledBack { lineage, found } = verdict {
        tracing::error!(
            store = %store.path().display(),
            generation = found,
            expected = lineage.generation,
            "the store was rolled back: it is at generation {found}, but it was at {} ({}), when it held {}; changes made since are lost. Run and audit numbers continue after the lost ones",
            lineage.generation,
            cairn_daemon::store::lineage::shown_time(lineage.written),
            lineage.held()
        );
    }
    log_audit_head(&store);
    let store = Arc::new(store);
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let sealer = Arc::new(Sealer::load_or_create(
        &paths.state_dir,
        credentials.as_deref(),
    )?);
    // A damaged store is served read-only: nothing is recorded (run logs stay in the
    // journal), and runs cannot be queued.
    let read_only = store.degraded();
    if let Some(degraded) = &read_only {
        tracing::error!(store = %store.path().display(), "{}", degraded.describe());
    }
    let log_writer = match read_only {
        Some(_) => None,
        None => Some(StoreWriter::start(
            store.clone(),
            logs.clone(),
            Limits {
                run_lines: u64::from(config.logs.run_lines),
                retention_days: config.logs.retention_days,
            },
        )?),
    };
    let stop_timeout = Duration::from_secs(u64::from(config.daemon.stop_timeout_seconds));
    let socket_group = config.access.socket_group.clone();
    let state = Arc::new(DaemonState::new(
        Setup {
            config_path: paths.config_file.clone(),
            state_dir: paths.state_dir.clone(),
            cache_dir: paths.cache_dir.clone(),
            socket_path: paths.socket.clone(),
            own_uid,
        },
        config,
        store,
        sealer,
        logs,
    ));
    if read_only.is_none() {
        state.runner.mark_interrupted()?;
    }
    // Started by cairnd.socket: systemd owns the socket file; else bind our own.
    let (listener, activated) = match socket::activated()? {
        Some(listener) => (listener, true),
        None => (socket::bind(&paths.socket, &socket_group)?, false),
    };
    let mut paths = paths;
    if let Some(path) = activated
        .then(|| listener.local_addr().ok()?.as_pathname().map(PathBuf::from))
        .flatten()
    {
        paths.socket = path;
    }
    tracing::info!(socket = %paths.socket.display(), activated, state = %paths.state_dir.display(), version = env!("CARGO_PKG_VERSION"), "cairnd serving");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let serving = tokio::spawn(server::serve(
        listener,
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let scheduling = tokio::spawn(scheduler::run(
        state.clone(),
        state.jobs_changed.clone(),
        stopped(stop_rx.clone()),
    ));
    // systemd hears from the daemon (status, watchdog) until the runs are drained.
    let (drained_tx, drained_rx) = tokio::sync::watch::channel(false);
    let supervising = tokio::spawn(systemd::supervise(state.clone(), stopped(drained_rx)));
    let auditing = tokio::spawn(cairn_daemon::audit::flush_periodically(
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let copying = tokio::spawn(cairn_daemon::store_admin::copy_periodically(
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let recovering = tokio::spawn(cairn_daemon::store_watch::recover_periodically(
        state.clone(),
        stopped(stop_rx.clone()),
    ));
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                let state = state.clone();
                match tokio::task::spawn_blocking(move || state.reload()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "reload failed; the running configuration is kept"),
                    Err(e) => tracing::error!(error = %e, "reload failed"),
                }
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        }
    }
    tracing::info!("stopping: no new connections, cancelling runs");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    state.stopping.send_replace(true);
    let _ = scheduling.await;
    let _ = auditing.await;
    let _ = recovering.await;
    let _ = copying.await;
    let draining = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.runner.drain(stop_timeout))
    };
    let left = draining.await.unwrap_or(0);
    let unrecorded = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.runner.record_unrecorded())
            .await
            .unwrap_or(0)
    };
    if unrecorded > 0 {
        tracing::error!(
            runs = unrecorded,
            "the ends of runs could not be recorded (the state store takes no writes); the next start checks their repositories for their snapshots"
        );
    }
    let _ = drained_tx.send(true);
    let _ = supervising.await;
    if left > 0 {
        tracing::warn!(
            runs = left,
            "runs still going at the stop timeout; they are marked interrupted at the next start"
        );
    }
    // Streams (watchers, log followers) do not end by themselves: give calls a moment.
    let _ = tokio::time::timeout(Duration::from_secs(2), serving).await;
    if !activated {
        let _ = std::fs::remove_file(&paths.socket);
    }
    tracing::info!("cairnd stopped");
    if let Some(log_writer) = log_writer {
        tokio::task::spawn_blocking(move || log_writer.finish()).await?;
    }
    Ok(())
}
