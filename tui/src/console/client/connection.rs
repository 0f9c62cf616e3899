//! The one connection the console keeps, with the daemon's change stream open on it,
//! made again (with a growing pause) whenever the daemon is away.

use std::path::PathBuf;
use std::time::Duration;

use cairn_proto::v1 as pb;
use cairn_proto::v1::daemon_client::DaemonClient;

use super::{Incoming, Sender};
use crate::console::action::{Action, DashboardReply, Reply};

/// Longest wait between two attempts to reach the daemon.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Keeps a connection and its change stream open for as long as the console runs.
pub async fn supervise(socket: PathBuf, tx: Sender) {
    let mut delay = Duration::from_millis(250);
    loop {
        match watch_changes(&socket, &tx).await {
            // It was up: try again soon.
            Ok(why) => {
                delay = Duration::from_millis(250);
                if tx.send(Incoming::Lost(why)).is_err() {
                    return;
                }
            }
            Err(why) => {
                if tx.send(Incoming::Lost(why)).is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// One connection: Err when it could not be made, Ok with why it ended.
async fn watch_changes(socket: &std::path::Path, tx: &Sender) -> Result<String, String> {
    let channel = crate::api::socket::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let mut changes = DaemonClient::new(channel.clone())
        .watch_changes(pb::WatchChangesRequest {})
        .await
        .map_err(|status| crate::api::status::one_line(&status))?
        .into_inner();
    if tx.send(Incoming::Connected(channel)).is_err() {
        return Ok(String::new());
    }
    loop {
        match changes.message().await {
            Ok(Some(pb::Change { what: Some(what) })) => {
                if tx
                    .send(Incoming::Action(Action::Reply(Reply::Dashboard(
                        DashboardReply::Changed(Box::new(what)),
                    ))))
                    .is_err()
                {
                    return Ok(String::new());
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok("cairnd closed the connection (restarting?)".into()),
            Err(status) => return Ok(crate::api::status::one_line(&status)),
        }
    }
}
