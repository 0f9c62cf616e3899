//! Repositories the daemon has opened, kept open: opening one runs the passphrase
//! KDF (scrypt, about half a second by design), which a snapshot listing or each
//! directory of a browse must not pay again. The master keys stay in the daemon's
//! memory, next to the identity that unseals every passphrase anyway; their Debug
//! output is redacted by the engine.

use std::collections::HashMap;
use std::sync::Mutex;

use cairn_engine::Repository;

use crate::error::DaemonError;
use crate::store::RepoRecord;

#[derive(Debug, Default)]
pub struct Unlocked {
    open: Mutex<HashMap<String, (RepoRecord, Repository)>>,
}

impl Unlocked {
    /// The open repository `record` names, opening it with `open` when it is not
    /// open yet or its record changed (re-added elsewhere, another repository).
    pub fn get_or_open(
        &self,
        record: &RepoRecord,
        open: impl FnOnce() -> Result<Repository, DaemonError>,
    ) -> Result<Repository, DaemonError> {
        if let Some((known, repo)) = self.lock().get(&record.name)
            && known == record
        {
            return Ok(repo.clone());
        }
        // The KDF runs without the lock: other repositories stay available meanwhile.
        let repo = open()?;
        self.lock()
            .insert(record.name.clone(), (record.clone(), repo.clone()));
        Ok(repo)
    }

    /// The repository `name` when it is open already (never opens it).
    pub fn peek(&self, name: &str) -> Option<Repository> {
        self.lock().get(name).map(|(_, repo)| repo.clone())
    }

    /// Drops a repository the daemon no longer knows.
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (RepoRecord, Repository)>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use cairn_engine::secrecy::SecretString;
    use cairn_engine::{InitOptions, LocalBackend, NewKey};

    fn repository(dir: &std::path::Path) -> Repository {
        Repository::init(
            Arc::new(LocalBackend::new(dir)),
            &NewKey::Passphrase {
                passphrase: SecretString::from("unlocked-test".to_owned()),
                work_factor: Some(10),
            },
            &InitOptions::default(),
        )
        .unwrap()
    }

    fn record(name: &str, dir: &std::path::Path, repo: &Repository) -> RepoRecord {
        RepoRecord {
            name: name.into(),
            location: dir.display().to_string(),
            repository_id: repo.config().id.clone(),
            added: 1,
            options: Vec::new(),
            s3_access_key_id: None,
            ssh_key_passphrase: false,
        }
    }

    #[test]
    fn a_repository_is_opened_once_until_its_record_changes_or_it_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let first = repository(&dir.path().join("a"));
        let second = repository(&dir.path().join("b"));
        let unlocked = Unlocked::default();
        let opens = std::cell::Cell::new(0);
        let open = |repo: &Repository| {
            opens.set(opens.get() + 1);
            Ok(repo.clone())
        };
        let a = record("main", &dir.path().join("a"), &first);
        unlocked.get_or_open(&a, || open(&first)).unwrap();
        unlocked.get_or_open(&a, || open(&first)).unwrap();
        assert_eq!(opens.get(), 1, "the second call used the open repository");

        let moved = record("main", &dir.path().join("b"), &second);
        let got = unlocked.get_or_open(&moved, || open(&second)).unwrap();
        assert_eq!(got.config().id, second.config().id);
        assert_eq!(opens.get(), 2, "a changed record opens again");

        unlocked.forget("main");
        unlocked.get_or_open(&moved, || open(&second)).unwrap();
        assert_eq!(opens.get(), 3, "a forgotten repository opens again");
        let failed = unlocked.get_or_open(&record("other", dir.path(), &first), || {
            Err(DaemonError::FailedPrecondition("wrong passphrase".into()))
        });
        assert!(failed.is_err());
    }
}
