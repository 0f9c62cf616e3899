//! cairn.v1.Audit: who did what (admin only).

use std::sync::Arc;

use cairn_proto::v1 as pb;
use cairn_proto::v1::audit_server::Audit;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::{Paging, blocking};
use crate::state::DaemonState;
use crate::store::{AUDIT, AuditRecord, Counter};

#[derive(Debug, Clone)]
pub struct AuditService {
    pub state: Arc<DaemonState>,
}

fn role(name: &str) -> pb::Role {
    match name {
        "admin" => pb::Role::Admin,
        "operator" => pb::Role::Operator,
        "viewer" => pb::Role::Viewer,
        _ => pb::Role::Unspecified,
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let request = request.into_inner();
        let paging = Paging::of(request.page_size);
        let before = super::sequence_token(&request.page_token)?;
        let state = self.state.clone();
        let (records, dropped) = blocking(move || {
            Ok(state.store.read("listing the audit trail", |rx| {
                let records =
                    rx.list_numbered_desc::<AuditRecord>(AUDIT, before, paging.to_read(), |r| {
                        request.uid.is_none_or(|uid| r.uid == uid)
                            && (!request.denied_only || r.result.starts_with("PermissionDenied"))
                    })?;
                Ok((records, rx.counter(Counter::AuditDropped)?))
            })?)
        })
        .await?;
        let (records, next_page_token) = paging.page(records, |(seq, _)| seq.to_string());
        let entries = records
            .iter()
            .map(|(seq, r)| pb::AuditEntry {
                seq: *seq,
                time: Some(timestamp(r.time)),
                uid: r.uid,
                role: role(&r.role) as i32,
                rpc: r.rpc.clone(),
                arguments: r.arguments.clone(),
                result: r.result.clone(),
                count: r.count,
                hash: r.hash.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListAuditResponse {
            entries,
            next_page_token,
            dropped,
        }))
    }
}
