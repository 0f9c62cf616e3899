//! The delay from the daemon publishing a run's progress to a watcher receiving it.
//! Progress is published at most every 250 ms by design (the engine never waits for
//! watchers); this measures what comes on top: the trip to the client.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_proto::v1 as pb;
use cairn_proto::v1::jobs_client::JobsClient;
use cairn_proto::v1::runs_client::RunsClient;

use crate::percentiles;

pub async fn run(socket: &Path, job: &str) -> anyhow::Result<()> {
    let channel = cairn_proto::connect(socket).await?;
    let run_id = JobsClient::new(channel.clone())
        .run_job(pb::RunJobRequest { name: job.into() })
        .await?
        .into_inner()
        .run_id;
    let mut stream = RunsClient::new(channel)
        .watch_run(pb::WatchRunRequest { id: run_id })
        .await?
        .into_inner();
    let mut delays = Vec::new();
    let mut gaps = Vec::new();
    let mut previous: Option<Duration> = None;
    let mut state = 0;
    while let Some(run) = stream.message().await? {
        state = run.state;
        let Some(updated) = run.progress.and_then(|p| p.updated) else {
            continue;
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let published = Duration::new(
            u64::try_from(updated.seconds)?,
            u32::try_from(updated.nanos)?,
        );
        delays.push(now.saturating_sub(published));
        if let Some(before) = previous
            && published > before
        {
            gaps.push(published - before);
        }
        previous = Some(published);
    }
    println!(
        "watch: run {run_id} ended {}; publish -> watcher: {}",
        pb::RunState::try_from(state).map_or("unknown", |s| s.as_str_name()),
        percentiles::summary(&mut delays)
    );
    println!(
        "watch: time between progress updates: {}",
        percentiles::summary(&mut gaps)
    );
    Ok(())
}
