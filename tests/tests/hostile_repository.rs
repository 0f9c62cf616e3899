//! One damaged or planted object never takes the repository down: keys, snapshots,
//! packs and the config are read within bounds, refused by name when they do not
//! verify, and everything else keeps working.

use std::fs;
use std::path::{Path, PathBuf};

use cairn_e2e::corpus::random_tree;
use cairn_e2e::hostile::{
    encrypt_to_repository, flip_bit, giant, largest_pack, many_stanza_age_file, mkfifo, objects,
    plant, run_limited, trial_copy,
};
use cairn_e2e::run::{Cairn, PASSPHRASE};

const SECOND_PASSPHRASE: &str = "second-canary-91b2";
/// Every command of these tests runs with its heap capped here: a reader that trusted
/// a planted size or count would die instead of passing.
const MEMORY_MIB: u64 = 512;

/// A repository with a small tree backed up once.
fn repository_with_a_snapshot() -> (Cairn, String) {
    let cairn = Cairn::init();
    let source = cairn.path("source");
    random_tree(&source, 3, 20, 200_000);
    let snapshot = cairn.backup_id(&source);
    (cairn, snapshot)
}

fn snapshot_count(cairn: &Cairn, passphrase: &str) -> (i32, usize, String) {
    let mut command = cairn.command(&["snapshots", "--output", "json"]);
    command.env("CAIRN_PASSPHRASE", passphrase);
    let ran = run_limited(command, MEMORY_MIB);
    let count = serde_json::from_str::<serde_json::Value>(&ran.stdout)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    (ran.code, count, ran.stderr)
}

#[test]
fn a_damaged_key_file_never_locks_out_the_other_keys() {
    let (cairn, _) = repository_with_a_snapshot();
    let first_key = objects(&cairn.repo, "keys").remove(0);
    let mut add = cairn.command(&["key", "add", "--kdf-work-factor", "10"]);
    add.env("CAIRN_NEW_PASSPHRASE", SECOND_PASSPHRASE);
    let added = cairn_e2e::run::json_of(add.args(["--output", "json"]));
    assert!(added.is_object(), "{added}");
    let second_key = objects(&cairn.repo, "keys")
        .into_iter()
        .find(|k| *k != first_key)
        .expect("the added key file");

    // Damage each key in turn at bytes spread over the whole file; the other key's
    // passphrase must still open the repository every time. Each trial has a cache of
    // its own, so no remembered key decides the order the keys are tried in.
    let mut trials = 0;
    for (damaged, other_passphrase) in [(&first_key, SECOND_PASSPHRASE), (&second_key, PASSPHRASE)]
    {
        let original = fs::read(damaged).expect("key file");
        for byte in (0..original.len()).step_by(9) {
            flip_bit(damaged, byte, (byte % 8) as u8);
            let cache = tempfile::tempdir().expect("cache");
            let mut command = cairn.command(&["snapshots", "--output", "json"]);
            command
                .arg("--cache-dir")
                .arg(cache.path())
                .env("CAIRN_PASSPHRASE", other_passphrase);
            let ran = run_limited(command, MEMORY_MIB);
            assert_eq!(
                ran.code,
                0,
                "byte {byte} of {} flipped: {}",
                damaged.display(),
                ran.stderr
            );
            assert_eq!(ran.json().as_array().map(Vec::len), Some(1));
            fs::write(damaged, &original).expect("undo the damage");
            trials += 1;
        }
    }
    assert!(trials > 100, "{trials} trials");
}

/// A passphrase key envelope with the given scrypt parameters and a payload that
/// opens with nothing.
fn planted_key(log_n: u8, r: u32, p: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "format": "cairn-key", "version": 1, "kind": "passphrase", "label": "planted",
        "recipient": null, "created": "2026-01-01T00:00:00Z", "host": "h", "username": "u",
        "kdf": {"algorithm": "scrypt", "log_n": log_n, "r": r, "p": p, "salt": "00".repeat(16)},
        "payload": "ab".repeat(80),
    }))
    .expect("json")
}

#[test]
fn planted_costly_keys_are_refused_and_tried_last_and_the_key_that_opened_is_remembered() {
    let (cairn, _) = repository_with_a_snapshot();
    let real_key = objects(&cairn.repo, "keys")[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // Out of bounds: 4 GiB of scrypt memory, or 1 GiB and 64 times the work. Named to
    // sort before the real key.
    fs::write(
        cairn.repo.join("keys").join("0".repeat(63) + "1"),
        planted_key(22, 8, 4),
    )
    .expect("plant");
    fs::write(
        cairn.repo.join("keys").join("0".repeat(63) + "2"),
        planted_key(18, 32, 16),
    )
    .expect("plant");
    // A wrong passphrase tries every key: the planted ones are refused by their
    // parameters, named, and cost nothing (the heap cap would kill a run that paid).
    let mut command = cairn.command(&["snapshots"]);
    command.env("CAIRN_PASSPHRASE", "wrong passphrase");
    let ran = run_limited(command, MEMORY_MIB);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no key in the repository opens"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        ran.stderr.matches("key derivation out of bounds").count(),
        2,
        "{}",
        ran.stderr
    );
    let ran = run_limited(cairn.command(&["snapshots"]), MEMORY_MIB);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let remembered = objects(&cairn.cache, "")
        .into_iter()
        .find(|p| p.ends_with("key"));
    assert_eq!(
        fs::read_to_string(remembered.expect("remembered key")).expect("read"),
        real_key
    );

    // Within bounds but costlier than the real key (256 MiB of memory): with nothing
    // remembered it is tried after the real one, so a 200 MiB heap is enough.
    let costly = "0".repeat(63) + "3";
    fs::write(cairn.repo.join("keys").join(&costly), planted_key(18, 8, 4)).expect("plant");
    fs::remove_dir_all(&cairn.cache).expect("forget the cache");
    let mut command = cairn.command(&["snapshots"]);
    command.env("CAIRN_LOG", "debug");
    let ran = run_limited(command, 200);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        !ran.stderr.contains(&costly[..8]),
        "the costly key was tried: {}",
        ran.stderr
    );

    // A key as cheap as the real one that sorts first is not tried once the real one
    // is remembered.
    let cheap = "0".repeat(63) + "4";
    fs::write(cairn.repo.join("keys").join(&cheap), planted_key(10, 8, 4)).expect("plant");
    let mut command = cairn.command(&["snapshots"]);
    command.env("CAIRN_LOG", "debug");
    let ran = run_limited(command, 200);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!ran.stderr.contains(&cheap[..8]), "{}", ran.stderr);
}

#[test]
fn a_planted_or_replaced_snapshot_is_reported_and_left_out_and_everything_else_works() {
    let (cairn, first) = repository_with_a_snapshot();
    let source = cairn.path("source");
    fs::write(source.join("added"), "second snapshot").expect("write");
    let second = cairn.backup_id(&source);

    // A snapshot made by someone with only the public recipient.
    let mut forged = br#"{"time":"2030-01-01T00:00:00Z","host":"attacker"}"#.to_vec();
    forged.extend_from_slice(&[0u8; 32]);
    let planted = plant(
        &cairn.repo,
        "snapshots",
        &encrypt_to_repository(&cairn.repo, &forged),
    );

    let (code, count, stderr) = snapshot_count(&cairn, PASSPHRASE);
    assert_eq!((code, count), (1, 2), "{stderr}");
    assert!(
        stderr.contains(&format!("snapshot {} failed authentication", &planted[..8]))
            && stderr.contains("left out"),
        "{stderr}"
    );
    let backup = cairn.run_os(&["backup".as_ref(), source.as_os_str()]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    assert!(backup.stderr.contains(&planted[..8]), "{}", backup.stderr);
    let check = cairn.run(&["check", "--output", "json"]);
    assert_eq!(check.code, 1);
    let report = check.json();
    let problems = report["report"]["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "bad_snapshot" && p["affects"][0]["snapshot"] == planted[..8]),
        "{report}"
    );
    fs::remove_file(cairn.repo.join("snapshots").join(&planted)).expect("remove planted");

    // The older snapshot copied over the newer one's name: the newer is left out, and
    // `latest` is the older.
    fs::copy(
        cairn.repo.join("snapshots").join(&first),
        cairn.repo.join("snapshots").join(&second),
    )
    .expect("copy over");
    let listed = cairn.run(&["snapshots", "--output", "json"]);
    assert_eq!(listed.code, 1, "{}", listed.stderr);
    assert!(
        listed.stderr.contains(&format!(
            "snapshot {} is corrupt: content does not match its name",
            &second[..8]
        )),
        "{}",
        listed.stderr
    );
    let ids: Vec<String> = listed
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(ids.contains(&first) && !ids.contains(&second), "{ids:?}");
}

#[test]
fn giant_special_and_many_stanza_objects_are_refused_by_their_shape_not_read() {
    let (cairn, snapshot) = repository_with_a_snapshot();

    // Keys: a 500 MB one beside the real one.
    let trial = trial_copy(&cairn);
    giant(&trial.repo.join("keys").join("f".repeat(64)), 500_000_000);
    let (code, count, stderr) = snapshot_count(&trial, PASSPHRASE);
    assert_eq!((code, count), (0, 1), "{stderr}");

    // Snapshots: 500 MB of nothing, a symlink to /dev/zero, a FIFO, 10,000 stanzas.
    let trial = trial_copy(&cairn);
    let snapshots = trial.repo.join("snapshots");
    giant(&snapshots.join("a".repeat(64)), 500_000_000);
    std::os::unix::fs::symlink("/dev/zero", snapshots.join("b".repeat(64))).expect("symlink");
    mkfifo(&snapshots.join("c".repeat(64)));
    plant(&trial.repo, "snapshots", &many_stanza_age_file(10_000));
    let (code, count, stderr) = snapshot_count(&trial, PASSPHRASE);
    assert_eq!((code, count), (1, 1), "{stderr}");
    for expected in [
        "aaaaaaaa is 500000000 bytes, more than such an object can be",
        "it is a symlink",
        "it is a FIFO",
        "recipient stanzas",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in {stderr}");
    }
    let restored = trial.restore(&snapshot, &trial.path("target"));
    assert_eq!(restored.code, 0, "{}", restored.stderr);

    // The config: giant, a symlink, a FIFO — a clear error, at once.
    for (what, make) in [
        (
            "is 500000000 bytes",
            &(|p: &Path| giant(p, 500_000_000)) as &dyn Fn(&Path),
        ),
        ("it is a symlink", &|p: &Path| {
            std::os::unix::fs::symlink("/dev/zero", p).expect("symlink")
        }),
        ("it is a FIFO", &|p: &Path| mkfifo(p)),
    ] {
        let trial = trial_copy(&cairn);
        let config = trial.repo.join("config");
        fs::remove_file(&config).expect("remove config");
        make(&config);
        let (code, _, stderr) = snapshot_count(&trial, PASSPHRASE);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(what), "no {what:?} in {stderr}");
    }
}

#[test]
fn planted_and_renamed_packs_are_never_adopted_into_the_index() {
    let (cairn, _) = repository_with_a_snapshot();
    let source = cairn.path("source");

    // A pack renamed to another id, a well-formed pack with garbage blobs made with
    // the public recipient, one whose age header has 30,000 stanzas, and one whose
    // header claims two million blobs.
    let real_pack = objects(&cairn.repo, "data").remove(0);
    let renamed_name = "ab".to_owned() + &"0".repeat(62);
    fs::copy(&real_pack, cairn.repo.join("data/ab").join(&renamed_name)).expect("copy");
    let mut garbage = b"CAIRNPK1".to_vec();
    garbage.extend_from_slice(b"0123456789abcdef");
    garbage.extend_from_slice(&[7u8; 32]); // blob id
    garbage.extend_from_slice(&[0, 0]); // data, raw
    garbage.extend_from_slice(&16u32.to_le_bytes());
    garbage.extend_from_slice(&16u32.to_le_bytes());
    garbage.extend_from_slice(&1u32.to_le_bytes());
    garbage.extend_from_slice(b"CPKE");
    let consistent = plant(
        &cairn.repo,
        "data",
        &encrypt_to_repository(&cairn.repo, &garbage),
    );
    let stanzas = plant(&cairn.repo, "data", &many_stanza_age_file(30_000));
    let mut huge = b"CAIRNPK1".to_vec();
    huge.extend_from_slice(&2_000_000u32.to_le_bytes());
    huge.extend_from_slice(b"CPKE");
    let claims = plant(
        &cairn.repo,
        "data",
        &encrypt_to_repository(&cairn.repo, &huge),
    );

    fs::write(source.join("new-file"), "after the planting").expect("write");
    let backup = run_limited(
        cairn.command(&["backup", source.to_str().expect("utf-8")]),
        MEMORY_MIB,
    );
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    for (pack, why) in [
        (&renamed_name, "content does not match its name"),
        (&consistent, "not written with this repository's key"),
        (&stanzas, "recipient stanzas"),
        (&claims, "more than a pack holds"),
    ] {
        let line = backup
            .stderr
            .lines()
            .find(|l| l.contains(&pack[..8]))
            .unwrap_or_else(|| panic!("no note on pack {}: {}", &pack[..8], backup.stderr));
        assert!(line.contains(why) && line.contains("not used"), "{line}");
    }
    // Nothing was adopted: check passes (listing the four as unindexed), and stays so
    // after another backup.
    cairn.run_os(&["backup".as_ref(), source.as_os_str()]);
    let check = cairn
        .run(&["check", "--read-data", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        check["report"]["unindexed_packs"].as_array().map(Vec::len),
        Some(4),
        "{check}"
    );
}

/// A repository of small chunks and 1 MiB packs holding one backup of a seeded tree:
/// damage to one pack touches a few files. The source and the snapshot.
fn small_packs_with_a_backup(seed: u64, files: usize, bytes: usize) -> (Cairn, PathBuf, String) {
    let cairn = Cairn::init_with(&["--chunker", "16384,65536,262144", "--pack-size-mib", "1"]);
    let source = cairn.path("source");
    random_tree(&source, seed, files, bytes);
    let snapshot = cairn.backup_id(&source);
    (cairn, source, snapshot)
}

/// The next backup of an unchanged source reads again the files whose data was found
/// damaged, and its snapshot restores whole.
fn next_backup_stores_the_damaged_data_again(cairn: &Cairn, source: &Path) {
    let backup = cairn.backup(source);
    assert!(
        backup["summary"]["files_changed"].as_u64() > Some(0),
        "{backup}"
    );
    cairn.assert_restores_whole("latest", source, "after-damage");
}

/// The repository's problems from `check --output json`, as (kind, message).
fn problems(cairn: &Cairn, args: &[&str]) -> (i32, Vec<(String, String)>) {
    let mut all = vec!["check", "--output", "json"];
    all.extend_from_slice(args);
    let ran = cairn.run(&all);
    let report = ran.json();
    let found = report["report"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("").to_owned(),
                p["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (ran.code, found)
}

#[test]
fn a_damaged_index_file_costs_no_restorable_byte() {
    let cairn = Cairn::init_with(&["--chunker", "16384,65536,262144", "--pack-size-mib", "1"]);
    let source = cairn.path("source");
    // Three backups of a growing tree: several index files.
    let mut newest = String::new();
    for round in 0..3u64 {
        random_tree(&source.join(format!("round{round}")), round, 30, 1_500_000);
        newest = cairn.backup_id(&source);
    }
    let index_files = objects(&cairn.repo, "index");
    assert!(index_files.len() >= 3, "{index_files:?}");
    let mut trials = 0;
    for file in &index_files {
        let len = fs::metadata(file).expect("size").len() as usize;
        for byte in [40, len / 2, len - 20] {
            let trial = trial_copy(&cairn);
            let damaged = trial
                .repo
                .join("index")
                .join(file.file_name().expect("name"));
            flip_bit(&damaged, byte, 3);
            trial.assert_restores_whole(&newest, &source, "target");
            let (code, found) = problems(&trial, &["--read-data"]);
            assert_eq!(code, 1);
            let short = &file.file_name().expect("name").to_string_lossy()[..8];
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].0, "bad_index");
            assert!(
                found[0].1.contains(short) && found[0].1.contains("headers"),
                "{found:?}"
            );
            // A backup goes on (indexing the packs again once proven), and its
            // snapshot restores whole too.
            let backup = trial.run_os(&["backup".as_ref(), source.as_os_str()]);
            assert_eq!(backup.code, 0, "{}", backup.stderr);
            trial.assert_restores_whole("latest", &source, "again");
            trials += 1;
        }
    }
    assert!(trials >= 9);
}

#[test]
fn a_lost_pack_fails_only_its_files_and_the_next_backup_stores_them_again() {
    let (cairn, source, before) = small_packs_with_a_backup(11, 120, 6 * 1024 * 1024);
    let lost = largest_pack(&cairn.repo);
    let lost_short = lost.file_name().expect("name").to_string_lossy()[..8].to_owned();
    fs::remove_file(&lost).expect("lose a pack");

    // Restore: everything restorable is, directory metadata too, and each lost file
    // is named.
    let target = cairn.path("target");
    let restore = cairn.restore(&before, &target);
    assert_eq!(restore.code, 1, "{}", restore.stderr);
    let errors: Vec<String> = restore.json()["summary"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.as_str().unwrap_or("").to_owned())
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e.contains(&format!("pack {lost_short} is missing"))),
        "{errors:?}"
    );
    let restored = cairn_e2e::run::restored_path(&target, &source);
    let differences = cairn_e2e::compare::differences(&source, &restored);
    assert_eq!(
        differences.len(),
        errors.len(),
        "only the named files differ: {differences:?} vs {errors:?}"
    );

    // Check names the pack and goes on.
    let (code, found) = problems(&cairn, &["--read-data"]);
    assert_eq!(code, 1);
    assert!(
        found.iter().all(|(kind, _)| kind == "missing_pack"),
        "{found:?}"
    );

    // The next backup stores the lost data again from the source: its snapshot
    // restores whole although the source did not change.
    let backup = cairn.run_os(&["backup".as_ref(), source.as_os_str()]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    assert!(
        backup.stderr.contains("missing from the repository"),
        "{}",
        backup.stderr
    );
    cairn.assert_restores_whole("latest", &source, "healed");
}

#[test]
fn damage_found_by_check_is_stored_again_by_the_next_backup() {
    let (cairn, source, _) = small_packs_with_a_backup(12, 60, 3 * 1024 * 1024);
    let pack = largest_pack(&cairn.repo);
    let len = fs::metadata(&pack).expect("size").len() as usize;
    flip_bit(&pack, len / 2, 0);
    let (code, found) = problems(&cairn, &["--read-data"]);
    assert_eq!(code, 1);
    assert!(
        found.iter().any(|(kind, _)| kind == "bad_blob"),
        "{found:?}"
    );
    next_backup_stores_the_damaged_data_again(&cairn, &source);
}

#[test]
fn damage_a_restore_ran_into_is_stored_again_by_the_next_backup() {
    let (cairn, source, snapshot) = small_packs_with_a_backup(13, 60, 3 * 1024 * 1024);
    let pack = largest_pack(&cairn.repo);
    let len = fs::metadata(&pack).expect("size").len() as usize;
    flip_bit(&pack, len / 3, 5);
    // No check: the restore is what finds the damage.
    let restore = cairn.restore(&snapshot, &cairn.path("damaged"));
    assert_eq!(restore.code, 1, "{}", restore.stderr);
    next_backup_stores_the_damaged_data_again(&cairn, &source);
}

#[test]
fn a_deleted_snapshot_and_a_forgotten_one_put_back_are_reported() {
    use cairn_engine::ops::forget::ForgetOptions;
    use cairn_engine::retention::KeepPolicy;

    let (cairn, first) = repository_with_a_snapshot();
    let source = cairn.path("source");
    let mut ids = vec![first];
    for round in 0..2 {
        fs::write(source.join("changing"), format!("round {round}")).expect("write");
        ids.push(cairn.backup_id(&source));
    }
    cairn.run(&["snapshots"]).ok();

    // The newest snapshot deleted from the storage.
    fs::remove_file(cairn.repo.join("snapshots").join(&ids[2])).expect("delete");
    let listed = cairn.run(&["snapshots"]);
    assert_eq!(listed.code, 1);
    assert!(
        listed
            .stderr
            .contains(&format!("snapshot {}", &ids[2][..8]))
            && listed
                .stderr
                .contains("disappeared from the repository without being forgotten"),
        "{}",
        listed.stderr
    );
    let (code, found) = problems(&cairn, &[]);
    assert_eq!(code, 1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "snapshot_disappeared");
    // Reported once by a check; the next one passes.
    assert_eq!(problems(&cairn, &[]), (0, Vec::new()));

    // The oldest forgotten by a policy (as another host's job would), then put back.
    let saved = fs::read(cairn.repo.join("snapshots").join(&ids[0])).expect("save");
    let other_host_cache = tempfile::tempdir().expect("cache");
    let repo = cairn_engine::Repository::open_with_cache(
        std::sync::Arc::new(cairn_engine::LocalBackend::new(&cairn.repo)),
        &cairn_engine::Unlock::Passphrase(PASSPHRASE.to_owned().into()),
        Some(other_host_cache.path()),
    )
    .expect("open");
    let newest = repo.snapshots().expect("list").pop().expect("one").1;
    let plan = repo
        .plan_forget(&ForgetOptions {
            host: newest.host,
            paths: newest.paths,
            job: None,
            made_by_job: Vec::new(),
            policy: KeepPolicy {
                last: 1,
                ..KeepPolicy::default()
            },
            time_zone: jiff::tz::TimeZone::UTC,
            now: jiff::Timestamp::now(),
            protect: Vec::new(),
        })
        .expect("plan");
    assert_eq!(repo.forget(&plan).expect("forget"), 1);
    // A forget is not a deletion.
    assert_eq!(problems(&cairn, &[]), (0, Vec::new()));
    fs::write(cairn.repo.join("snapshots").join(&ids[0]), saved).expect("put back");
    let (code, found) = problems(&cairn, &[]);
    assert_eq!(code, 1);
    assert_eq!(found[0].0, "snapshot_reappeared", "{found:?}");
    assert!(found[0].1.contains(&ids[0][..8]));
    // A host that never saw the repository before knows it too, from the forget record.
    let fresh = cairn.command(&["check", "--output", "json"]);
    let mut fresh = fresh;
    fresh.arg("--cache-dir").arg(cairn.path("fresh-cache"));
    let ran = cairn_e2e::hostile::run_limited(fresh, MEMORY_MIB);
    assert_eq!(ran.code, 1, "{}", ran.stdout);
    assert!(ran.stdout.contains("snapshot_reappeared"), "{}", ran.stdout);
}

#[test]
fn an_unusable_key_file_is_listed_with_its_problem_and_can_be_removed() {
    let (cairn, _) = repository_with_a_snapshot();
    let planted = "f".repeat(64);
    giant(&cairn.repo.join("keys").join(&planted), 500_000_000);
    let listed = cairn.run(&["key", "list"]);
    assert_eq!(listed.code, 1, "{}", listed.stderr);
    let line = listed
        .stdout
        .lines()
        .find(|l| l.contains("ffffffff"))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(
        line.contains("unusable") && line.contains("500000000 bytes"),
        "{line}"
    );
    let json = cairn.run(&["key", "list", "--output", "json"]).json();
    let entry = json
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == planted.as_str())
        .expect("the planted key is listed")
        .clone();
    assert_eq!(entry["kind"], serde_json::Value::Null);
    assert!(entry["problem"].as_str().is_some(), "{entry}");
    cairn.run(&["key", "remove", "ffffffff"]).ok();
    cairn.run(&["key", "list"]).ok();
    // The last readable key still cannot go.
    let real = objects(&cairn.repo, "keys").remove(0);
    let short = &real.file_name().expect("name").to_string_lossy()[..8];
    assert_eq!(cairn.run(&["key", "remove", short]).code, 2);
}
