//! `cairn run list|show|watch|cancel`, and waiting for a run (`job run --wait`).

use cairn_proto::v1 as pb;
use cairn_proto::v1::runs_client::RunsClient;

use super::{Remote, api_error, json};
use crate::cli::RunCommand;
use crate::output::{self, Outcome};

/// How a finished run maps to the exit code: 0 succeeded, 1 with warnings, else 2.
fn outcome(run: &pb::Run) -> anyhow::Result<Outcome> {
    match pb::RunState::try_from(run.state) {
        Ok(pb::RunState::Succeeded) => Ok(Outcome::Ok),
        Ok(pb::RunState::SucceededWithWarnings) => Ok(Outcome::Warnings),
        _ => Err(anyhow::anyhow!(
            "run {} {}{}",
            run.id,
            crate::api::names::state(run.state),
            if run.error.is_empty() {
                String::new()
            } else {
                format!(": {}", run.error)
            }
        )),
    }
}

fn print_run(remote: &Remote, run: &pb::Run) -> anyhow::Result<()> {
    if remote.json() {
        return output::json(&json::run(run));
    }
    crate::outln!(
        "run {} of {} ({}, {}): {}",
        run.id,
        if run.job.is_empty() { "-" } else { &run.job },
        crate::api::names::kind(run.kind),
        crate::api::names::trigger(run.trigger),
        crate::api::names::state(run.state)
    )?;
    if !run.error.is_empty() {
        crate::outln!("error: {}", run.error)?;
    }
    if let Some(of) = &run.restore {
        crate::outln!("restore of {}", crate::api::names::restore_of(of))?;
        if let Some(s) = &run.summary {
            crate::outln!(
                "restored {} files ({}), {} dirs in {:.1} s",
                s.files_restored,
                output::bytes(s.bytes_restored),
                s.dirs,
                s.duration_ms as f64 / 1000.0
            )?;
        }
    } else if let (Some(s), pb::RunKind::Prune) = (&run.summary, run.kind()) {
        crate::outln!("{}", crate::api::names::prune_summary(s))?;
    } else if let Some(s) = &run.summary {
        crate::outln!(
            "files: {} new, {} changed, {} unchanged; read {}, added {} in {:.1} s",
            s.files_new,
            s.files_changed,
            s.files_unchanged,
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added),
            s.duration_ms as f64 / 1000.0
        )?;
        if !s.snapshot_id.is_empty() {
            crate::outln!("snapshot {}", s.snapshot_id)?;
        }
        // The new snapshot is always kept: a policy that ran kept at least one.
        if s.snapshots_kept > 0 {
            crate::outln!(
                "retention: kept {}, forgot {} of the job's snapshots",
                s.snapshots_kept,
                s.snapshots_forgotten
            )?;
        }
    }
    if let Some(p) = &run.progress {
        crate::outln!(
            "{}: {}/{} files, {}/{}",
            p.phase,
            p.files_done,
            p.files_total,
            output::bytes(p.bytes_done),
            output::bytes(p.bytes_total)
        )?;
    }
    if run.storage_retries > 0 || !run.storage_last_error.is_empty() {
        crate::outln!(
            "storage: {} requests retried{}",
            run.storage_retries,
            if run.storage_last_error.is_empty() {
                String::new()
            } else {
                format!("; last error: {}", run.storage_last_error)
            }
        )?;
    }
    for w in &run.warnings {
        crate::outln!("warning: {w}")?;
    }
    Ok(())
}

/// Follows a run to its end; prints the final state; exit code per [`outcome`].
pub async fn wait_and_report(remote: &Remote, id: u64) -> anyhow::Result<Outcome> {
    let mut stream = RunsClient::new(remote.channel.clone())
        .watch_run(pb::WatchRunRequest { id })
        .await
        .map_err(api_error)?
        .into_inner();
    let mut last = None;
    let mut phase = String::new();
    while let Some(run) = stream.message().await.map_err(api_error)? {
        if !remote.json()
            && let Some(p) = &run.progress
            && p.phase != phase
            && !p.phase.is_empty()
        {
            crate::errln!("run {id}: {}", p.phase);
            phase.clone_from(&p.phase);
        }
        last = Some(run);
    }
    let run = last
        .ok_or_else(|| anyhow::anyhow!("the daemon ended the watch of run {id} without a state"))?;
    print_run(remote, &run)?;
    match outcome(&run) {
        // The run printed as JSON holds its state and error: one document only.
        Err(_) if remote.json() => Ok(Outcome::Failed),
        other => other,
    }
}

pub async fn run(remote: &Remote, command: RunCommand) -> anyhow::Result<Outcome> {
    let mut client = RunsClient::new(remote.channel.clone());
    match command {
        RunCommand::List { job, limit } => {
            let runs = client
                .list_runs(pb::ListRunsRequest {
                    job: job.unwrap_or_default(),
                    page_size: limit,
                    page_token: String::new(),
                })
                .await
                .map_err(api_error)?
                .into_inner()
                .runs;
            if remote.json() {
                output::json(&runs.iter().map(json::run).collect::<Vec<_>>())?;
            } else if runs.is_empty() {
                crate::outln!("no runs yet")?;
            } else {
                crate::outln!(
                    "{:<6} {:<20} {:<8} {:<24} {:<22} ERROR",
                    "ID",
                    "JOB",
                    "TRIGGER",
                    "STATE",
                    "STARTED"
                )?;
                for r in &runs {
                    crate::outln!(
                        "{:<6} {:<20} {:<8} {:<24} {:<22} {}",
                        r.id,
                        r.job,
                        crate::api::names::trigger(r.trigger),
                        crate::api::names::state(r.state),
                        crate::api::names::time(r.started.as_ref()).unwrap_or_else(|| "-".into()),
                        r.error.lines().next().unwrap_or("")
                    )?;
                }
            }
            Ok(Outcome::Ok)
        }
        RunCommand::Show { id } => {
            let run = client
                .get_run(pb::GetRunRequest { id })
                .await
                .map_err(api_error)?
                .into_inner();
            print_run(remote, &run)?;
            Ok(Outcome::Ok)
        }
        RunCommand::Watch { id } => wait_and_report(remote, id).await,
        RunCommand::Cancel { id } => {
            let run = client
                .cancel_run(pb::CancelRunRequest { id })
                .await
                .map_err(api_error)?
                .into_inner();
            print_run(remote, &run)?;
            Ok(Outcome::Ok)
        }
    }
}
