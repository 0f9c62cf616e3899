//! Tools for the hostile-repository tests: damaging and planting repository objects the
//! way storage faults and an attacker with write access do.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{Cairn, Ran};

/// Flips one bit of a file. The file is replaced, not written in place, so a copy
/// made of hard links leaves the original alone.
pub fn flip_bit(path: &Path, byte: usize, bit: u8) {
    let mut bytes = std::fs::read(path).expect("read for flipping");
    bytes[byte] ^= 1 << bit;
    std::fs::remove_file(path).expect("unlink before rewriting");
    std::fs::write(path, bytes).expect("write flipped");
}

/// Copies a directory tree, each file as a hard link to the original (repository
/// objects are never written in place, and [`flip_bit`] replaces what it damages).
pub fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir copy");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            link_tree(&entry.path(), &target);
        } else {
            std::fs::hard_link(entry.path(), &target).expect("link");
        }
    }
}

/// A copy of `cairn`'s repository with a cache of its own, for one damage trial.
pub fn trial_copy(cairn: &Cairn) -> Cairn {
    let copy = Cairn::new_uninitialised();
    link_tree(&cairn.repo, &copy.repo);
    copy
}

/// The files of one kind of object (`keys`, `snapshots`, `index`, `data`), sorted.
pub fn objects(repo: &Path, kind: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![repo.join(kind)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The repository's public recipient, as anyone who can read its config has it.
pub fn recipient(repo: &Path) -> age::x25519::Recipient {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("config")).expect("config"))
            .expect("config json");
    config["recipient"]
        .as_str()
        .expect("recipient")
        .parse()
        .expect("age recipient")
}

/// Encrypts `plaintext` to the repository's public recipient: what an attacker without
/// a key can make.
pub fn encrypt_to_repository(repo: &Path, plaintext: &[u8]) -> Vec<u8> {
    let recipient = recipient(repo);
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("encryptor");
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).expect("wrap");
    std::io::Write::write_all(&mut writer, plaintext).expect("encrypt");
    writer.finish().expect("finish");
    out
}

/// Writes `bytes` as an object of `kind` named by their hash (as Cairn names objects).
pub fn plant(repo: &Path, kind: &str, bytes: &[u8]) -> String {
    let name = blake3::hash(bytes).to_hex().to_string();
    let path = if kind == "data" {
        repo.join("data").join(&name[..2]).join(&name)
    } else {
        repo.join(kind).join(&name)
    };
    std::fs::write(path, bytes).expect("plant");
    name
}

/// An age header with `stanzas` X25519 recipient stanzas, then garbage: what makes an
/// unbounded age reader try every stanza against its identity.
pub fn many_stanza_age_file(stanzas: usize) -> Vec<u8> {
    let mut out = b"age-encryption.org/v1\n".to_vec();
    for n in 0..stanzas {
        out.extend_from_slice(format!("-> X25519 {:043}\n{:043}\n", n, n).as_bytes());
    }
    out.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    out.extend_from_slice(&[0u8; 256]);
    out
}

/// A file of `len` bytes that takes no space (a sparse hole): a giant planted object.
pub fn giant(path: &Path, len: u64) {
    let file = std::fs::File::create(path).expect("create giant");
    file.set_len(len).expect("extend giant");
}

/// Runs a prepared `cairn` command with its data segment (heap and mmaps) limited to
/// `mib`: a reader that allocates what a planted object says dies instead of passing.
pub fn run_limited(mut command: Command, mib: u64) -> Ran {
    let limit = mib * 1024 * 1024;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            rustix::process::setrlimit(
                rustix::process::Resource::Data,
                rustix::process::Rlimit {
                    current: Some(limit),
                    maximum: Some(limit),
                },
            )
            .map_err(std::io::Error::from)
        });
    }
    Ran::from(command.output().expect("running cairn"))
}

/// Makes a FIFO (what a restore must replace, and a reader must never open and wait on).
pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_bits_truncate(0o644),
        0,
    )
    .expect("mkfifo");
}

/// The largest pack file of a repository: a data pack of the files.
pub fn largest_pack(repo: &Path) -> PathBuf {
    objects(repo, "data")
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a pack")
}
