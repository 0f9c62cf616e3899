//! Compares two trees on every property a restore must keep: names (raw bytes),
//! types, content, size, mode (with setuid/setgid/sticky), owner, mtime in ns (files,
//! directories and symlinks), symlink targets (raw bytes), xattrs, device numbers,
//! hardlink grouping, and holes in sparse files.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Differences found, one line each; empty when the trees are identical.
pub fn differences(a: &Path, b: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut links_a: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut inode_b: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    walk(a, b, "", &mut out, &mut links_a, &mut inode_b);
    for group in links_a.values().filter(|g| g.len() > 1) {
        let restored: Vec<_> = group.iter().map(|p| inode_b.get(p)).collect();
        if restored.windows(2).any(|w| w[0] != w[1] || w[0].is_none()) {
            out.push(format!(
                "hardlink group {group:?} is not one inode after restore"
            ));
        }
    }
    out
}

fn names(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .map(|r| r.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(list) = xattr::list(path) {
        for name in list {
            if let Ok(Some(value)) = xattr::get(path, &name) {
                out.insert(name.as_bytes().to_vec(), value);
            }
        }
    }
    out
}

/// The inode flags a backup keeps, as `lsattr` letters would show them (or "?" when
/// the entry cannot be opened to ask).
fn inode_flags(path: &Path) -> String {
    let opened = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    );
    match opened {
        Ok(fd) => format!("{:#x}", cairn_engine::fsmeta::inode_flags(&fd)),
        Err(_) => "?".into(),
    }
}

fn hash_file(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let mut file = fs::File::open(path).expect("open for compare");
    std::io::copy(&mut file, &mut hasher).expect("read for compare");
    hasher.finalize()
}

fn walk(
    a: &Path,
    b: &Path,
    rel: &str,
    out: &mut Vec<String>,
    links: &mut HashMap<(u64, u64), Vec<String>>,
    inode_b: &mut BTreeMap<String, (u64, u64)>,
) {
    let (ma, mb) = match (fs::symlink_metadata(a), fs::symlink_metadata(b)) {
        (Ok(ma), Ok(mb)) => (ma, mb),
        (Ok(_), Err(e)) => {
            out.push(format!("{rel}: missing after restore ({e})"));
            return;
        }
        (Err(e), _) => panic!("source {} unreadable: {e}", a.display()),
    };
    let (ta, tb) = (ma.file_type(), mb.file_type());
    let kind = |t: fs::FileType| {
        if t.is_dir() {
            "dir"
        } else if t.is_symlink() {
            "symlink"
        } else if t.is_file() {
            "file"
        } else if t.is_fifo() {
            "fifo"
        } else if t.is_char_device() {
            "chardev"
        } else if t.is_block_device() {
            "blockdev"
        } else {
            "other"
        }
    };
    if kind(ta) != kind(tb) {
        out.push(format!("{rel}: type {} became {}", kind(ta), kind(tb)));
        return;
    }
    let mut differ = |what: &str, x: String, y: String| {
        if x != y {
            out.push(format!("{rel}: {what} {x} != {y}"));
        }
    };
    if !ta.is_symlink() {
        differ(
            "mode",
            format!("{:o}", ma.mode() & 0o7777),
            format!("{:o}", mb.mode() & 0o7777),
        );
    }
    differ(
        "owner",
        format!("{}:{}", ma.uid(), ma.gid()),
        format!("{}:{}", mb.uid(), mb.gid()),
    );
    differ(
        "mtime",
        format!("{}.{:09}", ma.mtime(), ma.mtime_nsec()),
        format!("{}.{:09}", mb.mtime(), mb.mtime_nsec()),
    );
    if !ta.is_symlink() {
        differ(
            "xattrs",
            format!("{:?}", xattrs(a)),
            format!("{:?}", xattrs(b)),
        );
    }
    if ta.is_file() || ta.is_dir() {
        differ("inode flags", inode_flags(a), inode_flags(b));
    }
    if ta.is_char_device() || ta.is_block_device() {
        differ("rdev", ma.rdev().to_string(), mb.rdev().to_string());
    }
    if ta.is_symlink() {
        let (la, lb) = (
            fs::read_link(a).expect("readlink"),
            fs::read_link(b).expect("readlink"),
        );
        differ(
            "link target",
            format!("{:?}", la.as_os_str().as_bytes()),
            format!("{:?}", lb.as_os_str().as_bytes()),
        );
    }
    if ta.is_file() {
        differ("size", ma.size().to_string(), mb.size().to_string());
        if ma.size() == mb.size() && hash_file(a) != hash_file(b) {
            out.push(format!("{rel}: content differs"));
        }
        // Holes stay holes, block for block: a sparse source must not come back with
        // more allocated than it had.
        let allocated_a = ma.blocks() * 512;
        let allocated_b = mb.blocks() * 512;
        if allocated_a < ma.size() && allocated_b > allocated_a {
            out.push(format!("{rel}: sparse file restored with {allocated_b} bytes allocated (source {allocated_a})"));
        }
        if ma.nlink() > 1 {
            links
                .entry((ma.dev(), ma.ino()))
                .or_default()
                .push(rel.to_owned());
        }
        inode_b.insert(rel.to_owned(), (mb.dev(), mb.ino()));
    }
    if ta.is_dir() {
        let (na, nb) = (names(a), names(b));
        for extra in nb.iter().filter(|n| !na.contains(n)) {
            out.push(format!(
                "{rel}/{}: appeared after restore",
                extra.to_string_lossy()
            ));
        }
        for name in na {
            let child_rel = format!("{rel}/{}", String::from_utf8_lossy(name.as_bytes()));
            walk(
                &a.join(&name),
                &b.join(&name),
                &child_rel,
                out,
                links,
                inode_b,
            );
        }
    }
}
