//! Log followers under load: N clients follow the daemon-wide log while a job's hook
//! makes the daemon log at a fixed rate. Reports, per follower, the hook's lines it
//! received and the lines the daemon told it it missed, and the daemon's RSS before,
//! while the hook logs, and after the run (whose own work, a check, comes on top).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_proto::v1 as pb;
use cairn_proto::v1::jobs_client::JobsClient;
use cairn_proto::v1::logs_client::LogsClient;

use crate::rss;

#[derive(Debug, Default)]
struct Received {
    emitted: HashSet<u64>,
    missed: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

async fn follow(
    channel: tonic::transport::Channel,
    run_id: tokio::sync::watch::Receiver<u64>,
    lines: u64,
    all_received: Arc<AtomicUsize>,
) -> anyhow::Result<Received> {
    let mut stream = LogsClient::new(channel)
        .stream_logs(pb::StreamLogsRequest {
            min_level: pb::Level::Info as i32,
            follow: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut got = Received::default();
    while let Some(line) = stream.message().await? {
        got.missed += line.missed;
        if let Some(n) = line.message.strip_prefix("emit ")
            && let Ok(n) = n.parse()
        {
            got.emitted.insert(n);
            got.first.get_or_insert_with(Instant::now);
            got.last = Some(Instant::now());
            if got.emitted.len() as u64 == lines {
                all_received.fetch_add(1, Ordering::Relaxed);
            }
        }
        if line.message == "run ended" && line.run_id == *run_id.borrow() {
            break;
        }
    }
    Ok(got)
}

pub async fn run(
    socket: &Path,
    job: &str,
    daemon_pid: u32,
    followers: usize,
    lines: u64,
) -> anyhow::Result<()> {
    let (run_tx, run_rx) = tokio::sync::watch::channel(0u64);
    let all_received = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..followers {
        // A connection each, as separate clients would have.
        let channel = cairn_proto::connect(socket).await?;
        tasks.push(tokio::spawn(follow(
            channel,
            run_rx.clone(),
            lines,
            all_received.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss::of(daemon_pid).map_or(0, |r| r.0);
    let channel = cairn_proto::connect(socket).await?;
    let run_id = JobsClient::new(channel)
        .run_job(pb::RunJobRequest { name: job.into() })
        .await?
        .into_inner()
        .run_id;
    run_tx.send_replace(run_id);
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut peak_after_hook = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        if let Some((rss, _)) = rss::of(daemon_pid) {
            if all_received.load(Ordering::Relaxed) < followers {
                samples.push((started.elapsed().as_secs_f64(), rss));
            } else {
                peak_after_hook = peak_after_hook.max(rss);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = rss::of(daemon_pid).map_or(0, |r| r.0);
    let mut complete = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let got = task.await??;
        let rate = match (got.first, got.last) {
            (Some(a), Some(b)) if b > a => got.emitted.len() as f64 / (b - a).as_secs_f64(),
            _ => 0.0,
        };
        if got.emitted.len() as u64 == lines && got.missed == 0 {
            complete += 1;
        }
        println!(
            "follower {i}: {} of {lines} hook lines, {} reported missed, {:.0} lines/s",
            got.emitted.len(),
            got.missed,
            rate
        );
    }
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let during: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 8).max(1))
        .map(|(t, kib)| format!("{t:.1}s {:.1}", *kib as f64 / 1024.0))
        .collect();
    println!(
        "followers: {complete} of {followers} received every line; daemon RSS before {:.1} MB, peak while the hook logged {:.1} MB; then the run's check: peak {:.1} MB, after {:.1} MB",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak_after_hook as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!(
        "daemon RSS (MB) while the hook logged: {}",
        during.join(", ")
    );
    Ok(())
}
