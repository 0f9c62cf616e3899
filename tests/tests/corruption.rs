//! One flipped byte in a pack: check names the pack, the blob, the snapshot and the
//! file; restore fails loudly for that file only and restores everything else.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use cairn_e2e::corpus::random_tree;
use cairn_e2e::hostile::largest_pack;
use cairn_e2e::run::{Cairn, restored_path};

#[test]
fn a_flipped_byte_is_found_named_and_contained() {
    let cairn = Cairn::init_with(&["--chunker", "16384,65536,262144", "--pack-size-mib", "1"]);
    let source = cairn.path("source");
    random_tree(&source, 11, 120, 6 * 1024 * 1024);
    let snapshot = cairn.backup(&source)["snapshot_id"]
        .as_str()
        .expect("id")
        .to_owned();
    cairn.run(&["check", "--read-data"]).ok();

    let pack = largest_pack(&cairn.repo);
    let pack_id = pack
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let mut bytes = fs::read(&pack).expect("read pack");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&pack, &bytes).expect("write pack");

    let check = cairn.run(&["check", "--read-data", "--output", "json"]);
    assert_eq!(
        check.code, 1,
        "check must report problems: {}",
        check.stderr
    );
    let report = check.json();
    assert_eq!(report["ok"], false);
    let problems = report["report"]["problems"].as_array().expect("problems");
    assert!(!problems.is_empty());
    let mut affected: BTreeSet<String> = BTreeSet::new();
    for problem in problems {
        assert_eq!(problem["kind"], "bad_blob", "{problem}");
        assert_eq!(
            problem["pack"].as_str(),
            Some(pack_id.as_str()),
            "{problem}"
        );
        assert_eq!(
            problem["blob"].as_str().map(str::len),
            Some(64),
            "{problem}"
        );
        let affects = problem["affects"].as_array().expect("affects");
        assert!(
            !affects.is_empty(),
            "a bad blob must name what it affects: {problem}"
        );
        for a in affects {
            assert_eq!(a["snapshot"].as_str(), Some(&snapshot[..8]));
            affected.insert(a["path"].as_str().expect("path").to_owned());
        }
    }
    // The text report names them too.
    let text = cairn.run(&["check", "--read-data"]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains(&pack_id) && text.stdout.contains("affects snapshot"),
        "{}",
        text.stdout
    );

    // Restore: the affected files fail loudly and are absent; all others are intact.
    let target = cairn.path("target");
    let restore = cairn.restore(&snapshot, &target);
    assert_eq!(
        restore.code, 1,
        "restore with a bad blob must not report success: {}",
        restore.stderr
    );
    let summary = restore.json();
    let errors: Vec<String> = summary["summary"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(errors.len(), affected.len(), "{errors:?} vs {affected:?}");
    let restored_root = restored_path(&target, &source);
    let mut checked = 0;
    for entry in walk_files(&source) {
        let rel = entry.strip_prefix(&source).expect("under source");
        let snapshot_path = format!("{}/{}", source.display(), rel.display());
        let restored = restored_root.join(rel);
        if affected.contains(&snapshot_path) {
            assert!(
                !restored.exists(),
                "{} was restored although its data is damaged",
                restored.display()
            );
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(&rel.display().to_string())),
                "no error names {}",
                rel.display()
            );
        } else {
            assert_eq!(
                fs::read(&entry).expect("source"),
                fs::read(&restored).expect("restored"),
                "{}",
                rel.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "most files should restore ({checked})");
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
