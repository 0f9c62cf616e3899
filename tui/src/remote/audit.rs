//! `cairn audit`.

use cairn_proto::v1 as pb;
use cairn_proto::v1::audit_client::AuditClient;
use serde_json::json;

use super::{Remote, api_error};
use crate::cli::AuditArgs;
use crate::output::{self, Outcome};

pub async fn run(remote: &Remote, args: &AuditArgs) -> anyhow::Result<Outcome> {
    let response = AuditClient::new(remote.channel.clone())
        .list_audit(pb::ListAuditRequest {
            uid: args.uid,
            denied_only: args.denied,
            page_size: args.limit,
            page_token: String::new(),
        })
        .await
        .map_err(api_error)?
        .into_inner();
    let entries = response.entries;
    if remote.json() {
        let docs: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "seq": e.seq,
                    "time": crate::api::names::time(e.time.as_ref()),
                    "uid": e.uid,
                    "role": crate::api::names::role(e.role),
                    "rpc": e.rpc,
                    "arguments": serde_json::from_str::<serde_json::Value>(&e.arguments).unwrap_or_else(|_| e.arguments.clone().into()),
                    "result": e.result,
                    "count": e.count.max(1),
                    "hash": e.hash,
                })
            })
            .collect();
        output::json(&docs)?;
    } else {
        for e in &entries {
            let times = if e.count > 1 {
                format!(" ({} times)", e.count)
            } else {
                String::new()
            };
            crate::outln!(
                "{} uid {} ({}) {} {} -> {}{times}",
                crate::api::names::time(e.time.as_ref()).unwrap_or_default(),
                e.uid,
                crate::api::names::role(e.role),
                e.rpc.rsplit('/').next().unwrap_or(&e.rpc),
                e.arguments,
                e.result
            )?;
        }
        if response.dropped > 0 {
            crate::outln!(
                "{} older entries were dropped by the retention ([audit] max_records, max_age_days)",
                response.dropped
            )?;
        }
    }
    Ok(Outcome::Ok)
}
