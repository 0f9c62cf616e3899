//! Source trees for the tests: one with every case a restore must get right, and a
//! seeded random one for crash tests.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps};

/// A deterministic byte generator (xorshift), so corpora are reproducible.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
    /// Text-like, compressible bytes.
    pub fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "backup", "cairn", "restore", "chunk", "pack", "index", "tree", "snapshot", "the",
            "of", "a", "server\n",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            out.extend_from_slice(WORDS[(self.next_u64() % 12) as usize].as_bytes());
            out.push(b' ');
        }
        out.truncate(len);
        out
    }
}

fn set_time(path: &Path, secs: i64, nanos: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap_or_else(|e| panic!("utimensat {}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Builds the tree with every case in the restore contract under `root` (which must
/// not exist). Returns the paths of notable entries.
pub fn special_tree(root: &Path, sparse_size: u64) -> PathBuf {
    let mut rng = Rng::new(42);
    fs::create_dir_all(root).expect("root");
    // Plain files: empty, small, multi-chunk random, compressible.
    let plain = root.join("plain");
    fs::create_dir(&plain).expect("mkdir");
    fs::write(plain.join("empty"), b"").expect("write");
    fs::write(plain.join("small.txt"), b"hello cairn\n").expect("write");
    fs::write(plain.join("random.bin"), rng.bytes(3 * 1024 * 1024 + 17)).expect("write");
    fs::write(plain.join("text.txt"), rng.text(2 * 1024 * 1024)).expect("write");
    // Names: non-UTF-8, 255 bytes, odd characters.
    let names = root.join("names");
    fs::create_dir(&names).expect("mkdir");
    fs::write(
        names.join(OsStr::from_bytes(b"caf\xe9-\xff\xfe")),
        b"latin-1 name",
    )
    .expect("write");
    fs::write(names.join("n".repeat(255)), b"long name").expect("write");
    fs::write(names.join("new\nline and spaces \t"), b"odd").expect("write");
    fs::create_dir(names.join(OsStr::from_bytes(b"dir-\x80"))).expect("mkdir");
    // 40 levels deep.
    let mut deep = root.join("deep");
    for level in 0..40 {
        deep.push(format!("level-{level:02}"));
    }
    fs::create_dir_all(&deep).expect("deep");
    fs::write(deep.join("bottom.txt"), b"40 levels down").expect("write");
    // Hardlinks across directories.
    let links = root.join("links");
    for d in ["a", "b", "c"] {
        fs::create_dir_all(links.join(d)).expect("mkdir");
    }
    fs::write(links.join("a/original"), rng.text(10_000)).expect("write");
    fs::hard_link(links.join("a/original"), links.join("b/second")).expect("link");
    fs::hard_link(links.join("a/original"), links.join("c/third")).expect("link");
    // Symlinks: relative, dangling, looping, absolute, non-UTF-8 target.
    let sym = root.join("sym");
    fs::create_dir(&sym).expect("mkdir");
    std::os::unix::fs::symlink("../plain/small.txt", sym.join("relative")).expect("symlink");
    std::os::unix::fs::symlink("does/not/exist", sym.join("dangling")).expect("symlink");
    std::os::unix::fs::symlink("loop-b", sym.join("loop-a")).expect("symlink");
    std::os::unix::fs::symlink("loop-a", sym.join("loop-b")).expect("symlink");
    std::os::unix::fs::symlink("/etc/hostname", sym.join("absolute")).expect("symlink");
    std::os::unix::fs::symlink(OsStr::from_bytes(b"target-\xff"), sym.join("raw-target"))
        .expect("symlink");
    // A sparse file with data in the middle.
    let sparse = root.join("sparse.img");
    let file = fs::File::create(&sparse).expect("sparse");
    file.set_len(sparse_size).expect("set_len");
    std::os::unix::fs::FileExt::write_all_at(&file, &rng.bytes(1024 * 1024), sparse_size / 2)
        .expect("write");
    drop(file);
    // Special files.
    let special = root.join("special");
    fs::create_dir(&special).expect("mkdir");
    rustix::fs::mknodat(
        CWD,
        special.join("fifo"),
        FileType::Fifo,
        Mode::from_bits_truncate(0o640),
        0,
    )
    .expect("mkfifo");
    if crate::run::is_root() {
        let dev = rustix::fs::makedev(1, 3);
        rustix::fs::mknodat(
            CWD,
            special.join("null-like"),
            FileType::CharacterDevice,
            Mode::from_bits_truncate(0o666),
            dev,
        )
        .expect("mknod");
        let dev = rustix::fs::makedev(7, 200);
        rustix::fs::mknodat(
            CWD,
            special.join("loop-like"),
            FileType::BlockDevice,
            Mode::from_bits_truncate(0o660),
            dev,
        )
        .expect("mknod");
    }
    // Extended attributes on a file and a directory.
    let attrs = root.join("xattrs");
    fs::create_dir(&attrs).expect("mkdir");
    fs::write(attrs.join("tagged.txt"), b"with xattrs").expect("write");
    xattr::set(attrs.join("tagged.txt"), "user.cairn.note", b"kept")
        .expect("xattr (does the filesystem support user xattrs?)");
    xattr::set(
        attrs.join("tagged.txt"),
        "user.cairn.binary",
        &[0u8, 255, 1, 254],
    )
    .expect("xattr");
    xattr::set(&attrs, "user.cairn.dir", b"on a directory").expect("xattr");
    // Modes, including setuid, setgid and sticky.
    let modes = root.join("modes");
    fs::create_dir(&modes).expect("mkdir");
    for (name, mode) in [
        ("setuid", 0o4755),
        ("setgid", 0o2711),
        ("private", 0o600),
        ("none", 0o000),
        ("exec", 0o755),
    ] {
        fs::write(modes.join(name), name.as_bytes()).expect("write");
        chmod(&modes.join(name), mode);
    }
    fs::create_dir(modes.join("sticky")).expect("mkdir");
    chmod(&modes.join("sticky"), 0o1777);
    fs::create_dir(modes.join("setgid-dir")).expect("mkdir");
    chmod(&modes.join("setgid-dir"), 0o2750);
    if crate::run::is_root() {
        let owned = root.join("owned");
        fs::create_dir(&owned).expect("mkdir");
        fs::write(owned.join("by-1234"), b"owned").expect("write");
        rustix::fs::chown(
            owned.join("by-1234"),
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(5678)),
        )
        .expect("chown");
        chmod(&owned.join("by-1234"), 0o4750);
        std::os::unix::fs::symlink("by-1234", owned.join("link-by-4321")).expect("symlink");
        rustix::fs::chownat(
            CWD,
            owned.join("link-by-4321"),
            Some(rustix::fs::Uid::from_raw(4321)),
            Some(rustix::fs::Gid::from_raw(8765)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .expect("lchown");
    }
    // Nanosecond mtimes on everything, children before parents.
    set_times_recursively(root, 1_700_000_000);
    sparse
}

fn set_times_recursively(path: &Path, base: i64) {
    let meta = fs::symlink_metadata(path).expect("stat");
    if meta.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for (i, entry) in entries.iter().enumerate() {
            set_times_recursively(entry, base + i as i64 * 7);
        }
    }
    // Distinct nanoseconds per entry, never zero, so a restore that drops them is caught.
    let nanos =
        (blake3::hash(path.as_os_str().as_bytes()).as_bytes()[0] as i64) * 3_900_001 + 123_456_789;
    set_time(path, base, nanos % 1_000_000_000);
}

/// A seeded tree of `files` files in nested directories (about `bytes` in total).
pub fn random_tree(root: &Path, seed: u64, files: usize, bytes: usize) {
    let mut rng = Rng::new(seed);
    let per_file = bytes / files.max(1);
    for i in 0..files {
        let dir = root.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        fs::create_dir_all(&dir).expect("mkdir");
        let len = (rng.next_u64() as usize % (per_file * 2)).max(1);
        let data = if i % 2 == 0 {
            rng.text(len)
        } else {
            rng.bytes(len)
        };
        fs::write(dir.join(format!("f{i}")), data).expect("write");
    }
}

/// Content hash of every file below `root`, by relative path: what a snapshot of it
/// must restore.
pub fn manifest(root: &Path) -> std::collections::BTreeMap<PathBuf, blake3::Hash> {
    let mut out = std::collections::BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("below root").to_path_buf();
                out.insert(rel, blake3::hash(&fs::read(&path).expect("read")));
            }
        }
    }
    out
}

/// Changes a [`random_tree`] of 100 files the way a day does: rewrites a few files,
/// deletes one, adds a new one, so every backup has data to upload and some to drop.
pub fn mutate(root: &Path, rng: &mut Rng, round: usize) {
    let file = |n: usize| root.join(format!("d{}/e{}/f{n}", n % 7, n % 3));
    for _ in 0..8 {
        let len = 20_000 + rng.next_u64() as usize % 100_000;
        fs::write(file(rng.next_u64() as usize % 100), rng.bytes(len)).expect("rewrite");
    }
    let _ = fs::remove_file(file(rng.next_u64() as usize % 100));
    fs::write(root.join(format!("d0/new-{round}")), rng.bytes(400_000)).expect("new file");
}
