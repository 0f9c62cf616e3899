//! Commands that talk to cairnd over its socket. Each prints text for people or one
//! JSON document for scripts, and exits 0/1/2 like the offline commands.

mod apply;
mod audit;
mod jobs;
pub(crate) mod json;
mod keep;
mod logs;
mod repos;
mod retention_plan;
mod runs;
pub(crate) mod snapshots;

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use cairn_proto::v1 as pb;
use tonic::transport::Channel;

use crate::cli::{Cli, Command, OutputFormat};
use crate::output::{self, Outcome};

/// A connection to the daemon and how to print.
#[derive(Debug, Clone)]
pub struct Remote {
    pub channel: Channel,
    pub output: OutputFormat,
    pub passphrase_file: Option<PathBuf>,
    /// `--option KEY=VALUE` (backend settings for `repo add`).
    pub options: Vec<String>,
}

impl Remote {
    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

/// An API error as one line (see [`crate::api::status::one_line`]).
pub fn api_error(status: tonic::Status) -> anyhow::Error {
    anyhow!("{}", crate::api::status::one_line(&status))
}

pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Command::Restore(args) = &cli.command
        && let Some(path) = &cli.repo
        && std::env::var("CAIRN_REPO")
            .ok()
            .is_none_or(|env| *path != env)
    {
        anyhow::bail!(
            "restore: give either -r {} (the repository directly) or --repo {} (through the daemon), not both",
            path,
            args.repo_name.as_deref().unwrap_or_default()
        );
    }
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(crate::api::socket::default_socket);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let channel = crate::api::socket::connect(&socket).await?;
        let remote = Remote {
            channel,
            output: cli.output,
            passphrase_file: cli.passphrase_file.clone(),
            options: cli.options.clone(),
        };
        match cli.command {
            Command::Status => status(&remote).await,
            Command::Repo(command) => repos::run(&remote, command).await,
            Command::Job(command) => jobs::run(&remote, command).await,
            Command::Run(command) => runs::run(&remote, command).await,
            Command::Logs(args) => logs::run(&remote, &args).await,
            Command::Audit(args) => audit::run(&remote, &args).await,
            Command::Apply(args) => apply::run(&remote, &args).await,
            Command::Snapshot(command) => snapshots::run(&remote, command).await,
            Command::Restore(args) => snapshots::restore(&remote, &args).await,
            _ => unreachable!("offline commands are dispatched in main"),
        }
    })
}

async fn status(remote: &Remote) -> anyhow::Result<Outcome> {
    let s = pb::daemon_client::DaemonClient::new(remote.channel.clone())
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(api_error)?
        .into_inner();
    let role = crate::api::names::role(s.caller_role);
    if remote.json() {
        output::json(&serde_json::json!({
            "version": s.version,
            "pid": s.pid,
            "started": crate::api::names::time(s.started.as_ref()),
            "runs_running": s.runs_running,
            "runs_queued": s.runs_queued,
            "jobs": s.jobs,
            "repositories": s.repositories,
            "next_job": (!s.next_job.is_empty()).then_some(&s.next_job),
            "next_run": crate::api::names::time(s.next_run.as_ref()),
            "role": role,
            "uid": s.caller_uid,
            "socket": s.socket_path,
            "config": s.config_path,
            "state_dir": s.state_dir,
            "audit_dropped": s.audit_dropped,
            "store_degraded": (!s.store_degraded.is_empty()).then_some(&s.store_degraded),
            "store_degraded_since": crate::api::names::time(s.store_degraded_since.as_ref()),
            "runs_unrecorded": s.runs_unrecorded,
            "damaged_records": s.damaged_records,
        }))?;
    } else {
        crate::outln!(
            "cairnd {} (pid {}), up since {}",
            s.version,
            s.pid,
            crate::api::names::time(s.started.as_ref()).unwrap_or_default()
        )?;
        crate::outln!(
            "{} running, {} queued; {} jobs, {} repositories",
            s.runs_running,
            s.runs_queued,
            s.jobs,
            s.repositories
        )?;
        match crate::api::names::time(s.next_run.as_ref()) {
            Some(at) => crate::outln!("next: {} at {at}", s.next_job)?,
            None => crate::outln!("next: nothing scheduled")?,
        }
        crate::outln!("you: uid {} ({role})", s.caller_uid)?;
        if !s.store_degraded.is_empty() {
            crate::outln!(
                "DEGRADED since {}: {}",
                crate::api::names::time(s.store_degraded_since.as_ref()).unwrap_or_default(),
                s.store_degraded
            )?;
        }
        for damaged in &s.damaged_records {
            crate::outln!("DAMAGED record (left out, not run): {damaged}")?;
        }
        if s.runs_unrecorded > 0 {
            crate::outln!(
                "{} ended runs wait to be recorded in the store",
                s.runs_unrecorded
            )?;
        }
    }
    // A degraded daemon is exit 1, so a monitoring script sees it.
    Ok(
        if s.store_degraded.is_empty() && s.damaged_records.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Warnings
        },
    )
}
