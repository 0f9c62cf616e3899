//! GetStatus at a fixed rate over one connection (HTTP/2 multiplexes the calls).
//! Open loop: calls go out on schedule whatever the answers do, so a stalled daemon
//! shows up in the figures instead of slowing the load down. Latency is measured
//! from the moment each call is sent; how late the client's timer sent it (tokio's
//! timer ticks in milliseconds) is reported apart.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_proto::v1 as pb;
use cairn_proto::v1::daemon_client::DaemonClient;

use crate::percentiles;

pub async fn run(socket: &Path, rate: u32, seconds: u32) -> anyhow::Result<()> {
    let channel = cairn_proto::connect(socket).await?;
    let client = DaemonClient::new(channel);
    // Warm up the connection and the daemon's code paths.
    for _ in 0..100 {
        client.clone().get_status(pb::GetStatusRequest {}).await?;
    }
    let total = u64::from(rate) * u64::from(seconds);
    let period = Duration::from_secs(1) / rate;
    let started = Instant::now();
    let mut calls = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = started + period * u32::try_from(i)?;
        tokio::time::sleep_until(due.into()).await;
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            let sent = Instant::now();
            client
                .get_status(pb::GetStatusRequest {})
                .await
                .map(|_| (sent.elapsed(), sent - due))
        }));
    }
    let mut latencies = Vec::with_capacity(calls.len());
    let mut lateness = Vec::with_capacity(calls.len());
    let mut failed = 0;
    for call in calls {
        match call.await? {
            Ok((latency, late)) => {
                latencies.push(latency);
                lateness.push(late);
            }
            Err(_) => failed += 1,
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "status: {total} calls at {rate}/s over {took:.1} s, {failed} failed; {}",
        percentiles::summary(&mut latencies)
    );
    println!(
        "status: client timer lateness (not in the latency): {}",
        percentiles::summary(&mut lateness)
    );
    Ok(())
}
