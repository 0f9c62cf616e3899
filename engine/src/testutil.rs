//! Helpers shared by the engine's unit tests.

mod pseudo_random;

pub use pseudo_random::pseudo_random;

/// A real repository in a temporary directory with one source directory, for tests of
/// operations that need snapshots.
pub struct TestRepo {
    dir: tempfile::TempDir,
    repo: crate::repository::IndexedRepository,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        use crate::backend::local::LocalBackend;
        use crate::keyfile::{NewKey, Unlock};
        use crate::repository::{InitOptions, Repository};
        use age::secrecy::SecretString;
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("source")).unwrap();
        std::fs::create_dir(dir.path().join("other")).unwrap();
        let backend = Arc::new(LocalBackend::new(dir.path().join("repo")));
        let passphrase = SecretString::from("test passphrase".to_owned());
        let key = NewKey::Passphrase {
            passphrase: passphrase.clone(),
            work_factor: Some(10),
        };
        Repository::init(backend.clone(), &key, &InitOptions::default()).unwrap();
        let repo = Repository::open(backend, &Unlock::Passphrase(passphrase))
            .unwrap()
            .load_index(&dir.path().join("cache"))
            .unwrap();
        TestRepo { dir, repo }
    }

    pub fn repo(&self) -> &crate::repository::Repository {
        self.repo.repo()
    }

    pub fn write_source_file(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join("source").join(name), bytes).unwrap();
    }

    /// The options of the backups `backup` makes (the source directory, host "test").
    pub fn backup_options(&self) -> crate::ops::backup::BackupOptions {
        crate::ops::backup::BackupOptions::default()
            .paths([self.dir.path().join("source")])
            .host(Some("test".into()))
    }

    pub fn backup(&mut self) -> crate::id::SnapshotId {
        let options = self.backup_options();
        self.backup_with(&options)
    }

    /// A backup of another directory: a different backup set.
    pub fn backup_other_paths(&mut self) -> crate::id::SnapshotId {
        let options = self.backup_options().paths([self.dir.path().join("other")]);
        self.backup_with(&options)
    }

    pub fn backup_with(
        &mut self,
        options: &crate::ops::backup::BackupOptions,
    ) -> crate::id::SnapshotId {
        let done = self
            .repo
            .backup(
                options,
                &crate::progress::NoProgress,
                &crate::cancel::CancelToken::new(),
            )
            .unwrap();
        done.snapshot_id
    }

    /// Restores `name` from the snapshot and checks its bytes.
    pub fn assert_restores(&mut self, snapshot: &crate::id::SnapshotId, name: &str, bytes: &[u8]) {
        let target = tempfile::tempdir().unwrap();
        self.repo
            .restore(
                snapshot,
                &crate::ops::restore::RestoreOptions::new(target.path()),
                &crate::progress::NoProgress,
                &crate::cancel::CancelToken::new(),
            )
            .unwrap();
        let source = self.dir.path().join("source").join(name);
        let restored = target.path().join(source.strip_prefix("/").unwrap());
        assert_eq!(std::fs::read(restored).unwrap(), bytes);
    }
}
