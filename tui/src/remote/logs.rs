//! `cairn logs`: prints log lines as they come; with `--output json`, one JSON object
//! per line (a stream has no end to close a single document).

use std::io::Write as _;

use cairn_proto::v1 as pb;
use cairn_proto::v1::logs_client::LogsClient;
use serde_json::json;

use super::{Remote, api_error};
use crate::cli::LogsArgs;
use crate::output::Outcome;

fn level_number(name: &str) -> i32 {
    match name {
        "trace" => pb::Level::Trace as i32,
        "debug" => pb::Level::Debug as i32,
        "warn" => pb::Level::Warn as i32,
        "error" => pb::Level::Error as i32,
        _ => pb::Level::Info as i32,
    }
}

/// One line for people: time, level, the run it belongs to, message, fields.
fn text(line: &pb::LogLine) -> String {
    let mut fields: Vec<_> = line.fields.iter().collect();
    fields.sort();
    let mut out = format!(
        "{} {:<5} ",
        crate::api::names::time(line.time.as_ref()).unwrap_or_default(),
        crate::api::names::level(line.level)
    );
    if line.run_id != 0 {
        out.push_str(&format!("[{} run {}] ", line.job, line.run_id));
    }
    out.push_str(&line.message);
    for (key, value) in fields {
        out.push_str(&format!(" {key}={value}"));
    }
    out
}

fn document(line: &pb::LogLine) -> serde_json::Value {
    if line.missed > 0 {
        return json!({ "missed": line.missed });
    }
    json!({
        "seq": line.seq,
        "time": crate::api::names::time(line.time.as_ref()),
        "level": crate::api::names::level(line.level).to_ascii_lowercase(),
        "target": line.target,
        "message": line.message,
        "fields": line.fields,
        "job": line.job,
        "run": line.run_id,
    })
}

pub async fn run(remote: &Remote, args: &LogsArgs) -> anyhow::Result<Outcome> {
    let mut stream = LogsClient::new(remote.channel.clone())
        .stream_logs(pb::StreamLogsRequest {
            job: args.job.clone().unwrap_or_default(),
            run_id: args.run.unwrap_or(0),
            min_level: level_number(&args.level),
            after_seq: args.after,
            follow: args.follow,
        })
        .await
        .map_err(api_error)?
        .into_inner();
    let stdout = std::io::stdout();
    while let Some(line) = stream.message().await.map_err(api_error)? {
        let mut out = stdout.lock();
        let written = if remote.json() {
            writeln!(out, "{}", document(&line))
        } else if line.missed > 0 {
            writeln!(
                out,
                "-- {} lines missed: this client read too slowly --",
                line.missed
            )
        } else {
            writeln!(out, "{}", text(&line))
        };
        // A closed pipe (`cairn logs -f | head`) ends the command quietly.
        if written.and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(Outcome::Ok)
}
