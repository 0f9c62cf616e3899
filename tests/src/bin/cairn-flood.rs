//! `cairn-flood SOCKET KIND COUNT`: makes COUNT calls to a cairnd as fast as one
//! connection allows, for the tests of what a flood of calls costs the daemon. KIND:
//! `denied` (Jobs/DeleteJob, which only admins may call), `unknown` (a made-up method
//! with an 8 KB path), `status` (Daemon/GetStatus), `big` (Repositories/
//! CreateRepository with a 15 MB name). Prints how the calls ended as JSON.
//!
//! `cairn-flood SOCKET hold COUNT SECONDS`: opens COUNT connections that never say a
//! word, keeps them SECONDS, and prints how many it opened and how many of those the
//! daemon closed.
//!
//! `cairn-flood SOCKET follow COUNT SECONDS`: opens COUNT log follows it never reads,
//! keeps them SECONDS, and prints how the calls were answered.
//!
//! `cairn-flood SOCKET list DIR`: lists DIR on the daemon's host page by page
//! (Files.ListDirectory) and prints the pages, the total and every entry's raw name
//! (hex) and shown name.
//!
//! `cairn-flood SOCKET health SERVICE`: asks the standard gRPC health service about
//! SERVICE (e.g. `cairn.v1.Jobs`) and prints its status (`SERVING`, `NOT_SERVING`).

use std::collections::BTreeMap;

use cairn_proto::v1 as pb;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, socket, kind, count, seconds] = args.as_slice()
        && kind == "hold"
    {
        hold(
            socket,
            count.parse().expect("COUNT"),
            seconds.parse().expect("SECONDS"),
        );
        return;
    }
    if let [_, socket, kind, count, seconds] = args.as_slice()
        && kind == "follow"
    {
        let channel = cairn_proto::connect(socket).await.expect("connecting");
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        let mut held = Vec::new();
        for _ in 0..count.parse::<usize>().expect("COUNT") {
            let call = pb::logs_client::LogsClient::new(channel.clone())
                .stream_logs(pb::StreamLogsRequest {
                    follow: true,
                    ..Default::default()
                })
                .await;
            let outcome = match call {
                Ok(stream) => {
                    held.push(stream);
                    "ok".to_owned()
                }
                Err(status) => format!("{:?}", status.code()),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        tokio::time::sleep(std::time::Duration::from_secs(
            seconds.parse().expect("SECONDS"),
        ))
        .await;
        print_outcomes(&outcomes);
        return;
    }
    if let [_, socket, kind, service] = args.as_slice()
        && kind == "health"
    {
        let channel = cairn_proto::connect(socket).await.expect("connecting");
        let status = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.clone(),
            })
            .await
            .expect("a health answer")
            .into_inner()
            .status();
        println!("{{\"status\":\"{}\"}}", status.as_str_name());
        return;
    }
    if let [_, socket, kind, dir] = args.as_slice()
        && kind == "list"
    {
        list(socket, dir).await;
        return;
    }
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
            "big" => pb::repositories_client::RepositoriesClient::new(channel.clone())
                .max_encoding_message_size(64 << 20)
                .create_repository(pb::CreateRepositoryRequest {
                    name: "n".repeat(15 << 20),
                    location: "/nonexistent".into(),
                    init: false,
                    passphrase: String::new(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            other => panic!("unknown kind {other}"),
        };
        let outcome = match result {
            Ok(()) => "ok".to_owned(),
            Err(status) => format!("{:?}", status.code()),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    print_outcomes(&outcomes);
}

fn print_outcomes(outcomes: &BTreeMap<String, usize>) {
    let fields: Vec<String> = outcomes
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    println!("{{{}}}", fields.join(","));
}

fn hold(socket: &str, count: usize, seconds: u64) {
    use std::io::Read as _;
    let held: Vec<std::os::unix::net::UnixStream> = (0..count)
        .map_while(|_| std::os::unix::net::UnixStream::connect(socket).ok())
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(seconds));
    let closed = held
        .iter()
        .filter(|stream| {
            stream.set_nonblocking(true).expect("nonblocking");
            // What the daemon sent (its HTTP/2 settings) first, then: the end, or not.
            let mut buf = [0u8; 4096];
            loop {
                match (&mut &**stream).read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => continue,
                    Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
                }
            }
        })
        .count();
    println!("{{\"opened\":{},\"closed\":{closed}}}", held.len());
}

async fn list(socket: &str, dir: &str) {
    let channel = cairn_proto::connect(socket).await.expect("connecting");
    let mut client = pb::files_client::FilesClient::new(channel);
    let (mut pages, mut token) = (0, String::new());
    let mut total: u64;
    let mut entries = Vec::new();
    loop {
        let page = client
            .list_directory(pb::ListDirectoryRequest {
                path: dir.into(),
                page_size: 5000,
                page_token: token,
            })
            .await
            .expect("a page")
            .into_inner();
        pages += 1;
        total = page.total_entries;
        for e in page.entries {
            let raw: String = e.raw_name.iter().map(|b| format!("{b:02x}")).collect();
            let shown = e.name.replace('\\', "\\\\").replace('"', "\\\"");
            entries.push(format!("[\"{raw}\",\"{shown}\"]"));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    println!(
        "{{\"pages\":{pages},\"total\":{total},\"entries\":[{}]}}",
        entries.join(",")
    );
}
