//! A repository on any SSH server, over SFTP. Like restic, cairn runs the system's
//! `ssh` with the `sftp` subsystem and speaks SFTP over its pipes: the operator's
//! keys, agent, `~/.ssh/config` and `known_hosts` apply as they do for `ssh`, and
//! `BatchMode` makes ssh refuse (never ask about) an unknown host key or a password.
//!
//! Writes go to `tmp/` under the repository, are synced when the server offers
//! `fsync@openssh.com`, and are renamed into place (`posix-rename@openssh.com`), so
//! an object is whole or absent, as on a local disk.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use openssh_sftp_client::error::{Error as SftpError, SftpErrorKind};
use openssh_sftp_client::{Sftp, SftpOptions};
use tokio::io::AsyncReadExt;

use super::location::SftpLocation;
use super::pack_cache::{Fetch, PackCache, SpoolFile};
use super::remote::{self, BackendHealth, Health, RemoteStaged, Spooled, Uploader};
use super::{Backend, ObjectInfo, ObjectReader, StagedObject};
use crate::error::{Error, Result};
use crate::layout;
use age::secrecy::{ExposeSecret, SecretString};

/// How to reach the server (`--option sftp.*`).
#[derive(Debug, Clone, Default)]
pub struct SftpSettings {
    /// The ssh program and its first arguments (default `ssh`).
    pub command: Option<Vec<String>>,
    /// The private key ssh uses (`-i`).
    pub identity: Option<PathBuf>,
    /// The passphrase of that key (the daemon's sealed secret; never an option):
    /// given to ssh by [`askpass_helper`], and only when ssh asks for a key's.
    pub key_passphrase: Option<SecretString>,
}

/// Set in ssh's environment when this program is its askpass helper.
const ASKPASS_FLAG: &str = "CAIRN_SSH_ASKPASS";
/// The key's passphrase, in ssh's environment only (readable, like the daemon's own
/// memory where the unsealed secret is, by its user and root alone).
const ASKPASS_SECRET: &str = "CAIRN_SSH_KEY_PASSPHRASE";
/// How ssh asks for a key's passphrase; any other question (a host key to accept,
/// a password) is refused, so the passphrase answers nothing else.
const PASSPHRASE_PROMPT: &str = "Enter passphrase for";

/// When ssh started this process as its askpass helper (the program that gives a
/// key's passphrase): answers and returns the exit code; otherwise `None`. The
/// `cairn` and `cairnd` binaries call it first thing in `main`.
pub fn askpass_helper() -> Option<u8> {
    std::env::var_os(ASKPASS_FLAG)?;
    let prompt = std::env::args().nth(1).unwrap_or_default();
    if !prompt.starts_with(PASSPHRASE_PROMPT) {
        eprintln!(
            "cairn: ssh asked {:?}; only a key's passphrase is answered",
            prompt.trim()
        );
        return Some(1);
    }
    match std::env::var(ASKPASS_SECRET) {
        Ok(passphrase) => {
            println!("{passphrase}");
            Some(0)
        }
        Err(_) => Some(1),
    }
}

/// What an upload sends.
enum Body<'a> {
    Bytes(&'a [u8]),
    File(&'a mut File),
}

/// Attempts of one request; a lost connection is opened again between them.
const ATTEMPTS: u32 = 5;
/// Bytes per write request when uploading a staged pack.
const UPLOAD_PIECE: usize = 256 * 1024;
/// Bytes asked for at once when downloading (the client splits it into requests).
const READ_PIECE: u64 = 1024 * 1024;
/// Temporary files older than this are left by writers that died.
const STALE_TEMP: Duration = Duration::from_secs(24 * 60 * 60);
const KINDS: [&str; 7] = [
    layout::KEYS,
    layout::DATA,
    layout::INDEX,
    layout::SNAPSHOTS,
    layout::LOCKS,
    layout::FORGOTTEN,
    layout::CONDEMNED,
];

#[derive(Clone)]
pub struct SftpBackend {
    inner: Arc<Inner>,
}

struct Inner {
    location: SftpLocation,
    settings: SftpSettings,
    runtime: tokio::runtime::Runtime,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    health: Health,
    swept: AtomicBool,
    packs: Arc<PackCache>,
}

/// One ssh process and the SFTP session over its pipes.
struct Connection {
    sftp: Sftp,
    _ssh: tokio::process::Child,
}

impl std::fmt::Debug for SftpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SftpBackend({})", self.inner.location)
    }
}

/// Why a request failed: the server said no (permanent), or the connection broke
/// (open it again and retry).
enum Failure {
    Refused(SftpErrorKind, String),
    Broken(String),
    Engine(Error),
}

impl From<SftpError> for Failure {
    fn from(e: SftpError) -> Self {
        match e {
            SftpError::SftpError(kind, message) => Failure::Refused(kind, message.to_string()),
            other => Failure::Broken(other.to_string()),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Engine(e)
    }
}

type Attempt<T> = std::result::Result<T, Failure>;

impl SftpBackend {
    pub fn new(location: SftpLocation, settings: &SftpSettings) -> Result<Self> {
        Ok(SftpBackend {
            inner: Arc::new(Inner {
                location,
                settings: settings.clone(),
                runtime: remote::runtime("cairn-sftp")?,
                connection: tokio::sync::Mutex::new(None),
                health: Health::default(),
                swept: AtomicBool::new(false),
                packs: PackCache::new(),
            }),
        })
    }

    fn shown(&self) -> String {
        self.inner.location.to_string()
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.inner.location.path)
    }

    /// The ssh command line: BatchMode so that nothing is ever asked (an unknown
    /// host key or a password prompt fails instead), the user's own configuration
    /// for everything else.
    fn ssh_command(&self) -> tokio::process::Command {
        let location = &self.inner.location;
        let settings = &self.inner.settings;
        let words = settings
            .command
            .clone()
            .unwrap_or_else(|| vec!["ssh".to_owned()]);
        let mut command = tokio::process::Command::new(&words[0]);
        command.args(&words[1..]);
        match &settings.key_passphrase {
            None => {
                command.args(["-o", "BatchMode=yes"]);
            }
            // BatchMode would not ask for the key's passphrase either: ssh asks this
            // program instead (as its askpass helper), which answers that question
            // alone; passwords are never tried.
            Some(passphrase) => {
                command
                    .args(["-o", "PasswordAuthentication=no"])
                    .args(["-o", "KbdInteractiveAuthentication=no"])
                    // The running binary, even once a package upgrade replaced it.
                    .env("SSH_ASKPASS", format!("/proc/{}/exe", std::process::id()))
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .env(ASKPASS_FLAG, "1")
                    .env(ASKPASS_SECRET, passphrase.expose_secret());
            }
        }
        command.args(["-o", "ServerAliveInterval=30"]);
        if let Some(port) = location.port {
            command.arg("-p").arg(port.to_string());
        }
        if let Some(identity) = &settings.identity {
            command.arg("-i").arg(identity);
        }
        if let Some(user) = &location.user {
            command.arg("-l").arg(user);
        }
        command
            .arg("-s")
            .arg("--")
            .arg(&location.host)
            .arg("sftp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn connect(&self) -> Result<Arc<Connection>> {
        let mut slot = self.inner.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(Arc::clone(connection));
        }
        let mut ssh = self.ssh_command().spawn().map_err(|e| Error::Remote {
            action: "starting ssh".into(),
            location: self.shown(),
            reason: format!("{e}; install openssh-client or set --option sftp.command"),
            denied: false,
        })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (ssh.stdin.take(), ssh.stdout.take(), ssh.stderr.take())
        else {
            return Err(Error::Remote {
                action: "starting ssh".into(),
                location: self.shown(),
                reason: "its pipes could not be opened".into(),
                denied: false,
            });
        };
        match Sftp::new(stdin, stdout, SftpOptions::default()).await {
            Ok(sftp) => {
                // ssh's own messages (warnings) are read and dropped, so a chatty
                // ssh never blocks on a full pipe.
                tokio::spawn(async move {
                    let mut sink = [0u8; 4096];
                    while matches!(stderr.read(&mut sink).await, Ok(n) if n > 0) {}
                });
                let connection = Arc::new(Connection { sftp, _ssh: ssh });
                *slot = Some(Arc::clone(&connection));
                Ok(connection)
            }
            Err(e) => {
                let mut said = String::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), stderr.read_to_string(&mut said))
                        .await;
                let _ = ssh.kill().await;
                Err(self.connect_failed(&said, &e.to_string()))
            }
        }
    }

    /// What ssh said, turned into what to do.
    fn connect_failed(&self, ssh_said: &str, sftp_error: &str) -> Error {
        let said = ssh_said.trim();
        let host = &self.inner.location.host;
        let (advice, denied) = if said.contains("Host key verification failed")
            || said.contains("No ") && said.contains("host key is known")
        {
            (
                format!(
                    "the server's host key is not in known_hosts; check its fingerprint with the server's admin, then add it (ssh-keyscan {host} >> ~/.ssh/known_hosts, or connect once with ssh). cairn never accepts an unknown host key"
                ),
                true,
            )
        } else if said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            (
                "the server's host key changed since it was recorded in known_hosts: find out why before trusting it".to_owned(),
                true,
            )
        } else if said.contains("Permission denied") {
            (
                "the server refused the login: check the user, that the key (--option sftp.identity, the agent or ~/.ssh/id_*) is in the server's authorized_keys, and for a key with a passphrase that it is given (cairn repo add --ssh-key-passphrase-file)".to_owned(),
                true,
            )
        } else if said.contains("Could not resolve hostname") {
            (format!("{host} does not resolve: check the name"), false)
        } else if said.contains("Connection refused") || said.contains("timed out") {
            (
                format!(
                    "{host} did not accept an SSH connection: check the host, the port and that sshd runs"
                ),
                false,
            )
        } else if said.contains("subsystem request failed") {
            (
                "the server offers no sftp subsystem: enable `Subsystem sftp` in its sshd_config"
                    .to_owned(),
                false,
            )
        } else {
            (
                "check that `ssh` to the server works with these settings".to_owned(),
                false,
            )
        };
        let said = if said.is_empty() { sftp_error } else { said };
        self.inner.health.failed(said.to_owned());
        Error::Remote {
            action: "connecting".into(),
            location: self.shown(),
            reason: format!("ssh said: {said}; {advice}"),
            denied,
        }
    }

    /// Runs one request, opening the connection again and retrying (with backoff and
    /// jitter) when it broke.
    fn request<T>(
        &self,
        action: &str,
        mut op: impl AsyncFnMut(Arc<Connection>) -> Attempt<T>,
    ) -> Result<T> {
        self.inner.runtime.block_on(async {
            let mut attempt = 1;
            loop {
                let connection = self.connect().await?;
                match op(connection).await {
                    Ok(value) => return Ok(value),
                    Err(Failure::Engine(e)) => return Err(e),
                    Err(Failure::Refused(kind, message)) => {
                        return Err(self.refused(action, kind, &message));
                    }
                    Err(Failure::Broken(reason)) => {
                        *self.inner.connection.lock().await = None;
                        if attempt >= ATTEMPTS {
                            self.inner.health.failed(reason.clone());
                            return Err(Error::Remote {
                                action: action.to_owned(),
                                location: self.shown(),
                                reason: format!(
                                    "{reason} (the connection broke {ATTEMPTS} times; check the network and the server)"
                                ),
                                denied: false,
                            });
                        }
                        self.inner
                            .health
                            .retried(&self.shown(), action, attempt, &reason);
                        tokio::time::sleep(remote::backoff(attempt)).await;
                        attempt += 1;
                    }
                }
            }
        })
    }

    fn refused(&self, action: &str, kind: SftpErrorKind, message: &str) -> Error {
        // A missing object is an answer (a lookup before init, a deleted pack), not a
        // failure of the storage.
        if !matches!(kind, SftpErrorKind::NoSuchFile) {
            self.inner.health.failed(format!("{action}: {message}"));
        }
        match kind {
            SftpErrorKind::NoSuchFile => Error::io(
                format!("{action} at {}", self.shown()),
                std::io::Error::new(std::io::ErrorKind::NotFound, message.to_owned()),
            ),
            SftpErrorKind::PermDenied => Error::Remote {
                action: action.to_owned(),
                location: self.shown(),
                reason: format!(
                    "permission denied ({message}); the SSH user must own the repository's directory"
                ),
                denied: true,
            },
            _ => Error::Remote {
                action: action.to_owned(),
                location: self.shown(),
                reason: format!("the server said: {message} ({kind:?})"),
                denied: false,
            },
        }
    }

    fn stat(&self, name: &str) -> Result<Option<u64>> {
        let path = self.path(name);
        let result = self.request(
            &format!("looking up {}", layout::describe(name)),
            async |c| Ok(c.sftp.fs().metadata(&path).await?.len().unwrap_or(0)),
        );
        match result {
            Ok(len) => Ok(Some(len)),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `body` to a temporary file and renames it to `name`. The upload
    /// streams (a staged pack is sent piece by piece, never held in memory); a broken
    /// connection starts the object over.
    fn put(&self, name: &str, mut body: Body<'_>) -> Result<()> {
        self.sweep_stale_temp_files();
        let temp = self.path(&format!(
            "tmp/{}.tmp",
            hex::encode(crate::crypto::random_bytes::<12>())
        ));
        let target = self.path(name);
        let location = self.shown();
        let action = format!("writing {}", layout::describe(name));
        let result = self.request(&action, async |c| {
            let sftp = &c.sftp;
            let mut file = sftp
                .options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)
                .await?;
            match &mut body {
                Body::Bytes(bytes) => file.write_all(bytes).await?,
                Body::File(staged) => {
                    staged.seek(SeekFrom::Start(0)).map_err(|e| {
                        Error::storage("reading a staged pack", location.clone(), e)
                    })?;
                    let mut piece = vec![0u8; UPLOAD_PIECE];
                    loop {
                        let n = staged.read(&mut piece).map_err(|e| {
                            Error::storage("reading a staged pack", location.clone(), e)
                        })?;
                        if n == 0 {
                            break;
                        }
                        file.write_all(&piece[..n]).await?;
                    }
                }
            }
            if sftp.support_fsync() {
                file.sync_all().await?;
            }
            file.close().await?;
            let mut fs = sftp.fs();
            match fs.rename(&temp, &target).await {
                Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => {
                    // The directory of a pack's two-hex prefix, made on first use.
                    if let Some((dir, _)) = target.rsplit_once('/') {
                        let _ = fs.create_dir(dir).await;
                    }
                    fs.rename(&temp, &target).await?;
                }
                other => other?,
            }
            Ok(())
        });
        if result.is_err() {
            let _ = self.request("removing a temporary file", async |c| {
                let _ = c.sftp.fs().remove_file(&temp).await;
                Ok(())
            });
        }
        result
    }

    /// Removes temporary files of writers that died, once per process.
    fn sweep_stale_temp_files(&self) {
        if self.inner.swept.swap(true, Ordering::Relaxed) {
            return;
        }
        let dir = self.path("tmp");
        let _ = self.request("sweeping tmp", async |c| {
            let now = std::time::SystemTime::now();
            let mut fs = c.sftp.fs();
            let mut stale = Vec::new();
            let listing = fs.open_dir(&dir).await?;
            let entries = listing.read_dir();
            let mut entries = std::pin::pin!(entries);
            while let Some(entry) = entries.next().await {
                let entry = entry?;
                let old = entry
                    .metadata()
                    .modified()
                    .and_then(|m| now.duration_since(m.as_system_time()).ok())
                    .is_some_and(|age| age > STALE_TEMP);
                let name = entry.filename().to_string_lossy().into_owned();
                if old && name.ends_with(".tmp") {
                    stale.push(format!("{dir}/{name}"));
                }
            }
            for path in &stale {
                let _ = fs.remove_file(path).await;
            }
            if !stale.is_empty() {
                tracing::info!(
                    files = stale.len(),
                    "removed temporary files left by interrupted writes"
                );
            }
            Ok(())
        });
    }
}

impl SftpBackend {
    /// Downloads a whole object into a local spool, checked (see
    /// [`remote::fetch_checked`]).
    fn download(&self, name: &str) -> Result<SpoolFile> {
        let path = self.path(name);
        let location = self.shown();
        let action = format!("reading {}", layout::describe(name));
        remote::fetch_checked(&self.inner.health, &location, name, None, || {
            // A new spool per attempt: a connection that broke midway starts over.
            let spool = self.request(&action, async |c| {
                let mut spool = Spooled::new(&location)?;
                let mut file = c.sftp.open(&path).await?;
                let len = file.metadata().await?.len().unwrap_or(0);
                let mut left = len;
                while left > 0 {
                    let want = left.min(READ_PIECE);
                    let bytes = file.read_all(want as usize, BytesMut::new()).await?;
                    spool.append(&location, &bytes)?;
                    left -= bytes.len() as u64;
                }
                Ok(spool)
            })?;
            spool.finish(&location, name)
        })
    }

    fn fetcher(&self) -> Fetch {
        let backend = self.clone();
        Arc::new(move |name: &str| backend.download(name))
    }
}

impl Uploader for SftpBackend {
    fn destination(&self) -> String {
        self.shown()
    }

    fn upload(&self, file: &mut File, _len: u64, name: &str) -> Result<()> {
        self.put(name, Body::File(file))
    }
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.shown()
    }

    fn create(&self) -> Result<()> {
        if self.stat(layout::CONFIG)?.is_some() {
            return Err(Error::AlreadyInitialized { path: self.shown() });
        }
        let root = self.inner.location.path.clone();
        self.request("creating the repository's directories", async |c| {
            let mut fs = c.sftp.fs();
            // Each missing parent, as `mkdir -p` does; an existing one is fine.
            let mut made = String::new();
            for part in root.split('/') {
                if !made.is_empty() || root.starts_with('/') {
                    made.push('/');
                }
                made.push_str(part);
                if part.is_empty() {
                    continue;
                }
                if let Err(e) = fs.create_dir(&made).await
                    && fs.metadata(&made).await.is_err()
                {
                    return Err(e.into());
                }
            }
            let listing = fs.open_dir(&root).await?;
            let entries = listing.read_dir();
                let mut entries = std::pin::pin!(entries);
            while let Some(entry) = entries.next().await {
                let name = entry?.filename().to_string_lossy().into_owned();
                let ours = KINDS.contains(&name.as_str()) || name == "tmp";
                if !ours && name != "." && name != ".." {
                    return Err(Failure::Engine(Error::invalid(
                        format!("repository path {root}"),
                        format!("the directory is not empty (it holds {name}); choose an empty or new directory"),
                    )));
                }
            }
            for kind in KINDS.iter().chain(std::iter::once(&"tmp")) {
                let dir = format!("{root}/{kind}");
                if let Err(e) = fs.create_dir(&dir).await
                    && fs.metadata(&dir).await.is_err()
                {
                    return Err(e.into());
                }
            }
            Ok(())
        })
    }

    fn read(&self, name: &str, max_len: u64) -> Result<Vec<u8>> {
        let path = self.path(name);
        let action = format!("reading {}", layout::describe(name));
        remote::fetch_checked(&self.inner.health, &self.shown(), name, None, || {
            self.request(&action, async |c| {
                let mut file = c.sftp.open(&path).await?;
                let len = file.metadata().await?.len().unwrap_or(0);
                if len > max_len {
                    return Err(Failure::Engine(Error::TooLarge {
                        object: layout::describe(name),
                        size: len,
                        limit: max_len,
                    }));
                }
                let bytes = read_to_end(&mut file, len).await?;
                Ok(remote::fetched_bytes(bytes))
            })
        })
    }

    fn open(&self, name: &str) -> Result<Box<dyn ObjectReader>> {
        self.inner.packs.open(name, &self.fetcher())
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<()> {
        self.put(name, Body::Bytes(data))
    }

    fn stage(&self) -> Result<Box<dyn StagedObject>> {
        Ok(Box::new(RemoteStaged::new(self.clone())?))
    }

    fn list(&self, kind: &str) -> Result<Vec<ObjectInfo>> {
        let top = self.path(kind);
        self.request(&format!("listing {kind}"), async |c| {
            let mut fs = c.sftp.fs();
            let mut out = Vec::new();
            let mut pending = vec![top.clone()];
            while let Some(dir) = pending.pop() {
                let listing = match fs.open_dir(&dir).await {
                    Ok(listing) => listing,
                    // A kind added to the format after the repository was made.
                    Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) if dir == top => {
                        break;
                    }
                    Err(e) => return Err(e.into()),
                };
                let entries = listing.read_dir();
                let mut entries = std::pin::pin!(entries);
                while let Some(entry) = entries.next().await {
                    let entry = entry?;
                    let name = entry.filename().to_string_lossy().into_owned();
                    if name == "." || name == ".." {
                        continue;
                    }
                    let meta = entry.metadata();
                    match meta.file_type() {
                        Some(t) if t.is_dir() => pending.push(format!("{dir}/{name}")),
                        Some(t) if t.is_file() => out.push(ObjectInfo {
                            name,
                            size: meta.len().unwrap_or(0),
                        }),
                        _ => {}
                    }
                }
            }
            Ok(out)
        })
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        self.stat(name)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        self.request(
            &format!("deleting {}", layout::describe(name)),
            async |c| match c.sftp.fs().remove_file(&path).await {
                Ok(()) | Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => Ok(()),
                Err(e) => Err(e.into()),
            },
        )
    }

    fn parallel_uploads(&self) -> usize {
        2
    }

    fn reads_ahead(&self) -> bool {
        true
    }

    fn prefetch(&self, names: &[String]) {
        self.inner.packs.prefetch(names, &self.fetcher());
    }

    fn health(&self) -> Option<BackendHealth> {
        Some(self.inner.health.snapshot())
    }
}

async fn read_to_end(file: &mut openssh_sftp_client::file::File, len: u64) -> Attempt<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut left = len;
    while left > 0 {
        let want = left.min(READ_PIECE);
        let bytes = file.read_all(want as usize, BytesMut::new()).await?;
        out.extend_from_slice(&bytes);
        left -= bytes.len() as u64;
    }
    Ok(out)
}
