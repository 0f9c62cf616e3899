//! Repositories off the machine: on a real S3 server (SeaweedFS) and a real sshd,
//! both started once for this binary. On each, the acceptance tree backs up and
//! restores bit for bit, `check --read-data` is clean, forget and prune give space
//! back, and a wrong secret or an unknown host is a clear error (exit 2) that names
//! the backend and what to fix.

use std::fs;

use std::time::{Duration, Instant};

use cairn_e2e::corpus::{random_tree, special_tree};
use cairn_e2e::daemon::Cairnd;
use cairn_e2e::faulty_proxy::{Faults, FaultyProxy};
use cairn_e2e::run::{Cairn, RemoteRepo};
use cairn_e2e::servers::{S3Server, SshServer, seaweedfs, sshd};

fn s3_repo(server: &S3Server, prefix: &str) -> RemoteRepo {
    RemoteRepo {
        location: server.location(prefix),
        env: server.env(),
        options: Vec::new(),
    }
}

fn sftp_repo(server: &SshServer, name: &str) -> RemoteRepo {
    RemoteRepo {
        location: server.location(name),
        env: Vec::new(),
        options: vec![server.option()],
    }
}

#[track_caller]
fn assert_checks_clean(cairn: &Cairn, when: &str) {
    let check = cairn.run(&["check", "--read-data", "--output", "json"]);
    assert_eq!(check.code, 0, "{when}: {}{}", check.stdout, check.stderr);
}

/// Everything an operator does with a repository, on one backend.
fn backs_up_restores_checks_forgets_and_prunes(cairn: &Cairn) {
    cairn
        .run(&["init", "--kdf-work-factor", "10", "--pack-size-mib", "1"])
        .ok();
    let source = cairn.path("source");
    special_tree(&source, 64 * 1024 * 1024);
    random_tree(&source.join("bulk"), 7, 40, 6 * 1024 * 1024);
    let first = cairn.backup_id(&source);
    // An unchanged tree is not read again (the parent snapshot comes from the server).
    let again = cairn.backup(&source);
    assert_eq!(again["summary"]["bytes_read"], 0, "{again}");
    assert_eq!(again["summary"]["files_new"], 0, "{again}");
    // Half of the bulk goes: the next snapshot no longer needs it.
    for entry in fs::read_dir(source.join("bulk")).expect("bulk").take(20) {
        let path = entry.expect("entry").path();
        if path.is_file() {
            fs::remove_file(path).expect("remove");
        } else {
            fs::remove_dir_all(path).expect("remove");
        }
    }
    let last = cairn.backup_id(&source);
    assert_checks_clean(cairn, "after three backups");
    cairn.assert_restores_whole(&last, &source, "restored-last");

    let before = cairn.run(&["stats", "--output", "json"]).ok().json();
    cairn
        .run(&["forget", &first, again["snapshot_id"].as_str().expect("id")])
        .ok();
    let pruned = cairn
        .run(&["prune", "--max-unused", "0", "--output", "json"])
        .ok()
        .json();
    let after = cairn.run(&["stats", "--output", "json"]).ok().json();
    let stored = |stats: &serde_json::Value| stats["stored_bytes"].as_u64().expect("stored");
    assert!(
        stored(&after) < stored(&before),
        "prune gave nothing back: {before} -> {after} ({pruned})"
    );
    assert_checks_clean(cairn, "after forget and prune");
    cairn.assert_restores_whole(&last, &source, "restored-after-prune");
}

#[test]
fn an_s3_repository_backs_up_restores_checks_and_prunes() {
    let Some(server) = seaweedfs("an_s3_repository_backs_up_restores_checks_and_prunes") else {
        return;
    };
    backs_up_restores_checks_forgets_and_prunes(&Cairn::remote(s3_repo(server, "roundtrip")));
}

#[test]
fn an_sftp_repository_backs_up_restores_checks_and_prunes() {
    let Some(server) = sshd("an_sftp_repository_backs_up_restores_checks_and_prunes") else {
        return;
    };
    backs_up_restores_checks_forgets_and_prunes(&Cairn::remote(sftp_repo(server, "roundtrip")));
}

#[test]
fn a_wrong_s3_secret_is_refused_with_what_to_fix() {
    let Some(server) = seaweedfs("a_wrong_s3_secret_is_refused_with_what_to_fix") else {
        return;
    };
    let good = Cairn::remote(s3_repo(server, "wrong-secret"));
    good.run(&["init", "--kdf-work-factor", "10"]).ok();
    let mut wrong = s3_repo(server, "wrong-secret");
    wrong.env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    wrong
        .env
        .push(("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into()));
    let ran = Cairn::remote(wrong).run(&["snapshots"]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("s3:http://127.0.0.1") && ran.stderr.contains("AWS_SECRET_ACCESS_KEY"),
        "the error names the backend and what to check: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("not-the-secret"), "{}", ran.stderr);
    assert!(!ran.stderr.contains(&server.secret_key), "{}", ran.stderr);

    // No credentials at all: said before anything is tried.
    let mut none = s3_repo(server, "wrong-secret");
    none.env.clear();
    let mut command = Cairn::remote(none).command(&["snapshots"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let ran = cairn_e2e::run::Ran::from(command.output().expect("cairn"));
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", ran.stderr);
}

#[test]
fn an_unknown_ssh_host_is_refused_never_trusted() {
    let Some(server) = sshd("an_unknown_ssh_host_is_refused_never_trusted") else {
        return;
    };
    let mut stranger = sftp_repo(server, "unknown-host");
    stranger.options = vec![format!(
        "sftp.command=ssh -F {}",
        server.stranger_config.display()
    )];
    let ran = Cairn::remote(stranger).run(&["init", "--kdf-work-factor", "10"]);
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("sftp://") && ran.stderr.contains("known_hosts"),
        "the error names the backend and what to fix: {}",
        ran.stderr
    );
    assert!(
        !server.root.join("unknown-host").exists(),
        "nothing was written to a host that was not trusted"
    );
}

/// A new repository (1 MiB packs) on the S3 server, reached through a proxy that
/// injects no fault yet and records every upload.
fn behind_a_proxy(server: &S3Server, prefix: &str) -> (FaultyProxy, Cairn) {
    let proxy = FaultyProxy::start(server.port, Faults::default());
    let cairn = Cairn::remote(RemoteRepo {
        location: server.location_via(proxy.port, prefix),
        env: server.env(),
        options: Vec::new(),
    });
    cairn
        .run(&["init", "--kdf-work-factor", "10", "--pack-size-mib", "1"])
        .ok();
    (proxy, cairn)
}

#[test]
fn s3_faults_are_retried_and_cut_or_altered_downloads_are_caught() {
    let Some(server) = seaweedfs("s3_faults_are_retried_and_cut_or_altered_downloads_are_caught")
    else {
        return;
    };
    let (proxy, cairn) = behind_a_proxy(server, "faults");
    let source = cairn.path("source");
    random_tree(&source, 11, 60, 12 * 1024 * 1024);
    proxy.set_faults(Faults {
        slow_down: 7,
        reset_upload: 5,
        cut_get: 4,
        shorten_get: 9,
        flip_get: 3,
    });
    let backup = cairn.run(&[
        "backup",
        "--output",
        "json",
        source.to_str().expect("utf-8"),
    ]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    assert!(
        backup.stderr.contains("retrying"),
        "each retry is logged: {}",
        backup.stderr
    );
    let snapshot = backup.json()["snapshot_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let check = cairn.run(&["check", "--read-data", "--output", "json"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stderr.contains("do not match its name") || check.stderr.contains("arrived with"),
        "an altered or cut download is caught and fetched again: {}",
        check.stderr
    );
    cairn.assert_restores_whole(&snapshot, &source, "restored");
    assert!(proxy.injected() >= 20, "only {} faults", proxy.injected());
}

#[test]
fn a_killed_s3_backup_leaves_a_clean_repository_and_nothing_is_uploaded_twice() {
    let Some(server) =
        seaweedfs("a_killed_s3_backup_leaves_a_clean_repository_and_nothing_is_uploaded_twice")
    else {
        return;
    };
    let (proxy, cairn) = behind_a_proxy(server, "killed");
    let source = cairn.path("source");
    random_tree(&source, 12, 120, 80 * 1024 * 1024);
    let packs = |proxy: &FaultyProxy| -> Vec<String> {
        proxy
            .stored()
            .into_iter()
            .filter(|p| p.contains("/data/"))
            .collect()
    };
    let mut child = cairn
        .command(&["backup", source.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("backup");
    let deadline = Instant::now() + Duration::from_secs(120);
    while packs(&proxy).len() < 12 {
        assert!(Instant::now() < deadline, "the backup uploaded no packs");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the backup ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let before = packs(&proxy);

    let check = cairn.run(&["check", "--read-data"]);
    assert_eq!(
        check.code, 0,
        "after kill -9: {}{}",
        check.stdout, check.stderr
    );
    let snapshot = cairn.backup_id(&source);
    let uploaded = packs(&proxy);
    let mut seen = std::collections::BTreeSet::new();
    for path in &uploaded {
        assert!(
            seen.insert(path),
            "{path} was uploaded twice (finished before the kill: {})",
            before.len()
        );
    }
    cairn.run(&["check", "--read-data"]).ok();
    cairn.assert_restores_whole(&snapshot, &source, "restored");
}

#[test]
fn an_s3_restore_and_check_download_each_pack_once() {
    let Some(server) = seaweedfs("an_s3_restore_and_check_download_each_pack_once") else {
        return;
    };
    let (proxy, cairn) = behind_a_proxy(server, "once");
    let source = cairn.path("source");
    random_tree(&source, 13, 150, 24 * 1024 * 1024);
    let snapshot = cairn.backup_id(&source);
    let packs_fetched = |proxy: &FaultyProxy, since: usize| -> Vec<String> {
        proxy.fetched()[since..]
            .iter()
            .filter(|p| p.contains("/data/"))
            .cloned()
            .collect()
    };
    let stored: std::collections::BTreeSet<String> = proxy
        .stored()
        .into_iter()
        .filter(|p| p.contains("/data/"))
        .collect();
    assert!(stored.len() >= 10, "only {} packs", stored.len());
    let assert_once = |fetched: &[String], what: &str| {
        let mut seen = std::collections::BTreeSet::new();
        for path in fetched {
            assert!(seen.insert(path), "{what} downloaded {path} twice");
        }
        assert!(
            seen.len() >= stored.len(),
            "{what} read only {} packs",
            seen.len()
        );
    };

    let before = proxy.fetched().len();
    cairn.assert_restores_whole(&snapshot, &source, "restored");
    assert_once(&packs_fetched(&proxy, before), "the restore");

    let before = proxy.fetched().len();
    cairn.run(&["check", "--read-data"]).ok();
    assert_once(&packs_fetched(&proxy, before), "check --read-data");
}

/// A host given only a write-only key: it backs up (deduplicated against what it
/// stored before) and cannot read anything back; a full key restores all it wrote.
#[test]
fn a_write_only_key_backs_up_to_s3_and_cannot_read_what_is_there() {
    use age::secrecy::ExposeSecret;
    let Some(server) = seaweedfs("a_write_only_key_backs_up_to_s3_and_cannot_read_what_is_there")
    else {
        return;
    };
    let trusted = Cairn::remote(s3_repo(server, "write-only"));
    trusted.run(&["init", "--kdf-work-factor", "10"]).ok();
    let earlier = trusted.path("earlier");
    random_tree(&earlier, 21, 10, 2 * 1024 * 1024);
    let earlier_id = trusted.backup_id(&earlier);

    // The key: to an age identity the test holds, so it can read the key file.
    let identity = age::x25519::Identity::generate();
    let identity_file = trusted.path("host.key");
    fs::write(&identity_file, identity.to_string().expose_secret()).expect("identity");
    let added = trusted
        .run(&[
            "key",
            "add",
            "--write-only",
            "--recipient",
            &identity.to_public().to_string(),
            "--label",
            "web1 (write-only)",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(added["write_only"], true);
    let key_id = added["added"].as_str().expect("id").to_owned();

    // The key file holds no identity: decrypted with the host's identity, its
    // secrets are the recipient and the id, MAC and chunker keys, nothing more.
    let stored = trusted_key_file(&trusted, &key_id);
    let envelope: serde_json::Value = serde_json::from_slice(&stored).expect("envelope");
    assert_eq!(envelope["write_only"], true, "{envelope}");
    let payload = hex::decode(envelope["payload"].as_str().expect("payload")).expect("hex");
    let decryptor = age::Decryptor::new(&payload[..]).expect("age file");
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .expect("the host's identity opens its key file");
    let mut secrets = String::new();
    std::io::Read::read_to_string(&mut reader, &mut secrets).expect("secrets");
    let secrets: serde_json::Value = serde_json::from_str(&secrets).expect("json");
    assert!(secrets.get("identity").is_none(), "{secrets}");
    assert!(
        !secrets.to_string().contains("AGE-SECRET-KEY"),
        "no identity in it"
    );
    assert!(
        secrets["recipient"]
            .as_str()
            .is_some_and(|r| r.starts_with("age1"))
    );

    // The write-only host backs up, twice: the second stores no file's data again
    // (only directory records whose access times the first backup's reads changed).
    let host = Cairn::remote(s3_repo(server, "write-only"));
    let as_host = |args: &[&str]| {
        let mut command = host.command(args);
        command
            .env_remove("CAIRN_PASSPHRASE")
            .env("CAIRN_IDENTITY_FILE", &identity_file);
        cairn_e2e::run::Ran::from(command.output().expect("cairn"))
    };
    let source = host.path("source");
    random_tree(&source, 22, 30, 6 * 1024 * 1024);
    let src = source.to_str().expect("utf-8");
    let first = as_host(&["backup", "--output", "json", src]).ok().json();
    let second = as_host(&["backup", "--output", "json", src]).ok().json();
    let stored = |run: &serde_json::Value| run["summary"]["bytes_stored"].as_u64().expect("bytes");
    assert!(stored(&first) > 1024 * 1024, "{first}");
    assert!(stored(&second) < 64 * 1024, "{second}");

    // Nothing can be read with it, and each refusal says why.
    let target = host.path("target");
    for args in [
        vec!["snapshots"],
        vec!["ls", &earlier_id],
        vec![
            "restore",
            &earlier_id,
            "--target",
            target.to_str().expect("utf-8"),
        ],
        vec!["check", "--read-data"],
        vec!["forget", "--keep-last", "1"],
        vec!["prune"],
        vec!["key", "remove", &key_id[..8]],
    ] {
        let ran = as_host(&args);
        assert_eq!(ran.code, 2, "{args:?}: {}{}", ran.stdout, ran.stderr);
        assert!(
            ran.stderr.contains("write-only"),
            "{args:?}: {}",
            ran.stderr
        );
    }
    assert!(!target.exists(), "nothing was restored");

    // The trusted host reads everything, the write-only host's backups too.
    assert_checks_clean(&trusted, "after write-only backups");
    let snapshot = first["snapshot_id"].as_str().expect("id");
    trusted.assert_restores_whole(snapshot, &source, "restored-wo");
    trusted.assert_restores_whole(&earlier_id, &earlier, "restored-earlier");
}

/// A key file's stored bytes, as the trusted host reads them from the bucket.
fn trusted_key_file(cairn: &Cairn, key_id: &str) -> Vec<u8> {
    use cairn_engine::backend::location::Location;
    use cairn_engine::backend::open::{BackendOptions, open_backend};
    let remote = cairn.remote.as_ref().expect("remote");
    let mut options = BackendOptions::default();
    let env: std::collections::HashMap<_, _> = remote.env.iter().cloned().collect();
    options.s3_credentials = Some(cairn_engine::backend::s3::S3Credentials {
        access_key_id: env["AWS_ACCESS_KEY_ID"].clone(),
        secret_access_key: env["AWS_SECRET_ACCESS_KEY"].clone().into(),
        session_token: None,
    });
    let backend = open_backend(
        &Location::parse(&remote.location).expect("location"),
        &options,
    )
    .expect("backend");
    backend
        .read(&format!("keys/{key_id}"), 1 << 20)
        .expect("key file")
}

/// cairnd holding only a write-only key to an S3 repository: added with its S3
/// secret sealed (given on stdin, never on the command line), it backs up on
/// schedule; the retention of that job and a prune job are refused, each run saying
/// why; a trusted host with the full key restores what it wrote.
#[test]
fn cairnd_backs_up_to_s3_on_schedule_with_a_write_only_key() {
    let Some(server) = seaweedfs("cairnd_backs_up_to_s3_on_schedule_with_a_write_only_key") else {
        return;
    };
    let trusted = Cairn::remote(s3_repo(server, "daemon-write-only"));
    trusted.run(&["init", "--kdf-work-factor", "10"]).ok();
    let mut add_key = trusted.command(&["key", "add", "--write-only", "--kdf-work-factor", "10"]);
    add_key.env("CAIRN_NEW_PASSPHRASE", "write-only-passphrase-41c2");
    let added = cairn_e2e::run::Ran::from(add_key.output().expect("cairn"));
    assert_eq!(added.code, 0, "{}", added.stderr);

    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(dir.path());
    let out = add_s3_repository(
        &daemon,
        server,
        "offsite",
        &server.location("daemon-write-only"),
        &["--option", "s3.connections=3"],
        "write-only-passphrase-41c2",
    );
    let repo: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(repo["backend"], "S3", "{repo}");
    assert_eq!(repo["options"], serde_json::json!(["s3.connections=3"]));
    // The secret is sealed: not in the audit trail, not in the daemon's log.
    let audit = daemon.cli(&["audit", "--output", "json"]).ok().stdout;
    assert!(!audit.contains(&server.secret_key), "{audit}");

    let source = dir.path().join("source");
    random_tree(&source, 31, 20, 3 * 1024 * 1024);
    let created = daemon.create_backup_job_in(
        "offsite",
        "nightly",
        &source,
        &["--schedule", "* * * * * *", "--keep-last", "1"],
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    // A scheduled run: the backup is stored, its retention refused, saying why.
    let run = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let runs = daemon
                .cli(&["run", "list", "--job", "nightly", "--output", "json"])
                .ok()
                .json();
            let ended = runs.as_array().and_then(|runs| {
                runs.iter()
                    .find(|r| r["state"] != "queued" && r["state"] != "running")
                    .cloned()
            });
            if let Some(run) = ended {
                break run;
            }
            assert!(Instant::now() < deadline, "no scheduled run ended");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    daemon.cli(&["job", "disable", "nightly"]).ok();
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("write-only"), "{run}");
    let snapshot = run["summary"]["snapshot_id"]
        .as_str()
        .expect("the backup was stored before retention was refused")
        .to_owned();

    let prune = daemon.cli(&[
        "job", "create", "tidy", "--repo", "offsite", "--kind", "prune",
    ]);
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    let pruned = daemon.run_job("tidy");
    assert_eq!(pruned["state"], "failed", "{pruned}");
    assert!(
        pruned["error"]
            .as_str()
            .unwrap_or_default()
            .contains("write-only"),
        "{pruned}"
    );
    let shown = daemon.cli(&["repo", "show", "offsite"]).ok().stdout;
    assert!(
        shown.contains("s3:http://127.0.0.1") && shown.contains("write-only"),
        "{shown}"
    );

    trusted.assert_restores_whole(&snapshot, &source, "restored-daemon");
}

/// `cairn repo add NAME --url LOCATION` on `daemon`, its S3 secret given on stdin
/// (never on the command line, not in the client's environment); the JSON answer.
fn add_s3_repository(
    daemon: &Cairnd,
    server: &S3Server,
    name: &str,
    location: &str,
    extra: &[&str],
    passphrase: &str,
) -> std::process::Output {
    use std::io::Write as _;
    let mut add = std::process::Command::new(cairn_e2e::run::binary("cairn"));
    add.args(["repo", "add", name, "--url", location])
        .args(["--s3-access-key-id", &server.access_key])
        .args(["--s3-secret-file", "-", "--output", "json"])
        .args(extra)
        .env("CAIRN_SOCKET", &daemon.socket)
        .env("CAIRN_PASSPHRASE", passphrase)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = add.spawn().expect("cairn repo add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", server.secret_key).as_bytes())
        .expect("secret on stdin");
    let out = child.wait_with_output().expect("repo add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The repositories screen and `repo show` give each off-site repository's storage
/// health in its last run: the requests a struggling server made it retry, and the
/// error a run failed on when the server stayed away; a clean run clears both. Each
/// run's record keeps its own.
#[test]
fn cairnd_shows_the_storage_health_of_each_run() {
    let Some(server) = seaweedfs("cairnd_shows_the_storage_health_of_each_run") else {
        return;
    };
    let (proxy, _cairn) = behind_a_proxy(server, "daemon-health");
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(dir.path());
    add_s3_repository(
        &daemon,
        server,
        "offsite",
        &server.location_via(proxy.port, "daemon-health"),
        &["--option", "s3.retries=2"],
        cairn_e2e::run::PASSPHRASE,
    );
    // Shown even while its storage refuses (exit 2, the statistics' error said).
    let shown = || {
        daemon
            .cli(&["repo", "show", "offsite", "--output", "json"])
            .json()
    };
    let before = shown();
    assert_eq!(before["backend_run"], 0, "{before}");
    assert_eq!(before["backend_retries"], 0, "{before}");

    let source = dir.path().join("source");
    random_tree(&source, 17, 12, 2 * 1024 * 1024);
    let created = daemon.create_backup_job_in("offsite", "offsite-nightly", &source, &[]);
    assert_eq!(created.code, 0, "{}", created.stderr);

    // A server that answers SlowDown to every third request: the run succeeds, its
    // retries counted in the run and shown on the repository.
    proxy.set_faults(Faults {
        slow_down: 3,
        ..Faults::default()
    });
    let struggling = daemon.run_job("offsite-nightly");
    assert_eq!(struggling["state"], "succeeded", "{struggling}");
    let retries = struggling["storage_retries"].as_u64().unwrap_or(0);
    assert!(retries > 0, "the run counts its retries: {struggling}");
    let repo = shown();
    assert_eq!(repo["backend_run"], struggling["id"], "{repo}");
    assert_eq!(repo["backend_retries"], retries, "{repo}");
    assert!(
        repo["backend_last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("SlowDown")
            || repo["backend_last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("503"),
        "{repo}"
    );
    let text = daemon.cli(&["repo", "show", "offsite"]).ok().stdout;
    assert!(
        text.contains(&format!("{retries} requests retried in its last run")),
        "{text}"
    );

    // A server that refuses everything: the run fails on it and says so, and the
    // repository shows that error.
    proxy.set_faults(Faults {
        slow_down: 1,
        ..Faults::default()
    });
    fs::write(source.join("new-file"), b"changed").expect("write");
    let failed = daemon.run_job("offsite-nightly");
    assert_eq!(failed["state"], "failed", "{failed}");
    let repo = shown();
    assert_eq!(repo["backend_run"], failed["id"], "{repo}");
    assert!(
        repo["stats_error"]
            .as_str()
            .unwrap_or_default()
            .contains("SlowDown"),
        "{repo}"
    );
    let text = daemon.cli(&["repo", "show", "offsite"]);
    assert_eq!(text.code, 2, "{}", text.stderr);
    assert!(
        text.stdout.contains("stats      cannot be read: "),
        "{}",
        text.stdout
    );
    let last_error = repo["backend_last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("127.0.0.1") && last_error == failed["error"],
        "the run's storage error is the repository's last: {repo} {failed}"
    );

    // The server is well again: a clean run clears what the repository shows, and
    // the earlier runs keep their own.
    proxy.set_faults(Faults::default());
    let clean = daemon.run_job("offsite-nightly");
    assert_eq!(clean["state"], "succeeded", "{clean}");
    let repo = shown();
    assert_eq!(repo["backend_run"], clean["id"], "{repo}");
    assert_eq!(repo["backend_retries"], 0, "{repo}");
    assert_eq!(repo["backend_last_error"], "", "{repo}");
    let id = struggling["id"].to_string();
    let earlier = daemon
        .cli(&["run", "show", &id, "--output", "json"])
        .ok()
        .json();
    assert_eq!(earlier["storage_retries"], retries, "{earlier}");
}

/// cairnd reaching an SFTP repository with a key that has a passphrase: without it
/// the login is refused with what to give; given on stdin it is sealed (not in the
/// audit trail or the log) and unsealed for every run, after a restart too.
#[test]
fn cairnd_logs_in_with_an_ssh_key_whose_passphrase_it_keeps_sealed() {
    let Some(server) = sshd("cairnd_logs_in_with_an_ssh_key_whose_passphrase_it_keeps_sealed")
    else {
        return;
    };
    const KEY_PASSPHRASE: &str = "ssh-key-passphrase-5d1e";
    let cairn = Cairn::remote(sftp_repo(server, "locked-key"));
    cairn.run(&["init", "--kdf-work-factor", "10"]).ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("id_locked");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", KEY_PASSPHRASE, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    server.authorize(&key.with_extension("pub"));

    let mut daemon = Cairnd::start(&dir.path().join("state"));
    let command = format!("sftp.command=ssh -F {}", server.keyless_config.display());
    let identity = format!("sftp.identity={}", key.display());
    let location = server.location("locked-key");
    let add = |passphrase: Option<&str>| {
        use std::io::Write as _;
        let mut add = std::process::Command::new(cairn_e2e::run::binary("cairn"));
        add.args(["repo", "add", "vault", "--url", &location])
            .args(["--option", &command, "--option", &identity])
            .env("CAIRN_SOCKET", &daemon.socket)
            .env("CAIRN_PASSPHRASE", cairn_e2e::run::PASSPHRASE)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if passphrase.is_some() {
            add.args(["--ssh-key-passphrase-file", "-"]);
        }
        let mut child = add.spawn().expect("cairn repo add");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(passphrase) = passphrase {
            writeln!(stdin, "{passphrase}").expect("passphrase on stdin");
        }
        drop(stdin);
        cairn_e2e::run::Ran::from(child.wait_with_output().expect("repo add"))
    };
    let refused = add(None);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--ssh-key-passphrase-file"),
        "the error says what to give: {}",
        refused.stderr
    );
    let wrong = add(Some("not-the-passphrase"));
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    add(Some(KEY_PASSPHRASE)).ok();

    let source = dir.path().join("source");
    random_tree(&source, 23, 10, 1024 * 1024);
    daemon
        .create_backup_job_in("vault", "vaulted", &source, &[])
        .ok();
    let first = daemon.run_job("vaulted");
    assert_eq!(first["state"], "succeeded", "{first}");
    daemon.restart();
    let second = daemon.run_job("vaulted");
    assert_eq!(
        second["state"], "succeeded",
        "unsealed after a restart: {second}"
    );

    let audit = daemon.cli(&["audit", "--output", "json"]).ok().stdout;
    assert!(audit.contains("<redacted>"), "{audit}");
    for (what, text) in [("audit trail", audit), ("log", daemon.log_text())] {
        assert!(
            !text.contains(KEY_PASSPHRASE),
            "the passphrase is in the {what}"
        );
    }
    let snapshot = second["summary"]["snapshot_id"].as_str().expect("snapshot");
    cairn.assert_restores_whole(snapshot, &source, "restored-locked-key");
}
