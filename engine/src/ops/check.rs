//! Check: is every snapshot restorable? Verifies index files, the presence of every
//! pack and blob that snapshots need and, with `read_data`, decrypts and re-hashes
//! blobs. Every problem names the pack, the blob, and the snapshots and paths it
//! affects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use serde::Serialize;
use tracing::{info, warn};

use crate::blobs::BlobReader;
use crate::cancel::CancelToken;
use crate::crypto::BlobKind;
use crate::error::{Error, Result};
use crate::forget_record::ForgetRecord;
use crate::id::{BlobId, ForgetId, PackId};
use crate::index::Index;
use crate::layout;
use crate::ledger::AlertKind;
use crate::pack::{BlobEntry, PackReader};
use crate::progress::Progress;
use crate::repository::IndexedRepository;
use crate::tree::{NodeKind, Tree};

/// How much pack data to read back.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReadData {
    /// Structure only: index, presence of packs and blobs, trees.
    #[default]
    None,
    /// Decrypt and re-hash every blob.
    All,
    /// Read this percentage of the packs (chosen at random).
    Subset(f64),
}

#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckOptions {
    pub read_data: ReadData,
}

impl CheckOptions {
    pub fn read_data(mut self, read: ReadData) -> Self {
        self.read_data = read;
        self
    }
}

/// A snapshot and path a damaged object affects.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Affected {
    pub snapshot: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `bad_index`, `missing_pack`, `bad_pack`, `bad_blob`, `missing_blob`, `bad_tree`,
    /// `unindexed_blob` (in a pack no index file names),
    /// `bad_snapshot`, `snapshot_disappeared`, `snapshot_reappeared`, `bad_forget_record`.
    pub kind: &'static str,
    pub pack: Option<String>,
    pub blob: Option<String>,
    pub message: String,
    pub affects: Vec<Affected>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub snapshots: u64,
    pub trees: u64,
    pub index_files: u64,
    pub packs: u64,
    pub blobs: u64,
    pub packs_read: u64,
    pub blobs_read: u64,
    pub bytes_read: u64,
    /// Packs no index names (left by an interrupted backup): not an error.
    pub unindexed_packs: Vec<String>,
    /// Packs a prune condemned, waiting for its next sweep: not an error.
    pub condemned_packs: u64,
    pub condemned_bytes: u64,
    pub problems: Vec<Problem>,
    /// The commands that fix what was found, in the order to run them.
    pub repairs: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Which repair fixes what the check found. Blobs snapshots need that no index names
/// while unindexed packs exist may be in those packs: rebuilding the index comes first,
/// and finds them if they are; data that is gone from every copy is cut out of the
/// snapshots that need it.
fn repairs_for(report: &CheckReport) -> Vec<String> {
    let has = |kinds: &[&str]| report.problems.iter().any(|p| kinds.contains(&p.kind));
    let mut repairs = Vec::new();
    if has(&["bad_index", "unindexed_blob"]) {
        repairs.push("cairn repair index".to_owned());
    }
    let lost = has(&[
        "missing_pack",
        "bad_pack",
        "bad_blob",
        "missing_blob",
        "bad_tree",
    ]);
    if lost
        && report
            .problems
            .iter()
            .any(|p| !p.affects.is_empty() && p.kind != "bad_snapshot")
    {
        repairs.push("cairn repair snapshots".to_owned());
    }
    repairs
}

/// A damaged blob and what is wrong with it.
struct Damage {
    pack: Option<PackId>,
    kind: &'static str,
    message: String,
    affects: Vec<Affected>,
}

impl IndexedRepository {
    pub fn check(
        &mut self,
        options: &CheckOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<CheckReport> {
        self.repo.require_full_key("check")?;
        // One lookup per blob: without filters every run of the cache is probed.
        self.index.enable_bloom()?;
        self.check_with_index(options, progress, cancel)
    }

    fn check_with_index(
        &self,
        options: &CheckOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let backend = self.repo.backend().as_ref();
        let keys = self.repo.keys();

        // 1. Index files: each must open (name, MAC, structure).
        progress.phase("checking index");
        let index_files = backend.list(layout::INDEX)?;
        report.index_files = index_files.len() as u64;
        for object in &index_files {
            let Ok(id) = crate::id::IndexId::parse(&object.name) else {
                continue;
            };
            let opened = backend
                .read(&layout::index(&id), layout::MAX_INDEX_BYTES)
                .and_then(|stored| crate::index::file::open(keys, &id, &stored));
            if let Err(e) = opened
                // Replaced by a prune since the listing.
                && e.kind() != crate::ErrorKind::NotFound
            {
                report.problems.push(Problem {
                    kind: "bad_index",
                    pack: None,
                    blob: None,
                    message: format!(
                        "index file {}: {e}; the packs it named are located by their own headers until a backup indexes them again",
                        id.short()
                    ),
                    affects: Vec::new(),
                });
            }
        }

        // 2. Packs: those the index names must exist.
        progress.phase("checking packs");
        let stored: HashMap<PackId, u64> = backend
            .list(layout::DATA)?
            .into_iter()
            .filter_map(|o| PackId::parse(&o.name).ok().map(|id| (id, o.size)))
            .collect();
        let indexed = self.index.packs();
        report.packs = indexed.len() as u64;
        report.blobs = self.index.len();
        let condemned = crate::condemn::Condemned::load(backend, keys)?;
        report.condemned_packs = condemned.packs.len() as u64;
        report.condemned_bytes = condemned.bytes();
        let mut unindexed: Vec<String> = stored
            .keys()
            .filter(|p| !indexed.contains(p) && !condemned.packs.contains(p))
            .map(|p| p.to_hex())
            .collect();
        unindexed.sort();
        report.unindexed_packs = unindexed;
        // A condemned pack that is gone was deleted by a prune's sweep.
        let missing: HashSet<PackId> = indexed
            .iter()
            .filter(|p| !stored.contains_key(p) && !condemned.packs.contains(p))
            .copied()
            .collect();
        // The next backup stores again what only the missing packs held.
        self.index
            .damage()
            .set_missing_packs(&missing.iter().copied().collect());

        // Damaged blobs found so far, by id, to be traced to snapshots and paths.
        let mut damaged: BTreeMap<BlobId, Damage> = BTreeMap::new();
        if !missing.is_empty() {
            self.index.for_each_entry(|pack, entry| {
                if missing.contains(pack) {
                    damaged.insert(
                        entry.id,
                        Damage {
                            pack: Some(*pack),
                            kind: "missing_pack",
                            message: format!(
                                "pack {} is missing from the repository; the next backup stores its blobs again where the sources still have them",
                                pack.short()
                            ),
                            affects: Vec::new(),
                        },
                    );
                }
            })?;
            for pack in &missing {
                if !damaged.values().any(|d| d.pack.as_ref() == Some(pack)) {
                    report.problems.push(Problem {
                        kind: "missing_pack",
                        pack: Some(pack.to_hex()),
                        blob: None,
                        message: format!("pack {} is missing from the repository", pack.short()),
                        affects: Vec::new(),
                    });
                }
            }
        }

        // 3. Read data: decrypt and re-hash the chosen packs (those located by their
        // headers too: snapshots read from them).
        let readable: Vec<PackId> = indexed
            .iter()
            .chain(self.index.recovered_packs())
            .filter(|p| stored.contains_key(p))
            .copied()
            .collect();
        let to_read: Vec<PackId> = match options.read_data {
            ReadData::None => Vec::new(),
            ReadData::All => readable,
            ReadData::Subset(percent) => {
                let mut packs = readable;
                // A fresh order each run (so repeated subset checks cover everything over
                // time), drawn once: a sort key must not change between comparisons.
                let salt: [u8; 32] = crate::crypto::random_bytes();
                packs.sort_by_cached_key(|p| *blake3::keyed_hash(&salt, p.as_bytes()).as_bytes());
                let take = ((packs.len() as f64) * percent / 100.0).ceil() as usize;
                packs.truncate(take.min(packs.len()));
                packs
            }
        };
        if !to_read.is_empty() {
            progress.phase("reading data");
            let total: u64 = to_read
                .iter()
                .map(|p| stored.get(p).copied().unwrap_or(0))
                .sum();
            progress.add_total(to_read.len() as u64, total);
            let mut sorted = to_read;
            sorted.sort();
            if backend.reads_ahead() {
                // The snapshots are walked next: packs of trees read last are still
                // downloaded then, so a network repository's are not fetched twice.
                let mut tree_packs = HashSet::new();
                self.index.for_each_entry(|pack, entry| {
                    if entry.kind == BlobKind::Tree {
                        tree_packs.insert(*pack);
                    }
                })?;
                sorted.sort_by_key(|p| tree_packs.contains(p));
            }
            let (results, found) = self.read_packs(sorted, &stored, progress, cancel)?;
            report.packs_read += results.packs_read;
            report.blobs_read += results.blobs_read;
            report.bytes_read += results.bytes_read;
            report.problems.extend(results.problems);
            damaged.extend(found);
        }

        // 4. Snapshots: every tree loads, every blob is indexed; trace damage to paths.
        progress.phase("checking snapshots");
        let mut seen_trees: HashSet<BlobId> = HashSet::new();
        let mut reader = BlobReader::new(backend, keys);
        let listed = self.repo.snapshot_list()?;
        for damaged in &listed.damaged {
            report.snapshots += 1;
            report.problems.push(Problem {
                kind: "bad_snapshot",
                pack: None,
                blob: None,
                message: format!("{}; it is left out of every listing", damaged.error),
                affects: vec![Affected {
                    snapshot: damaged.id.short(),
                    path: "/".into(),
                }],
            });
        }
        for alert in &listed.alerts {
            report.problems.push(Problem {
                kind: match alert.kind {
                    AlertKind::Disappeared => "snapshot_disappeared",
                    AlertKind::Reappeared => "snapshot_reappeared",
                },
                pack: None,
                blob: None,
                message: alert.message(),
                affects: vec![Affected {
                    snapshot: alert.snapshot.short(),
                    path: "/".into(),
                }],
            });
        }
        self.check_forget_records(&mut report)?;
        for (id, snapshot) in listed.snapshots {
            cancel.check()?;
            report.snapshots += 1;
            // Damaged blobs must be traced in every snapshot, so only skip trees
            // already walked when nothing is damaged.
            let mut walk = TreeWalk {
                snapshot: id.short(),
                reader: &mut reader,
                index: &self.index,
                damaged: &mut damaged,
                report: &mut report,
                seen: &mut seen_trees,
                cancel,
            };
            walk.walk(snapshot.tree, "")?;
        }
        for (blob, damage) in damaged {
            let mut affects = damage.affects;
            affects.sort();
            affects.dedup();
            report.problems.push(Problem {
                kind: damage.kind,
                pack: damage.pack.map(|p| p.to_hex()),
                blob: Some(blob.to_hex()),
                message: damage.message,
                affects,
            });
        }
        self.locate_in_unindexed_packs(&mut report)?;
        report.repairs = repairs_for(&report);
        // Reported once by a check; later listings stop warning about them.
        self.repo.mark_alerts_reported(&listed.alerts)?;
        self.index.damage().save();
        if report.is_ok() {
            info!(
                snapshots = report.snapshots,
                packs = report.packs,
                packs_read = report.packs_read,
                "check passed"
            );
        } else {
            warn!(problems = report.problems.len(), "check found problems");
        }
        Ok(report)
    }

    /// Blobs that snapshots need and no index names may be in packs no index names (an
    /// index file was lost): their headers say, and such a problem names the pack and
    /// is fixed by `repair index`, not by cutting data out of snapshots.
    fn locate_in_unindexed_packs(&self, report: &mut CheckReport) -> Result<()> {
        let unindexed_need =
            |p: &Problem| matches!(p.kind, "missing_blob" | "bad_tree") && p.blob.is_some();
        if report.unindexed_packs.is_empty() || !report.problems.iter().any(unindexed_need) {
            return Ok(());
        }
        let backend = self.repo.backend().as_ref();
        let mut holder: HashMap<String, String> = HashMap::new();
        for pack in &report.unindexed_packs {
            let Ok(id) = PackId::parse(pack) else {
                continue;
            };
            let header =
                PackReader::open(backend, self.repo.keys(), &id).and_then(|mut r| r.read_header());
            if let Ok(entries) = header {
                for entry in entries {
                    holder.insert(entry.id.to_hex(), pack.clone());
                }
            }
        }
        for problem in report.problems.iter_mut().filter(|p| unindexed_need(p)) {
            let Some(pack) = problem.blob.as_ref().and_then(|b| holder.get(b)) else {
                continue;
            };
            problem.kind = "unindexed_blob";
            problem.message = format!(
                "blob {} is in pack {}, which no index file names (an index file is missing or damaged)",
                &problem.blob.as_deref().unwrap_or_default()[..8],
                &pack[..8]
            );
            problem.pack = Some(pack.clone());
        }
        Ok(())
    }

    /// Reads packs on one thread per CPU; each keeps its own findings, merged at the end.
    fn read_packs(
        &self,
        packs: Vec<PackId>,
        sizes: &HashMap<PackId, u64>,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<(CheckReport, BTreeMap<BlobId, Damage>)> {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(1);
        let (tx, rx) = crossbeam_channel::bounded::<PackId>(workers * 2);
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for n in 0..workers {
                let rx = rx.clone();
                let handle = crate::threads::spawn_scoped(
                    scope,
                    format!("cairn-check-{n}"),
                    move || -> Result<(CheckReport, BTreeMap<BlobId, Damage>)> {
                        let mut report = CheckReport::default();
                        let mut damaged = BTreeMap::new();
                        for pack in rx {
                            cancel.check()?;
                            progress.current(&format!("pack {}", pack.short()));
                            self.read_pack(&pack, &mut report, &mut damaged)?;
                            progress.add_done(1, sizes.get(&pack).copied().unwrap_or(0));
                        }
                        Ok((report, damaged))
                    },
                )?;
                handles.push(handle);
            }
            drop(rx);
            let backend = self.repo.backend();
            if backend.reads_ahead() {
                let names: Vec<String> = packs.iter().map(layout::pack).collect();
                backend.prefetch(&names);
            }
            for pack in packs {
                // A worker that stopped early reports why when joined.
                if tx.send(pack).is_err() {
                    break;
                }
            }
            drop(tx);
            let mut merged = CheckReport::default();
            let mut damaged = BTreeMap::new();
            for handle in handles {
                let (report, found) = crate::threads::join(handle, "check worker")?;
                merged.packs_read += report.packs_read;
                merged.blobs_read += report.blobs_read;
                merged.bytes_read += report.bytes_read;
                merged.problems.extend(report.problems);
                damaged.extend(found);
            }
            Ok((merged, damaged))
        })
    }

    /// Reads one pack. One that cannot be read at all (an I/O error, gone since it was
    /// listed) is a finding for its blobs, never the end of the check.
    fn read_pack(
        &self,
        pack: &PackId,
        report: &mut CheckReport,
        damaged: &mut BTreeMap<BlobId, Damage>,
    ) -> Result<()> {
        match self.read_pack_contents(pack, report, damaged) {
            Err(e) if e.kind() != crate::ErrorKind::Cancelled => {
                self.index.damage().note_unreadable_pack(pack);
                let message = format!("pack {} cannot be read: {e}", pack.short());
                report.problems.push(Problem {
                    kind: "bad_pack",
                    pack: Some(pack.to_hex()),
                    blob: None,
                    message: message.clone(),
                    affects: Vec::new(),
                });
                for entry in self.entries_of(pack)? {
                    damaged.insert(
                        entry.id,
                        Damage {
                            pack: Some(*pack),
                            kind: "bad_blob",
                            message: message.clone(),
                            affects: Vec::new(),
                        },
                    );
                }
                Ok(())
            }
            other => other,
        }
    }

    /// Reads one pack: its stored bytes must hash to its name, and every blob must
    /// decrypt, decompress and hash to its id.
    fn read_pack_contents(
        &self,
        pack: &PackId,
        report: &mut CheckReport,
        damaged: &mut BTreeMap<BlobId, Damage>,
    ) -> Result<()> {
        let backend = self.repo.backend().as_ref();
        let keys = self.repo.keys();
        report.packs_read += 1;
        let mut bad = |blob: &BlobEntry, message: String| {
            damaged.insert(
                blob.id,
                Damage {
                    pack: Some(*pack),
                    kind: "bad_blob",
                    message,
                    affects: Vec::new(),
                },
            );
        };
        // The name is the hash of the stored bytes.
        let mut raw = backend.open(&layout::pack(pack))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = raw
                .read(&mut buf)
                .map_err(|e| Error::io(format!("pack {}", pack.short()), e))?;
            if n == 0 {
                break;
            }
            report.bytes_read += n as u64;
            hasher.update(&buf[..n]);
        }
        let name_ok = hasher.finalize().as_bytes() == pack.as_bytes();
        let mut reader = match PackReader::open(backend, keys, pack) {
            Ok(reader) => reader,
            Err(e) => {
                self.entries_of(pack)?
                    .iter()
                    .for_each(|b| bad(b, format!("pack {} cannot be opened: {e}", pack.short())));
                return Ok(());
            }
        };
        let header = reader.read_header();
        let entries: Vec<BlobEntry> = match header {
            Ok(entries) => entries,
            Err(e) => {
                report.problems.push(Problem {
                    kind: "bad_pack",
                    pack: Some(pack.to_hex()),
                    blob: None,
                    message: format!(
                        "pack {} header unreadable: {e}; checking the blobs the index names",
                        pack.short()
                    ),
                    affects: Vec::new(),
                });
                // Fall back to what the index says the pack holds.
                self.entries_of(pack)?
            }
        };
        let mut any_bad = false;
        for entry in &entries {
            report.blobs_read += 1;
            if let Err(e) = reader.read_blob(keys, entry) {
                any_bad = true;
                self.index.damage().note_blob(pack, &entry.id);
                bad(entry, e.to_string());
                // The stream reader is unusable after a failed segment; start afresh so
                // only the blobs that really overlap the damage are reported.
                reader = PackReader::open(backend, keys, pack)?;
                continue;
            }
            // The index must point at this very copy, or a restore would read elsewhere.
            if let Some(location) = self.index.get(&entry.id)?
                && location.pack == *pack
                && location.entry != *entry
            {
                any_bad = true;
                let message = format!(
                    "index entry for blob {} disagrees with pack {}'s header",
                    entry.id.short(),
                    pack.short()
                );
                bad(entry, message);
            }
        }
        if !name_ok && !any_bad {
            report.problems.push(Problem {
                kind: "bad_pack",
                pack: Some(pack.to_hex()),
                blob: None,
                message: format!(
                    "pack {} content does not match its name (altered outside its blobs)",
                    pack.short()
                ),
                affects: Vec::new(),
            });
        }
        Ok(())
    }
}

impl IndexedRepository {
    /// Every forget record must verify: one that does not is damaged or planted.
    fn check_forget_records(&self, report: &mut CheckReport) -> Result<()> {
        let backend = self.repo.backend();
        for object in backend.list(layout::FORGOTTEN)? {
            let Ok(id) = ForgetId::parse(&object.name) else {
                continue;
            };
            let opened = backend
                .read(&layout::forget_record(&id), layout::MAX_FORGET_BYTES)
                .and_then(|stored| ForgetRecord::open(self.repo.keys(), &id, &stored));
            match opened {
                Ok(_) => {}
                Err(e) if e.kind() == crate::ErrorKind::DataLoss => report.problems.push(Problem {
                    kind: "bad_forget_record",
                    pack: None,
                    blob: None,
                    message: format!("{e}; it is not trusted"),
                    affects: Vec::new(),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The index entries of one pack (a scan of the cache: used only for damaged packs).
    fn entries_of(&self, pack: &PackId) -> Result<Vec<BlobEntry>> {
        let mut out = Vec::new();
        self.index.for_each_entry(|p, entry| {
            if p == pack {
                out.push(entry);
            }
        })?;
        Ok(out)
    }
}

struct TreeWalk<'w, 'r> {
    snapshot: String,
    reader: &'w mut BlobReader<'r>,
    index: &'w Index,
    damaged: &'w mut BTreeMap<BlobId, Damage>,
    report: &'w mut CheckReport,
    seen: &'w mut HashSet<BlobId>,
    cancel: &'w CancelToken,
}

impl TreeWalk<'_, '_> {
    fn note(&mut self, blob: BlobId, kind: &'static str, message: String, path: &str) {
        let damage = self.damaged.entry(blob).or_insert(Damage {
            pack: None,
            kind,
            message,
            affects: Vec::new(),
        });
        damage.affects.push(Affected {
            snapshot: self.snapshot.clone(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        });
    }

    fn walk(&mut self, tree_id: BlobId, path: &str) -> Result<()> {
        self.cancel.check()?;
        if self.damaged.contains_key(&tree_id) {
            let message = self.damaged[&tree_id].message.clone();
            self.note(tree_id, "bad_tree", message, path);
            return Ok(());
        }
        // Unchanged subtrees are shared between snapshots: walk them once unless
        // damage must be traced into every snapshot that holds them.
        if !self.seen.insert(tree_id) && self.damaged.is_empty() {
            return Ok(());
        }
        self.report.trees += 1;
        let tree = match self.reader.tree(self.index, &tree_id) {
            Ok(tree) => tree,
            Err(e)
                if matches!(
                    e.kind(),
                    crate::ErrorKind::DataLoss | crate::ErrorKind::NotFound
                ) =>
            {
                self.note(
                    tree_id,
                    "bad_tree",
                    format!("tree {}: {e}", tree_id.short()),
                    path,
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.check_tree(&tree, path)
    }

    fn check_tree(&mut self, tree: &Tree, path: &str) -> Result<()> {
        for node in &tree.nodes {
            let child = format!("{path}/{}", node.name_lossy());
            match node.kind {
                NodeKind::Dir => match node.subtree {
                    Some(subtree) => self.walk(subtree, &child)?,
                    None => self.report.problems.push(Problem {
                        kind: "bad_tree",
                        pack: None,
                        blob: None,
                        message: "directory has no tree".into(),
                        affects: vec![Affected {
                            snapshot: self.snapshot.clone(),
                            path: child,
                        }],
                    }),
                },
                NodeKind::File => {
                    for blob in &node.content {
                        if let Some(damage) = self.damaged.get_mut(blob) {
                            damage.affects.push(Affected {
                                snapshot: self.snapshot.clone(),
                                path: child.clone(),
                            });
                            continue;
                        }
                        match self.index.get(blob)? {
                            Some(location) if location.entry.kind == BlobKind::Data => {}
                            Some(_) => self.note(
                                *blob,
                                "bad_blob",
                                format!("blob {} is not a data blob", blob.short()),
                                &child,
                            ),
                            None => self.note(
                                *blob,
                                "missing_blob",
                                format!("blob {} is not in any index", blob.short()),
                                &child,
                            ),
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
