//! `cairn-flood SOCKET KIND COUNT`: makes COUNT calls to a cairnd as fast as one
//! connection allows, for the tests of what a flood of calls costs the daemon. KIND:
//! `denied` (Jobs/DeleteJob, which only admins may call), `unknown` (a made-up method
//! with an 8 KB path), `status` (Daemon/GetStatus). Prints how the calls ended as JSON.

use std::collections::BTreeMap;

use cairn_proto::v1 as pb;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, kind, count] = args.as_slice() else {
        eprintln!("usage: cairn-flood SOCKET denied|unknown|status COUNT");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT is a number");
    let channel = cairn_proto::connect(socket).await.expect("connecting");
    let long_path = format!("/cairn.v1.Jobs/{}", "X".repeat(8192));
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..count {
        let result = match kind.as_str() {
            "denied" => pb::jobs_client::JobsClient::new(channel.clone())
                .delete_job(pb::DeleteJobRequest { name: "web".into() })
                .await
                .map(|_| ()),
            "status" => pb::daemon_client::DaemonClient::new(channel.clone())
                .get_status(pb::GetStatusRequest {})
                .await
                .map(|_| ()),
            "unknown" => {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready().await.expect("ready");
                let path = http::uri::PathAndQuery::try_from(long_path.as_str()).expect("a path");
                let codec = tonic_prost::ProstCodec::<pb::GetStatusRequest, pb::Status>::default();
                grpc.unary(tonic::Request::new(pb::GetStatusRequest {}), path, codec)
                    .await
                    .map(|_| ())
            }
            other => panic!("unknown kind {other}"),
        };
        let outcome = match result {
            Ok(()) => "ok".to_owned(),
            Err(status) => format!("{:?}", status.code()),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    let fields: Vec<String> = outcomes
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    println!("{{{}}}", fields.join(","));
}
