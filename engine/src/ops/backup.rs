//! Backup: walk → read → chunk → id → dedup → compress → pack → encrypt → write,
//! then trees, index and finally the snapshot (see FORMAT.md, "Write ordering").

mod listing;
mod mounts;
mod walk;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::Serialize;
use tracing::{info, warn};

use crate::blob::{BlobEncoder, EncodedBlob};
use crate::cancel::CancelToken;
use crate::chunker::ChunkerConfig;
use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};
use crate::pipeline::files::{self, FileJob, FileOutcome, JobOutcomes, StreamError};
use crate::pipeline::packer::{self, BlobSink};
use crate::pipeline::{Counters, Shared};
use crate::progress::Progress;
use crate::repository::IndexedRepository;
use crate::snapshot::{BackupSummary, Snapshot};
use crate::threads::{join, spawn_scoped};
use crate::tree::{Node, NodeKind, Time, Tree};

/// A command whose standard output is stored as one file.
#[derive(Debug, Clone)]
pub struct CommandSource {
    pub program: String,
    pub args: Vec<String>,
    /// Name of the file in the snapshot.
    pub filename: String,
    /// The command's whole environment; `None` inherits this process's (the CLI run
    /// by hand), `Some` starts it with exactly these variables (the daemon).
    pub env: Option<Vec<(std::ffi::OsString, std::ffi::OsString)>>,
}

#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub command: Option<CommandSource>,
    /// Globs: with a `/` matched against the whole path, else against the name.
    pub excludes: Vec<String>,
    pub exclude_caches: bool,
    pub one_file_system: bool,
    pub tags: Vec<String>,
    pub host: Option<String>,
    /// Parent snapshot for change detection; default: latest with same host and paths.
    pub parent: Option<SnapshotId>,
    /// Read every file even when its metadata says it is unchanged.
    pub force_read: bool,
    /// File workers (read, chunk, compress); default: the number of CPUs.
    pub workers: Option<usize>,
    /// The daemon job making this backup, recorded in the snapshot.
    pub job: Option<String>,
    /// The daemon run making this backup, recorded in the snapshot: a daemon that died
    /// before recording the run's end finds its snapshot by it.
    pub run: Option<u64>,
}

impl BackupOptions {
    pub fn paths(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.paths = paths.into_iter().collect();
        self
    }
    pub fn command(mut self, command: CommandSource) -> Self {
        self.command = Some(command);
        self
    }
    pub fn excludes(mut self, globs: Vec<String>) -> Self {
        self.excludes = globs;
        self
    }
    pub fn exclude_caches(mut self, on: bool) -> Self {
        self.exclude_caches = on;
        self
    }
    pub fn one_file_system(mut self, on: bool) -> Self {
        self.one_file_system = on;
        self
    }
    pub fn tags(mut self, tags: Vec<String>) -> Self {
        self.tags = tags;
        self
    }
    pub fn host(mut self, host: Option<String>) -> Self {
        self.host = host;
        self
    }
    pub fn parent(mut self, parent: Option<SnapshotId>) -> Self {
        self.parent = parent;
        self
    }
    pub fn force_read(mut self, on: bool) -> Self {
        self.force_read = on;
        self
    }
    pub fn workers(mut self, workers: Option<usize>) -> Self {
        self.workers = workers;
        self
    }
    pub fn job(mut self, job: Option<String>) -> Self {
        self.job = job;
        self
    }
    pub fn run(mut self, run: Option<u64>) -> Self {
        self.run = run;
        self
    }
}

/// The result of a backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupResult {
    pub snapshot_id: SnapshotId,
    pub parent: Option<SnapshotId>,
    pub summary: BackupSummary,
    /// Per-file problems (vanished, unreadable), each naming the path.
    pub warnings: Vec<String>,
    /// What the operator should know that is not a problem (the repository or a
    /// pseudo filesystem left out, a damaged snapshot record seen in the repository).
    pub notes: Vec<String>,
}

/// The snapshot a backup compares files with.
type Parent = (SnapshotId, Snapshot);

/// What became of the packs no index named.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Proven ours and indexed.
    pub adopted: usize,
    /// Why each refused pack was refused.
    pub refused: Vec<String>,
}

/// Events from the walker to the tree assembler, in walk order. A file that is read
/// names the job it went in; a job's outcomes arrive together, in walk order.
enum Event {
    Enter(Node),
    Leaf(Node, Option<JobOutcomes>, PathBuf),
    Leave,
}

/// File counters kept by the walker and the assembler.
#[derive(Debug, Default)]
struct FileCounts {
    new: AtomicU64,
    changed: AtomicU64,
    unchanged: AtomicU64,
    dirs: AtomicU64,
    other: AtomicU64,
    bytes_total: AtomicU64,
}

impl IndexedRepository {
    /// Backs up paths and/or a command's output and writes a snapshot.
    pub fn backup(
        &mut self,
        options: &BackupOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<BackupResult> {
        let started = Instant::now();
        let sources = normalise_sources(&options.paths)?;
        if sources.is_empty() && options.command.is_none() {
            return Err(Error::invalid(
                "backup",
                "nothing to back up: give at least one path or a command",
            ));
        }
        if let Some(command) = &options.command {
            crate::tree::check_name(command.filename.as_bytes()).map_err(|reason| {
                Error::invalid(format!("--stdin-filename {:?}", command.filename), reason)
            })?;
        }
        let host = options.host.clone().unwrap_or_else(crate::host::hostname);
        let paths = recorded_paths(&sources, options.command.as_ref());
        // Before anything is looked up (see FORMAT.md, "Prune"): the lock tells a
        // prune which condemned packs this backup leaves alone.
        let lock = self.take_backup_lock()?;
        let (parent, mut repository_notes) = self.choose_parent(options, &host, &paths)?;
        let parent_tree = parent.as_ref().map(|(_, snapshot)| snapshot.tree);
        let rules = listing::DescentRules {
            excludes: walk::Excludes::new(&options.excludes)?,
            one_file_system: options.one_file_system,
            exclude_caches: options.exclude_caches,
            repository: self
                .repo
                .backend()
                .local_root()
                .and_then(|root| crate::fsmeta::stat_following(root).ok())
                .map(|stat| (stat.dev, stat.ino)),
            pseudo: std::sync::Arc::new(mounts::PseudoFilesystems::load()),
        };
        self.index.enable_bloom()?;
        // Adopting packs means reading them: a write-only key cannot, so the blobs of
        // a killed write-only backup are stored again (its own index cache is what it
        // deduplicates against; see FORMAT.md, "Write-only keys").
        let recovered = if self.repo.can_read() {
            self.recover_unindexed_packs()?
        } else {
            Recovered::default()
        };
        repository_notes.extend(recovered.refused);
        if recovered.adopted > 0 {
            info!(
                packs = recovered.adopted,
                "indexed packs left by an interrupted backup"
            );
        }

        let config = self.repo.config().clone();
        let keys = self.repo.keys().clone();
        let backend = self.repo.backend().clone();
        let chunker = ChunkerConfig::new(config.chunker, keys.chunker_seed);
        let workers = options
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let shared = Shared::new(backend.as_ref(), &keys, &mut self.index, cancel, progress);
        for note in repository_notes {
            shared.record_note(note);
        }
        let counts = FileCounts::default();
        progress.phase("backing up");

        let outcome: Result<BlobId> = std::thread::scope(|scope| {
            let (blob_tx, blob_rx) = bounded::<Vec<EncodedBlob>>(workers);
            let (job_tx, job_rx) = bounded::<FileJob>(workers * 4);
            let (event_tx, event_rx) = bounded::<Vec<Event>>(32);
            let packer = spawn_scoped(scope, "cairn-packer", || {
                packer::run(&shared, blob_rx, u64::from(config.pack_size))
            })?;
            let mut readers = Vec::new();
            for n in 0..workers {
                let (jobs, blobs, shared, chunker) =
                    (job_rx.clone(), blob_tx.clone(), &shared, &chunker);
                readers.push(spawn_scoped(scope, format!("cairn-read-{n}"), move || {
                    files::run(shared, chunker, config.compression_level, jobs, blobs)
                })?);
            }
            drop(job_rx);
            let assembler = {
                let blobs = blob_tx.clone();
                let (shared, counts) = (&shared, &counts);
                spawn_scoped(scope, "cairn-trees", move || {
                    assemble(shared, counts, config.compression_level, event_rx, blobs)
                })?
            };
            let walked = walk::Walker {
                shared: &shared,
                counts: &counts,
                rules: &rules,
                force_read: options.force_read,
                events: event_tx.clone(),
                batch: Vec::new(),
                jobs: job_tx,
                pending: Default::default(),
                names: Default::default(),
                parent_reader: crate::blobs::BlobReader::new(backend.as_ref(), &keys),
                prefetch: listing::Prefetcher::new(rules.clone())
                    .map_err(|e| Error::io("starting the scan thread", e))?,
            }
            .walk_sources(&sources, parent_tree)
            .and_then(|()| match &options.command {
                Some(command) => run_command(
                    &shared,
                    &chunker,
                    config.compression_level,
                    command,
                    &blob_tx,
                    &event_tx,
                    &counts,
                ),
                None => Ok(()),
            });
            if walked.is_err() {
                cancel.cancel();
            }
            drop(event_tx);
            let root = join(assembler, "tree thread");
            if root.is_err() {
                cancel.cancel();
            }
            let read_results: Vec<Result<()>> = readers
                .into_iter()
                .map(|r| join(r, "reader thread"))
                .collect();
            drop(blob_tx);
            // The packer finishes and indexes open packs even when the backup failed, so
            // the next run reuses them.
            let packed = join(packer, "packer thread");
            let (root, root_failure) = match root {
                Ok(root) => (Some(root), Ok(())),
                Err(e) => (None, Err(e)),
            };
            // Storage first: a full disk stops the packer, and everyone else then
            // sees only the closed channels.
            crate::threads::first_failure(
                std::iter::once(packed)
                    .chain(read_results)
                    .chain([root_failure, walked]),
            )?;
            root.ok_or(Error::Cancelled)
        });
        let warnings = shared.take_warnings();
        let notes = shared.take_notes();
        let root = outcome?;
        let c = &counts;
        let s = &shared.counters;
        let summary = BackupSummary {
            files_new: c.new.load(Ordering::Relaxed),
            files_changed: c.changed.load(Ordering::Relaxed),
            files_unchanged: c.unchanged.load(Ordering::Relaxed),
            dirs: c.dirs.load(Ordering::Relaxed),
            other_entries: c.other.load(Ordering::Relaxed),
            bytes_total: c.bytes_total.load(Ordering::Relaxed),
            bytes_read: Counters::get(&s.bytes_read),
            blobs_new: Counters::get(&s.blobs_new),
            bytes_added: Counters::get(&s.bytes_added),
            bytes_stored: Counters::get(&s.bytes_stored),
            packs_written: Counters::get(&s.packs_written),
            warnings: warnings.len() as u64,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        drop(shared);
        let snapshot = Snapshot {
            time: jiff::Timestamp::now().to_string(),
            host,
            username: crate::host::username(),
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            paths,
            tags: options.tags.clone(),
            tree: root,
            parent: parent.as_ref().map(|(id, _)| *id),
            program_version: env!("CARGO_PKG_VERSION").into(),
            summary: summary.clone(),
            job: options.job.clone(),
            run: options.run,
            repaired: None,
        };
        self.index.damage().save();
        lock.ensure_held("backup")?;
        let snapshot_id = self.repo.save_snapshot(&snapshot)?;
        drop(lock);
        info!(
            snapshot = %snapshot_id.short(), files_new = summary.files_new, files_changed = summary.files_changed,
            files_unchanged = summary.files_unchanged, bytes_added = summary.bytes_added, warnings = summary.warnings,
            "backup finished"
        );
        Ok(BackupResult {
            snapshot_id,
            parent: snapshot.parent,
            summary,
            warnings,
            notes,
        })
    }
}

/// Makes source paths absolute and clean (no `.`/`..`), without resolving symlinks.
/// A source path made absolute and clean without touching the filesystem (`..` and
/// `.` resolved lexically, as the operator wrote it; symlinks are not followed).
fn clean_source(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path).map_err(|e| Error::io_path(path, e))?;
    let mut clean = PathBuf::from("/");
    for component in absolute.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    Ok(clean)
}

fn normalise_sources(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let clean = clean_source(path)?;
        std::fs::symlink_metadata(&clean)
            .map_err(|e| Error::io(format!("source {}", clean.display()), e))?;
        out.push(clean);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The paths a snapshot records for these sources and command.
fn recorded_paths(sources: &[PathBuf], command: Option<&CommandSource>) -> Vec<String> {
    let mut paths: Vec<String> = sources
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(command) = command {
        paths.push(format!("/{}", command.filename));
    }
    paths
}

impl BackupOptions {
    /// The host and paths a backup with these options records in its snapshot, worked
    /// out without reading the sources: what tells one job's snapshots from others'.
    pub fn recorded_host_and_paths(&self) -> Result<(String, Vec<String>)> {
        let mut sources = self
            .paths
            .iter()
            .map(|p| clean_source(p))
            .collect::<Result<Vec<_>>>()?;
        sources.sort();
        sources.dedup();
        let host = self.host.clone().unwrap_or_else(crate::host::hostname);
        Ok((host, recorded_paths(&sources, self.command.as_ref())))
    }
}

/// Receives walk events in order and builds trees bottom-up.
fn assemble(
    shared: &Shared<'_>,
    counts: &FileCounts,
    level: i32,
    events: Receiver<Vec<Event>>,
    blobs: Sender<Vec<EncodedBlob>>,
) -> Result<BlobId> {
    let mut encoder = BlobEncoder::new(level)?;
    let mut blobs = BlobSink::new(blobs);
    let mut stack: Vec<(Node, Vec<Node>)> = Vec::new();
    let mut root: Vec<Node> = Vec::new();
    // The job whose outcomes are being handed out, and those not handed out yet.
    let mut job: Option<(JobOutcomes, std::vec::IntoIter<FileOutcome>)> = None;
    for event in events.into_iter().flatten() {
        match event {
            Event::Enter(node) => stack.push((node, Vec::new())),
            Event::Leaf(mut node, pending, path) => {
                if let Some(reply) = pending {
                    let outcome = match &mut job {
                        Some((current, outcomes)) if current.same_channel(&reply) => {
                            outcomes.next()
                        }
                        _ => match reply.recv() {
                            Ok(outcomes) => {
                                let mut outcomes = outcomes.into_iter();
                                let first = outcomes.next();
                                job = Some((reply, outcomes));
                                first
                            }
                            Err(_) => None,
                        },
                    };
                    match outcome {
                        Some(FileOutcome::Stored {
                            content,
                            size,
                            flags,
                            changed,
                        }) => {
                            node.content = content;
                            node.size = size;
                            node.flags = flags;
                            if changed {
                                let message = format!(
                                    "{}: changed while it was read; the snapshot holds what was read, which may mix old and new content",
                                    path.display()
                                );
                                warn!(path = %path.display(), "file changed during backup");
                                shared.progress.warning(&message);
                                shared.record_warning(message);
                            }
                        }
                        Some(FileOutcome::Unreadable(reason)) => {
                            let message =
                                format!("{}: {reason}; not in this snapshot", path.display());
                            warn!(path = %path.display(), %reason, "file skipped");
                            shared.progress.warning(&message);
                            shared.record_warning(message);
                            continue;
                        }
                        // The worker stopped: the backup is being cancelled or failed.
                        None => return Err(Error::Cancelled),
                    }
                }
                if node.kind == NodeKind::File {
                    counts.bytes_total.fetch_add(node.size, Ordering::Relaxed);
                }
                stack
                    .last_mut()
                    .map_or(&mut root, |(_, children)| children)
                    .push(node);
            }
            Event::Leave => {
                let (mut dir, children) = stack
                    .pop()
                    .ok_or_else(|| Error::invalid("backup", "walk events out of order"))?;
                dir.subtree = Some(store_tree(shared, &mut encoder, &mut blobs, children)?);
                stack
                    .last_mut()
                    .map_or(&mut root, |(_, children)| children)
                    .push(dir);
            }
        }
    }
    if shared.cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let root = store_tree(shared, &mut encoder, &mut blobs, root)?;
    blobs.flush()?;
    Ok(root)
}

fn store_tree(
    shared: &Shared<'_>,
    encoder: &mut BlobEncoder,
    blobs: &mut BlobSink,
    nodes: Vec<Node>,
) -> Result<BlobId> {
    let mut tree = Tree { nodes };
    tree.sort();
    let bytes = tree.encode()?;
    let id = shared.keys.blob_id(BlobKind::Tree, &bytes);
    if shared.claim(&id)? {
        blobs.store(shared, encoder, id, BlobKind::Tree, &bytes)?;
    }
    Ok(id)
}

/// Stores a command's standard output as a file at the snapshot root.
fn run_command(
    shared: &Shared<'_>,
    chunker: &ChunkerConfig,
    level: i32,
    command: &CommandSource,
    blobs: &Sender<Vec<EncodedBlob>>,
    events: &Sender<Vec<Event>>,
    counts: &FileCounts,
) -> Result<()> {
    let shown = std::iter::once(command.program.as_str())
        .chain(command.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(&command.program);
    if let Some(env) = &command.env {
        child.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    let mut child = child
        .args(&command.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::CommandFailed {
            command: shown.clone(),
            reason: format!("cannot start: {e}"),
        })?;
    let stdout = child.stdout.take().ok_or_else(|| Error::CommandFailed {
        command: shown.clone(),
        reason: "no stdout".into(),
    })?;
    let mut encoder = BlobEncoder::new(level)?;
    let mut sink = BlobSink::new(blobs.clone());
    let mut window = Vec::new();
    let mut zeros = crate::pipeline::sparse::ZeroIds::default();
    let stored = files::store_stream(
        &mut files::Stores {
            shared,
            chunker,
            encoder: &mut encoder,
            blobs: &mut sink,
            window: &mut window,
            zeros: &mut zeros,
        },
        stdout,
    );
    sink.flush()?;
    let status = child.wait().map_err(|e| Error::CommandFailed {
        command: shown.clone(),
        reason: e.to_string(),
    })?;
    let (content, size) = match stored {
        Ok(FileOutcome::Stored { content, size, .. }) => (content, size),
        Ok(FileOutcome::Unreadable(reason)) => {
            return Err(Error::CommandFailed {
                command: shown,
                reason,
            });
        }
        Err(StreamError::Read(e)) => {
            return Err(Error::CommandFailed {
                command: shown,
                reason: format!("reading its output: {e}"),
            });
        }
        Err(StreamError::Fatal(e)) => return Err(e),
    };
    if !status.success() {
        return Err(Error::CommandFailed {
            command: shown,
            reason: format!("exited with {status}"),
        });
    }
    let now = jiff::Timestamp::now();
    let mut node = Node::new(command.filename.as_bytes().to_vec(), NodeKind::File);
    node.mode = 0o600;
    node.uid = rustix::process::getuid().as_raw();
    node.gid = rustix::process::getgid().as_raw();
    node.size = size;
    node.content = content;
    node.mtime = Time {
        secs: now.as_second(),
        nanos: now.subsec_nanosecond() as u32,
    };
    node.atime = node.mtime;
    node.ctime = node.mtime;
    counts.new.fetch_add(1, Ordering::Relaxed);
    events
        .send(vec![Event::Leaf(
            node,
            None,
            PathBuf::from(&command.filename),
        )])
        .map_err(|_| Error::Cancelled)
}

/// A tree of source paths, so that `/srv/a` and `/srv/b` share the node `srv`.
#[derive(Debug, Default)]
pub(crate) struct SourceTree {
    children: BTreeMap<OsString, SourceTree>,
    is_source: bool,
}

impl SourceTree {
    fn build(sources: &[PathBuf]) -> SourceTree {
        let mut root = SourceTree::default();
        for source in sources {
            let mut node = &mut root;
            for component in source.components() {
                if let Component::Normal(part) = component {
                    node = node.children.entry(part.to_owned()).or_default();
                }
            }
            node.is_source = true;
        }
        root
    }
}

impl IndexedRepository {
    /// The parent for change detection: the one asked for, else the latest snapshot of
    /// the same host and paths. Also what the listing found wrong with the snapshots
    /// (records that do not verify, snapshots deleted or put back), for the operator.
    fn choose_parent(
        &self,
        options: &BackupOptions,
        host: &str,
        paths: &[String],
    ) -> Result<(Option<Parent>, Vec<String>)> {
        if !self.repo.can_read() {
            if options.parent.is_some() {
                return Err(Error::WriteOnly {
                    what: "choosing a parent snapshot".into(),
                });
            }
            // No snapshot can be read: every file is read again, and only the chunks
            // this host stored before are found (no upload of those).
            return Ok((None, Vec::new()));
        }
        let listed = self.repo.snapshot_list()?;
        let mut notes: Vec<String> = listed
            .damaged
            .iter()
            .map(|d| format!("{}; left out (run `cairn check`)", d.error))
            .collect();
        notes.extend(listed.alerts.iter().map(|a| a.message()));
        if let Some(id) = options.parent {
            return Ok((Some((id, self.repo.snapshot(&id)?)), notes));
        }
        let parent = listed
            .snapshots
            .into_iter()
            .rev()
            .find(|(_, s)| s.host == host && s.paths == paths);
        Ok((parent, notes))
    }

    /// Writes this backup's lock, then leaves the packs of every condemn record out of
    /// its lookups (and says so in the lock), on an index reloaded if a prune replaced
    /// index files since it was loaded.
    fn take_backup_lock(&mut self) -> Result<crate::lock::RepoLock> {
        let backend = self.repo.backend().clone();
        let keys = self.repo.keys().clone();
        let lock = crate::lock::RepoLock::backup(backend.clone(), keys.clone())?;
        let condemned = crate::condemn::Condemned::load(backend.as_ref(), &keys)?;
        lock.set_seen(condemned.ids())?;
        self.index.refresh(backend.as_ref(), &keys)?;
        self.index.set_condemned(condemned.packs);
        Ok(lock)
    }

    /// Indexes packs that exist but no index file names (left by a backup that was
    /// killed): their blobs are then reused instead of uploaded again. A pack is
    /// adopted only once its name matches its content and every blob in it decodes to
    /// its keyed id; one planted with the public recipient, or renamed, is refused and
    /// named (garbage in the index would fail every later check).
    pub fn recover_unindexed_packs(&mut self) -> Result<Recovered> {
        let known = self.index.packs();
        let backend = self.repo.backend().clone();
        let keys = self.repo.keys().clone();
        let mut recovered = Recovered::default();
        let listed: std::collections::HashSet<crate::id::PackId> = backend
            .list(crate::layout::DATA)?
            .iter()
            .filter_map(|o| crate::id::PackId::parse(&o.name).ok())
            .collect();
        // Packs the index names that are gone: their blobs count as absent, so this
        // backup stores them again from the sources instead of building on lost data.
        // Condemned packs are a prune's business: gone is what it meant for them.
        let condemned = self.index.condemned().clone();
        let missing: std::collections::BTreeSet<crate::id::PackId> = known
            .difference(&listed)
            .filter(|p| !condemned.contains(p))
            .copied()
            .collect();
        self.index.damage().set_missing_packs(&missing);
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().take(5).map(|p| p.short()).collect();
            warn!(
                packs = missing.len(),
                "packs named by the index are missing"
            );
            recovered.refused.push(format!(
                "{} packs the index names are missing from the repository ({}{}); what only they held is stored again from the sources where they still have it; `cairn check` names the snapshots that lost data",
                missing.len(),
                names.join(", "),
                if missing.len() > names.len() { ", ..." } else { "" }
            ));
        }
        let mut unknown: Vec<crate::id::PackId> = listed
            .into_iter()
            .filter(|p| !known.contains(p) && !condemned.contains(p))
            .collect();
        unknown.sort();
        for id in unknown {
            match crate::pack::verify::prove_pack(backend.as_ref(), &keys, &id) {
                Ok(entries) => {
                    self.index.add_pack(id, entries);
                    recovered.adopted += 1;
                    if self.index.pending_entries() >= crate::index::FLUSH_ENTRIES {
                        self.index.flush(backend.as_ref(), &keys)?;
                    }
                }
                Err(e) if matches!(e.kind(), crate::ErrorKind::DataLoss) => {
                    warn!(pack = %id.short(), error = %e, "unindexed pack refused");
                    recovered.refused.push(format!(
                        "{e}; it is not indexed and not used (`cairn check` lists it)"
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        if recovered.adopted > 0 {
            self.index.flush(backend.as_ref(), &keys)?;
        }
        Ok(recovered)
    }
}
