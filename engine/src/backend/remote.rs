//! What the network backends (S3, SFTP) share: a small runtime of their own (the
//! engine stays synchronous at its API), staging of large objects in an anonymous
//! local file, downloads checked against the object's name, and a record of retries
//! and the last error for the operator.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::pack_cache::SpoolFile;
use super::{ObjectReader, StagedObject};
use crate::error::{Error, Result};
use crate::layout;

/// How a backend has fared since it was opened: what the repositories screen and a
/// run's log show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendHealth {
    /// Requests that failed transiently and were tried again.
    pub retries: u64,
    /// The last failure (transient or not), as the backend reported it.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Health {
    retries: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Health {
    pub fn retried(&self, location: &str, what: &str, attempt: u32, error: &dyn std::fmt::Display) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let text = error.to_string();
        tracing::warn!(repository = %location, request = what, attempt, error = %text, "storage request failed; retrying");
        self.failed(text);
    }

    pub fn failed(&self, text: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }

    pub fn snapshot(&self) -> BackendHealth {
        BackendHealth {
            retries: self.retries.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// A runtime for one backend's requests: two worker threads, so requests of
/// several engine threads proceed at once while the engine itself stays synchronous.
pub(crate) fn runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("starting the {name} threads"), e))
}

/// How long to wait before attempt `attempt + 1`: doubling from 200 ms, at most 10 s,
/// with jitter (half to all of it) so clients that failed together do not retry
/// together.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    let base = 200u64 << attempt.min(6);
    let jitter = u64::from(crate::crypto::random_bytes::<2>()[0]) * base / 255;
    std::time::Duration::from_millis((base / 2 + jitter).min(10_000))
}

/// The hash an object's name promises, for the kinds named by the BLAKE3 hash of
/// their stored bytes (everything but `config` and lock records).
pub(crate) fn promised_hash(name: &str) -> Option<[u8; 32]> {
    let (kind, id) = name.split_once('/')?;
    let id = id.rsplit('/').next()?;
    let named = [
        layout::KEYS,
        layout::DATA,
        layout::INDEX,
        layout::SNAPSHOTS,
        layout::FORGOTTEN,
        layout::CONDEMNED,
    ];
    if !named.contains(&kind) {
        return None;
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(id, &mut hash).ok()?;
    Some(hash)
}

/// How many times a download whose bytes do not match the object's size or name is
/// fetched again before the bytes are taken as what the storage holds.
pub(crate) const FETCH_ATTEMPTS: u32 = 4;

/// What one download brought.
pub(crate) struct Fetched<T> {
    pub body: T,
    pub len: u64,
    pub hash: [u8; 32],
}

/// Downloads `name` until its length matches `expected_len` (when known) and its
/// hash the one its name promises. A transfer cut short or altered on the way is
/// caught here and fetched again, never handed on. When every attempt brings the
/// same whole-length object with a wrong hash, the storage itself holds those bytes:
/// they are returned, and the engine's checks name the damage.
pub(crate) fn fetch_checked<T>(
    health: &Health,
    location: &str,
    name: &str,
    expected_len: Option<u64>,
    mut fetch: impl FnMut() -> Result<Fetched<T>>,
) -> Result<T> {
    let promised = promised_hash(name);
    let mut attempt = 1;
    loop {
        let fetched = match fetch() {
            Ok(fetched) => fetched,
            // A body that ended before its announced length, after the backend's own
            // retries: one more fetch of the whole object.
            Err(e) if e.is_short_transfer() && attempt < FETCH_ATTEMPTS => {
                health.retried(location, "GET", attempt, &e);
                attempt += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let short = expected_len.filter(|&want| want != fetched.len);
        let altered = promised.is_some_and(|p| p != fetched.hash);
        let problem = match (short, altered) {
            (Some(want), _) => format!(
                "{} arrived with {} bytes, the storage lists {want}",
                layout::describe(name),
                fetched.len
            ),
            (None, true) => format!(
                "{} arrived with bytes that do not match its name",
                layout::describe(name)
            ),
            (None, false) => return Ok(fetched.body),
        };
        if attempt >= FETCH_ATTEMPTS {
            if short.is_none() {
                return Ok(fetched.body);
            }
            health.failed(problem.clone());
            return Err(Error::storage(
                format!("reading {}", layout::describe(name)),
                location,
                io::Error::new(io::ErrorKind::UnexpectedEof, problem),
            ));
        }
        health.retried(location, "GET", attempt, &problem);
        attempt += 1;
    }
}

/// A download kept in an anonymous local file (gone when closed, also after a
/// crash): random access to a pack without holding it in memory.
pub(crate) struct Spooled {
    pub file: File,
    pub len: u64,
    pub hasher: blake3::Hasher,
}

impl Spooled {
    pub fn new(location: &str) -> Result<Self> {
        Ok(Spooled {
            file: tempfile::tempfile().map_err(|e| staging_failed(location, e))?,
            len: 0,
            hasher: blake3::Hasher::new(),
        })
    }

    pub fn append(&mut self, location: &str, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .map_err(|e| staging_failed(location, e))
    }

    /// The whole download, rewound; `verified` when its bytes match the hash `name`
    /// promises.
    pub fn finish(mut self, location: &str, name: &str) -> Result<Fetched<SpoolFile>> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| staging_failed(location, e))?;
        let hash = *self.hasher.finalize().as_bytes();
        Ok(Fetched {
            len: self.len,
            hash,
            body: SpoolFile {
                file: self.file,
                len: self.len,
                verified: promised_hash(name).is_none_or(|p| p == hash),
            },
        })
    }
}

fn staging_failed(location: &str, e: io::Error) -> Error {
    Error::storage(
        "staging a transfer in a local temporary file (TMPDIR)",
        location,
        e,
    )
}

/// Hash and length of bytes held in memory.
pub(crate) fn fetched_bytes(bytes: Vec<u8>) -> Fetched<Vec<u8>> {
    Fetched {
        len: bytes.len() as u64,
        hash: *blake3::hash(&bytes).as_bytes(),
        body: bytes,
    }
}

/// Something that can store a staged file under its final name in one step.
pub(crate) trait Uploader: Send + Sync + 'static {
    fn destination(&self) -> String;
    fn upload(&self, file: &mut File, len: u64, name: &str) -> Result<()>;
}

/// A pack being written: kept in an anonymous local file, uploaded whole under its
/// name on commit, so an interrupted backup leaves nothing under a final name.
pub(crate) struct RemoteStaged<U: Uploader> {
    uploader: U,
    file: File,
}

impl<U: Uploader> RemoteStaged<U> {
    pub fn new(uploader: U) -> Result<Self> {
        let location = uploader.destination();
        let file = tempfile::tempfile().map_err(|e| staging_failed(&location, e))?;
        Ok(RemoteStaged { uploader, file })
    }
}

impl<U: Uploader> Write for RemoteStaged<U> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl<U: Uploader> StagedObject for RemoteStaged<U> {
    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let location = self.uploader.destination();
        let len = self
            .file
            .seek(SeekFrom::End(0))
            .map_err(|e| staging_failed(&location, e))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| staging_failed(&location, e))?;
        self.uploader.upload(&mut self.file, len, name)
    }

    fn read_back(&mut self) -> Result<Box<dyn ObjectReader + '_>> {
        let location = self.uploader.destination();
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| staging_failed(&location, e))?;
        Ok(Box::new(io::BufReader::new(&mut self.file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_named_objects_promise_their_hash() {
        let id = "ab".repeat(32);
        assert!(promised_hash(&format!("data/ab/{id}")).is_some());
        assert!(promised_hash(&format!("index/{id}")).is_some());
        assert!(promised_hash(&format!("snapshots/{id}")).is_some());
        assert!(promised_hash("config").is_none());
        assert!(promised_hash(&format!("locks/{id}")).is_none());
        assert!(promised_hash("index/not-hex").is_none());
    }

    #[test]
    fn a_short_or_altered_download_is_fetched_again_and_then_refused_or_passed_on() {
        let health = Health::default();
        let good = b"pack bytes".to_vec();
        let name = format!("data/xx/{}", hex::encode(blake3::hash(&good).as_bytes()));
        // Cut short twice, then whole: the whole one is returned, two retries counted.
        let mut answers = vec![good.clone(), good[..3].to_vec(), good[..4].to_vec()];
        let got = fetch_checked(&health, "s3:test", &name, Some(good.len() as u64), || {
            Ok(fetched_bytes(answers.pop().expect("asked too often")))
        })
        .expect("fetched");
        assert_eq!(got, good);
        assert_eq!(health.snapshot().retries, 2);

        // Always short: an error naming the object, never the short bytes.
        let error = fetch_checked(&health, "s3:test", &name, Some(good.len() as u64), || {
            Ok(fetched_bytes(good[..5].to_vec()))
        })
        .expect_err("short");
        assert!(error.to_string().contains("s3:test"), "{error}");
        assert!(
            health
                .snapshot()
                .last_error
                .expect("recorded")
                .contains("arrived with 5 bytes")
        );

        // Whole length but a wrong hash every time: what the storage holds is handed
        // on for the engine's checks to judge.
        let mut flipped = good.clone();
        flipped[0] ^= 1;
        let got = fetch_checked(&health, "s3:test", &name, Some(good.len() as u64), || {
            Ok(fetched_bytes(flipped.clone()))
        })
        .expect("passed on");
        assert_eq!(got, flipped);
    }
}
