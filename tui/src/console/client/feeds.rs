//! The live streams screens follow (a run's progress, log lines), resumed where they
//! left off after a reconnect.

use cairn_proto::v1 as pb;
use cairn_proto::v1::logs_client::LogsClient;
use cairn_proto::v1::runs_client::RunsClient;
use tonic::transport::Channel;

use super::{Incoming, Sender};
use crate::console::action::{Action, LiveReply, Reply};
use crate::console::message::Feed;

/// Follows one live stream until it ends; `after_seq` resumes a log after a reconnect.
pub fn follow(
    feed: Feed,
    after_seq: u64,
    channel: Channel,
    tx: Sender,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let send = |action| tx.send(Incoming::Action(action)).is_ok();
        match &feed {
            Feed::Run(id) => {
                let Ok(stream) = RunsClient::new(channel)
                    .watch_run(pb::WatchRunRequest { id: *id })
                    .await
                else {
                    return;
                };
                let mut stream = stream.into_inner();
                while let Ok(Some(run)) = stream.message().await {
                    if !send(Action::Reply(Reply::Live(LiveReply::RunUpdate(Box::new(
                        run,
                    ))))) {
                        return;
                    }
                }
            }
            Feed::RunLog(_) | Feed::DaemonLog(_) => {
                let request = match &feed {
                    Feed::RunLog(id) => pb::StreamLogsRequest {
                        run_id: *id,
                        min_level: pb::Level::Info as i32,
                        after_seq,
                        follow: true,
                        ..Default::default()
                    },
                    // From the lines the daemon keeps in memory, then live.
                    _ => pb::StreamLogsRequest {
                        min_level: match feed {
                            Feed::DaemonLog(level) => level,
                            _ => pb::Level::Info as i32,
                        },
                        after_seq: after_seq.max(1),
                        follow: true,
                        ..Default::default()
                    },
                };
                let stream = match LogsClient::new(channel).stream_logs(request).await {
                    Ok(stream) => stream,
                    Err(status) => {
                        send(Action::Reply(Reply::Failed {
                            what: "reading the log".into(),
                            text: status.message().to_owned(),
                        }));
                        return;
                    }
                };
                let mut stream = stream.into_inner();
                while let Ok(Some(line)) = stream.message().await {
                    if !send(Action::Reply(Reply::Live(LiveReply::LogLines {
                        feed: feed.clone(),
                        lines: vec![line],
                    }))) {
                        return;
                    }
                }
            }
        }
    })
}
