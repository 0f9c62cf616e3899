//! A repository in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage,
//! SeaweedFS, B2, Wasabi), through opendal: signing, retries with backoff and jitter,
//! timeouts. Every object is one PUT (packs stay far below S3's 5 GiB limit), so an
//! interrupted upload never leaves anything under its final name and no multipart
//! upload is ever left behind to clean.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use age::secrecy::{ExposeSecret, SecretString};
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind as OdErrorKind, Operator};

use super::location::S3Location;
use super::pack_cache::{Fetch, PackCache, SpoolFile};
use super::remote::{self, BackendHealth, Health, RemoteStaged, Spooled, Uploader};
use super::s3_put::{self, PutFailure};
use super::{Backend, ObjectInfo, ObjectReader, StagedObject};
use crate::error::{Error, Result};
use crate::layout;

/// What to check when the endpoint refuses who we are.
const CREDENTIALS_ADVICE: &str = "the endpoint refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the sealed S3 secret), the region, and the bucket's policy";

/// Credentials for an S3 endpoint. The secret never appears in Debug output.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Credentials {
    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(access_key_id), Some(secret)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(Error::invalid(
                "S3 credentials",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)",
            ));
        };
        Ok(S3Credentials {
            access_key_id,
            secret_access_key: SecretString::from(secret),
            session_token: var("AWS_SESSION_TOKEN").map(SecretString::from),
        })
    }
}

/// How to talk to the endpoint (`--option s3.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub region: String,
    /// `bucket.host` instead of `host/bucket` (AWS's default; path style is what
    /// MinIO, Ceph and SeaweedFS expect, so it is the default for custom endpoints).
    pub virtual_host: bool,
    /// Packs uploaded at once.
    pub connections: usize,
    pub storage_class: Option<String>,
    /// Retries of one request before it fails.
    pub retries: usize,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            region: std::env::var("AWS_DEFAULT_REGION")
                .or_else(|_| std::env::var("AWS_REGION"))
                .ok()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".to_owned()),
            virtual_host: false,
            connections: 2,
            storage_class: None,
            retries: 6,
        }
    }
}

#[derive(Clone)]
pub struct S3Backend {
    inner: Arc<Inner>,
}

struct Inner {
    location: S3Location,
    op: Operator,
    runtime: tokio::runtime::Runtime,
    health: Arc<Health>,
    connections: usize,
    packs: Arc<PackCache>,
    /// Streamed uploads of packs (`s3_put`), and how often each is tried again.
    http: reqwest::Client,
    retries: usize,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Backend({})", self.inner.location)
    }
}

impl S3Backend {
    pub fn new(
        location: S3Location,
        credentials: &S3Credentials,
        settings: &S3Settings,
    ) -> Result<Self> {
        opendal::init_default_registry();
        opendal::install_default();
        let mut builder = opendal::services::S3::default()
            .endpoint(&location.endpoint)
            .bucket(&location.bucket)
            .root(&format!("/{}", location.prefix))
            .region(&settings.region)
            .access_key_id(&credentials.access_key_id)
            .secret_access_key(credentials.secret_access_key.expose_secret())
            .disable_config_load()
            .disable_ec2_metadata();
        if let Some(token) = &credentials.session_token {
            builder = builder.session_token(token.expose_secret());
        }
        if settings.virtual_host {
            builder = builder.enable_virtual_host_style();
        }
        if let Some(class) = &settings.storage_class {
            builder = builder.default_storage_class(class);
        }
        let health = Arc::new(Health::default());
        let shown = location.to_string();
        let notify = {
            let health = Arc::clone(&health);
            move |event: opendal::layers::RetryEvent<'_>| {
                health.retried(
                    &shown,
                    &format!("{:?}", event.op),
                    event.attempt,
                    &short_error(event.err),
                );
            }
        };
        let op = Operator::new(builder)
            .map_err(|e| Error::invalid(format!("S3 location {location}"), short_error(&e)))?
            .layer(
                TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(120))
                    .with_io_timeout(Duration::from_secs(30)),
            )
            .layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_factor(2.0)
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(10))
                    .with_max_times(settings.retries)
                    .with_notify(notify),
            );
        Ok(S3Backend {
            inner: Arc::new(Inner {
                location,
                op,
                runtime: remote::runtime("cairn-s3")?,
                health,
                connections: settings.connections.max(1),
                packs: PackCache::new(),
                http: s3_put::client().map_err(|e| {
                    Error::io(
                        "starting the S3 upload client",
                        std::io::Error::other(e.to_string()),
                    )
                })?,
                retries: settings.retries,
            }),
        })
    }

    fn block_on<T>(&self, future: impl IntoFuture<Output = T>) -> T {
        self.inner.runtime.block_on(future.into_future())
    }

    fn failed(&self, action: impl Into<String>, e: &opendal::Error) -> Error {
        let action = action.into();
        let reason = short_error(e);
        if e.kind() != OdErrorKind::NotFound {
            self.inner.health.failed(format!("{action}: {reason}"));
        }
        let location = Backend::location(self);
        if reason.contains("NoSuchBucket") {
            return Error::Remote {
                action,
                location,
                reason: format!(
                    "the bucket {} does not exist; create it first (cairn does not create buckets, so a typo cannot make one)",
                    self.inner.location.bucket
                ),
                denied: false,
            };
        }
        match e.kind() {
            OdErrorKind::NotFound => Error::io(
                format!("{action} at {location}"),
                std::io::Error::new(std::io::ErrorKind::NotFound, reason),
            ),
            OdErrorKind::PermissionDenied => Error::Remote {
                action,
                location,
                reason: format!("{reason}; {CREDENTIALS_ADVICE}"),
                denied: true,
            },
            _ => Error::Remote {
                action,
                location,
                reason: format!(
                    "{reason} (after {} retries in all; check the endpoint's address and that it is up)",
                    self.inner.health.snapshot().retries
                ),
                denied: false,
            },
        }
    }

    fn stat(&self, name: &str) -> Result<Option<u64>> {
        match self.block_on(self.inner.op.stat(name)) {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(e) if e.kind() == OdErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed(format!("looking up {}", layout::describe(name)), &e)),
        }
    }

    /// The size of an object that must exist (a missing one is NotFound).
    fn existing_size(&self, name: &str) -> Result<u64> {
        self.stat(name)?.ok_or_else(|| {
            Error::io(
                format!("{} at {}", layout::describe(name), Backend::location(self)),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
            )
        })
    }

    /// A whole small object, in memory.
    fn get(&self, name: &str, size: u64) -> Result<opendal::Buffer> {
        let action = format!("reading {}", layout::describe(name));
        match self.block_on(self.inner.op.read_with(name).range(0..size)) {
            Ok(buffer) if buffer.len() as u64 == size => Ok(buffer),
            Ok(buffer) => Err(short_read(
                &action,
                &Backend::location(self),
                buffer.len() as u64,
                size,
            )),
            Err(e) => Err(self.read_failed(&action, &e, size)),
        }
    }

    /// Streams a whole object into a local spool, in one request.
    fn get_into(&self, name: &str, size: u64, spool: &mut Spooled) -> Result<()> {
        use futures_util::StreamExt;
        let action = format!("reading {}", layout::describe(name));
        let location = Backend::location(self);
        self.block_on(async {
            let reader = self
                .inner
                .op
                .reader(name)
                .await
                .map_err(|e| self.read_failed(&action, &e, size))?;
            let mut parts = reader
                .into_stream(0..size)
                .await
                .map_err(|e| self.read_failed(&action, &e, size))?;
            while let Some(part) = parts.next().await {
                let part = part.map_err(|e| self.read_failed(&action, &e, size))?;
                for chunk in part {
                    spool.append(&location, &chunk)?;
                }
            }
            Ok(())
        })
    }

    fn read_failed(&self, action: &str, e: &opendal::Error, want: u64) -> Error {
        // opendal's own check of a body shorter than its range.
        if e.message().contains("too little data") {
            return short_read(action, &Backend::location(self), 0, want);
        }
        self.failed(action, e)
    }

    /// Downloads a whole object into a local spool, checked (see
    /// [`remote::fetch_checked`]).
    fn download(&self, name: &str) -> Result<SpoolFile> {
        let size = self.existing_size(name)?;
        let location = Backend::location(self);
        let health = Arc::clone(&self.inner.health);
        remote::fetch_checked(&health, &location, name, Some(size), || {
            let mut spool = Spooled::new(&location)?;
            self.get_into(name, size, &mut spool)?;
            spool.finish(&location, name)
        })
    }

    fn fetcher(&self) -> Fetch {
        let backend = self.clone();
        Arc::new(move |name: &str| backend.download(name))
    }
}

fn short_read(action: &str, location: &str, got: u64, want: u64) -> Error {
    Error::storage(
        action,
        location,
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the server sent {got} of {want} bytes"),
        ),
    )
}

/// opendal's error without its context dump: kind, message and the server's answer.
fn short_error(e: &opendal::Error) -> String {
    let mut text = format!("{}: {}", e.kind(), e.message());
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Uploader for S3Backend {
    fn destination(&self) -> String {
        self.inner.location.to_string()
    }

    /// One PUT whose body streams from the staged file (see `s3_put`), tried again
    /// with backoff on what is worth retrying, each retry logged.
    fn upload(&self, file: &mut File, len: u64, name: &str) -> Result<()> {
        let location = Backend::location(self);
        let action = format!("writing {}", layout::describe(name));
        let file = Arc::new(
            file.try_clone()
                .map_err(|e| Error::io(format!("staged {name}"), e))?,
        );
        let retries = u32::try_from(self.inner.retries).unwrap_or(u32::MAX);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tried = self.block_on(s3_put::put_file(
                &self.inner.op,
                &self.inner.http,
                name,
                Arc::clone(&file),
                len,
            ));
            let failure = match tried {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            let (reason, denied) = match failure {
                PutFailure::Transient(reason) if attempt <= retries => {
                    self.inner
                        .health
                        .retried(&location, "PUT", attempt, &reason);
                    std::thread::sleep(remote::backoff(attempt));
                    continue;
                }
                PutFailure::Transient(reason) => (
                    format!(
                        "{reason} (after {retries} retries; check the endpoint's address and that it is up)"
                    ),
                    false,
                ),
                PutFailure::Denied(reason) => (format!("{reason}; {CREDENTIALS_ADVICE}"), true),
                PutFailure::Refused(reason) => (reason, false),
            };
            self.inner.health.failed(format!("{action}: {reason}"));
            return Err(Error::Remote {
                action,
                location,
                reason,
                denied,
            });
        }
    }
}

impl S3Backend {
    fn put(&self, name: &str, body: Vec<u8>) -> Result<()> {
        self.block_on(self.inner.op.write(name, body))
            .map(|_| ())
            .map_err(|e| self.failed(format!("writing {}", layout::describe(name)), &e))
    }
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.inner.location.to_string()
    }

    fn create(&self) -> Result<()> {
        if self.stat(layout::CONFIG)?.is_some() {
            return Err(Error::AlreadyInitialized {
                path: Backend::location(self),
            });
        }
        // Objects under the prefix but no config: a stopped init left key files (start
        // over), or the prefix holds something else (refuse, as for a local directory).
        let entries = self
            .block_on(self.inner.op.list_with("").recursive(true))
            .map_err(|e| self.failed("listing the repository's prefix", &e))?;
        let mut keys = Vec::new();
        for entry in entries.iter().filter(|e| e.metadata().is_file()) {
            if entry.path().starts_with("keys/") {
                keys.push(entry.path().to_owned());
            } else {
                return Err(Error::invalid(
                    format!("repository location {}", Backend::location(self)),
                    format!(
                        "the prefix is not empty (it holds {}); choose an empty or new prefix",
                        entry.path()
                    ),
                ));
            }
        }
        for key in &keys {
            self.delete(key)?;
        }
        if !keys.is_empty() {
            tracing::info!(repository = %Backend::location(self), files = keys.len(), "finishing an interrupted init");
        }
        Ok(())
    }

    fn read(&self, name: &str, max_len: u64) -> Result<Vec<u8>> {
        let size = self.existing_size(name)?;
        if size > max_len {
            return Err(Error::TooLarge {
                object: layout::describe(name),
                size,
                limit: max_len,
            });
        }
        let health = Arc::clone(&self.inner.health);
        remote::fetch_checked(&health, &Backend::location(self), name, Some(size), || {
            let bytes = if size == 0 {
                Vec::new()
            } else {
                self.get(name, size)?.to_vec()
            };
            Ok(remote::fetched_bytes(bytes))
        })
    }

    fn open(&self, name: &str) -> Result<Box<dyn ObjectReader>> {
        self.inner.packs.open(name, &self.fetcher())
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<()> {
        self.put(name, data.to_vec())
    }

    fn stage(&self) -> Result<Box<dyn StagedObject>> {
        Ok(Box::new(RemoteStaged::new(self.clone())?))
    }

    fn list(&self, kind: &str) -> Result<Vec<ObjectInfo>> {
        let entries = self
            .block_on(self.inner.op.list_with(&format!("{kind}/")).recursive(true))
            .map_err(|e| self.failed(format!("listing {kind}"), &e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| ObjectInfo {
                name: e.name().to_owned(),
                size: e.metadata().content_length(),
            })
            .collect())
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        self.stat(name)
    }

    fn delete(&self, name: &str) -> Result<()> {
        match self.block_on(self.inner.op.delete(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == OdErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed(format!("deleting {}", layout::describe(name)), &e)),
        }
    }

    fn parallel_uploads(&self) -> usize {
        self.inner.connections
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
