//! The audit trail is tamper-evident (issue 13, point 12): each record is chained to
//! the one before by its hash, the newest link is kept in the lineage beside the store
//! and in the journal, and `cairnd audit verify` names what was changed, removed,
//! reordered or cut off the end of a real store, also one the retention has trimmed.

use std::path::{Path, PathBuf};

use cairn_e2e::daemon::Cairnd;

const AUDIT: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("audit");

struct Trail {
    _dir: tempfile::TempDir,
    daemon_dir: PathBuf,
    daemon: Cairnd,
}

impl Trail {
    /// A daemon keeping 10 audit records, after 15 audited changes (so the retention
    /// dropped the oldest) and one refused change.
    fn new() -> Trail {
        let dir = tempfile::tempdir().expect("temp dir");
        let daemon_dir = dir.path().join("daemon");
        std::fs::create_dir_all(&daemon_dir).expect("mkdir");
        std::fs::write(
            daemon_dir.join("cairnd.toml"),
            "[audit]\nmax_records = 10\n",
        )
        .expect("config");
        let source = dir.path().join("src");
        std::fs::create_dir_all(&source).expect("mkdir");
        let daemon = Cairnd::start(&daemon_dir);
        daemon.add_repository("main", &dir.path().join("repo"));
        for i in 0..13 {
            daemon
                .create_backup_job(&format!("j{i}"), &source, &[])
                .ok();
        }
        daemon.cli(&["job", "disable", "j3"]).ok();
        let refused = daemon.cli(&["job", "delete", "no-such-job"]);
        assert_ne!(refused.code, 0);
        Trail {
            _dir: dir,
            daemon_dir,
            daemon,
        }
    }

    fn store(&self) -> PathBuf {
        self.daemon_dir.join("state/cairnd.redb")
    }

    fn verify(&self, args: &[&str]) -> (i32, String) {
        let mut full = vec!["audit", "verify"];
        full.extend_from_slice(args);
        let ran = Cairnd::once(&self.daemon_dir, &full);
        assert!(ran.code == 0 || ran.code == 1, "{}", ran.stderr);
        (ran.code, ran.stdout)
    }

    /// The newest entries as `cairn audit` shows them.
    fn listed(&self) -> Vec<serde_json::Value> {
        self.daemon
            .cli(&["audit", "--output", "json", "--limit", "100"])
            .ok()
            .json()
            .as_array()
            .expect("a list")
            .clone()
    }
}

/// The audit records of the store at `path` (daemon stopped), by number.
fn records(path: &Path) -> Vec<(u64, serde_json::Value)> {
    let db = redb::Database::open(path).expect("open the store");
    let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
    let table = txn.open_table(AUDIT).expect("audit table");
    redb::ReadableTable::iter(&table)
        .expect("iterate")
        .map(|entry| {
            let (k, v) = entry.expect("entry");
            (
                k.value(),
                serde_json::from_slice(v.value()).expect("a JSON record"),
            )
        })
        .collect()
}

/// Changes the audit table of the store at `path` (daemon stopped).
fn tamper(path: &Path, change: impl FnOnce(&mut redb::Table<u64, &[u8]>)) {
    let db = redb::Database::open(path).expect("open the store");
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(AUDIT).expect("audit table");
        change(&mut table);
    }
    txn.commit().expect("commit");
}

fn put(table: &mut redb::Table<u64, &[u8]>, seq: u64, record: &serde_json::Value) {
    table
        .insert(seq, serde_json::to_vec(record).expect("JSON").as_slice())
        .expect("insert");
}

#[test]
fn the_audit_chain_verifies_and_names_every_kind_of_tampering() {
    let mut trail = Trail::new();
    // Intact, while the daemon runs: the head is the newest entry `cairn audit` shows.
    let listed = trail.listed();
    let newest = &listed[0];
    assert_eq!(listed.len(), 10, "the retention keeps 10");
    let (code, said) = trail.verify(&[]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("10 records"), "{said}");
    assert!(said.contains("chain intact"), "{said}");
    let head = format!(
        "head: record {} {}",
        newest["seq"],
        newest["hash"].as_str().expect("a hash")
    );
    assert!(said.contains(&head), "{said}\nwants {head}");
    assert!(said.contains("matches the lineage"), "{said}");
    assert!(said.contains("dropped by the retention"), "{said}");
    // The journal has the head from each start.
    trail.daemon.restart();
    assert!(
        trail
            .daemon
            .log_text()
            .contains(newest["hash"].as_str().expect("a hash")),
        "the head is logged at start:\n{}",
        trail.daemon.log_text()
    );
    trail.daemon.stop();

    let store = trail.store();
    let original = std::fs::read(&store).expect("read the store");
    let kept = records(&store);
    let seqs: Vec<u64> = kept.iter().map(|(seq, _)| *seq).collect();
    let (first, third, newest) = (seqs[0], seqs[2], seqs[seqs.len() - 1]);
    let record = |seq: u64| {
        kept.iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, r)| r.clone())
            .expect("a record")
    };

    type Tampering<'a> = Box<dyn Fn(&mut redb::Table<u64, &[u8]>) + 'a>;
    let scenarios: Vec<(&str, Tampering<'_>, String)> = vec![
        (
            "a result rewritten",
            Box::new(move |t| {
                let mut r = record(third);
                r["result"] = "ok".into();
                r["uid"] = 4242.into();
                put(t, third, &r);
            }),
            format!("record {third} was changed after it was written"),
        ),
        (
            "a record removed from the middle",
            Box::new(move |t| {
                t.remove(third).expect("remove");
            }),
            format!("record {third} was removed"),
        ),
        (
            "the oldest record kept removed",
            Box::new(move |t| {
                t.remove(first).expect("remove");
            }),
            format!("record {first} was removed"),
        ),
        (
            "the newest record removed",
            Box::new(move |t| {
                t.remove(newest).expect("remove");
            }),
            format!(
                "the trail ends at record {}, but the lineage recorded records up to {newest}",
                newest - 1
            ),
        ),
        (
            "two records swapped",
            Box::new(move |t| {
                let (a, b) = (record(third), record(third + 1));
                put(t, third, &b);
                put(t, third + 1, &a);
            }),
            format!("record {third} says it is record {}", third + 1),
        ),
        (
            "a record's link stripped",
            Box::new(move |t| {
                let mut r = record(third);
                r.as_object_mut().expect("an object").remove("hash");
                r.as_object_mut().expect("an object").remove("prev");
                put(t, third, &r);
            }),
            format!("record {third} has no link although records before it do"),
        ),
    ];
    for (what, change, named) in scenarios {
        std::fs::write(&store, &original).expect("put the store back");
        tamper(&store, change);
        let (code, said) = trail.verify(&[]);
        assert_eq!(code, 1, "{what} is caught:\n{said}");
        assert!(said.contains("chain BROKEN"), "{what}:\n{said}");
        assert!(said.contains(&named), "{what}: wants {named:?}:\n{said}");
    }

    // A copy is verified on its own (its end is older than the lineage by nature).
    std::fs::write(&store, &original).expect("put the store back");
    let copy = trail.daemon_dir.join("copy.redb");
    std::fs::write(&copy, &original).expect("copy");
    tamper(&copy, |t| {
        t.remove(newest).expect("remove");
    });
    let (code, said) = trail.verify(&["--file", copy.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("not compared with the lineage"), "{said}");
    let (code, said) = trail.verify(&[]);
    assert_eq!(code, 0, "the store itself is intact again:\n{said}");
}
