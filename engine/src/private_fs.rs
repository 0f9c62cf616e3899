//! Directories and files that only their owner may use: repositories, caches and
//! records are created 0700/0600 with the mode given explicitly, so a umask of 000
//! (a careless shell, a misconfigured service) never leaves them open to other users,
//! who could otherwise move a snapshot file or write into a cache.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Mode of every directory Cairn makes for itself.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Cairn makes for itself.
pub const FILE_MODE: u32 = 0o600;

/// `create_dir_all` with every directory it creates made 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates (or truncates) a file made 0600.
pub fn create(path: &Path) -> io::Result<File> {
    options().create(true).truncate(true).open(path)
}

/// Writes a whole file, made 0600 when new.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    io::Write::write_all(&mut create(path)?, bytes)
}

/// Write options whose created files are 0600.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).mode(FILE_MODE);
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_stay_private_under_a_umask_of_000() {
        let dir = tempfile::tempdir().unwrap();
        // The umask is per process: set, create, restore, before anything else runs
        // in this test binary's thread could create files with it.
        let old = rustix::process::umask(rustix::fs::Mode::empty());
        let deep = dir.path().join("a/b/c");
        let made = create_dir_all(&deep).and_then(|()| write(&deep.join("f"), b"x"));
        rustix::process::umask(old);
        made.unwrap();
        for (path, want) in [
            (dir.path().join("a"), 0o700),
            (deep.clone(), 0o700),
            (deep.join("f"), 0o600),
        ] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{}", path.display());
        }
    }
}
