//! Repositories the daemon knows: adding one (initialising it or proving its
//! passphrase), forgetting one, opening one by name with its sealed passphrase, and the
//! open ones kept for the API ([`crate::unlocked`]). Above the store and below the API
//! and the runner.

use std::path::Path;

use cairn_engine::backend::location::Location;
use cairn_engine::backend::open::{BackendOptions, open_backend};
use cairn_engine::backend::s3::S3Credentials;
use cairn_engine::secrecy::SecretString;
use cairn_engine::{IndexedRepository, InitOptions, NewKey, Repository, Unlock};

use crate::activity::RunsGoing;
use crate::audit::Pending;
use crate::changes::{Change, Changes};
use crate::error::{DaemonError, echo};
use crate::secrets::Sealer;
use crate::store::{JOBS, JobRecord, REPOSITORIES, RepoRecord, SECRETS, Store, now_ms};
use crate::unlocked::Unlocked;

/// A repository to add, as the caller gave it (checked by [`Repos::add`]).
#[derive(Debug)]
pub struct NewRepository {
    pub name: String,
    pub location: String,
    pub passphrase: SecretString,
    /// Make a new repository there (otherwise open the one that is there).
    pub init: bool,
    /// Backend settings, `KEY=VALUE`.
    pub options: Vec<String>,
    /// For S3: the access key id and secret key (sealed; else the daemon's environment).
    pub s3_credentials: Option<(String, SecretString)>,
    /// For SFTP: the passphrase of its key (sealed).
    pub ssh_key_passphrase: Option<SecretString>,
}

/// A daemon's repositories: where they are kept, how their passphrases are sealed, the
/// open ones, the runs going on, and who hears of a change.
#[derive(Debug)]
pub struct Repos<'a> {
    pub store: &'a Store,
    pub sealer: &'a Sealer,
    pub unlocked: &'a Unlocked,
    pub cache_dir: &'a Path,
    pub runs: &'a dyn RunsGoing,
    pub changes: &'a Changes,
}

impl Repos<'_> {
    pub fn get(&self, name: &str) -> Result<RepoRecord, DaemonError> {
        self.store
            .read("reading a repository", |rx| {
                rx.get_named(REPOSITORIES, name)
            })?
            .ok_or_else(|| {
                DaemonError::NotFound(format!(
                    "no repository named {}; `cairn repo list` shows them",
                    echo(name)
                ))
            })
    }

    /// The names of the jobs that back up to or check `name`.
    pub fn jobs_using(&self, name: &str) -> Result<Vec<String>, DaemonError> {
        Ok(self.store.read("listing jobs", |rx| {
            Ok(rx
                .list_named::<JobRecord>(JOBS, None, usize::MAX)?
                .into_iter()
                .filter(|(_, j)| j.repository == name)
                .map(|(n, _)| n)
                .collect())
        })?)
    }

    /// The repository `name`, opened (kept open between calls).
    pub fn open(&self, name: &str) -> Result<Repository, DaemonError> {
        let record = self.get(name)?;
        self.unlocked.get_or_open(&record, || {
            let passphrase = passphrase(self.store, self.sealer, name)?;
            let options = backend_options(self.store, self.sealer, &record)?;
            Ok(open_record(&record, &passphrase, &options, self.cache_dir)?)
        })
    }

    /// The repository `name` with its index loaded (from the cache when it is current).
    pub fn open_indexed(&self, name: &str) -> Result<IndexedRepository, DaemonError> {
        Ok(self.open(name)?.load_index(self.cache_dir)?)
    }

    /// Adds a repository: initialises it or opens it to prove the passphrase, then
    /// keeps its record and its sealed passphrase.
    pub fn add(&self, new: NewRepository, audit: &Pending) -> Result<RepoRecord, DaemonError> {
        crate::names::check_name("name", &new.name)?;
        let location = Location::parse(&new.location)
            .map_err(|e| DaemonError::InvalidArgument(format!("location: {e}")))?;
        if let Location::Local(path) = &location
            && !path.is_absolute()
        {
            return Err(DaemonError::InvalidArgument(format!(
                "location: {} is not an absolute path",
                echo(&new.location)
            )));
        }
        let mut options = BackendOptions::from_list(&new.options)
            .map_err(|e| DaemonError::InvalidArgument(format!("options: {e}")))?;
        if new.s3_credentials.is_some() && !matches!(location, Location::S3(_)) {
            return Err(DaemonError::InvalidArgument(
                "s3 credentials: given for a location that is not s3:...".into(),
            ));
        }
        if new.ssh_key_passphrase.is_some() && !matches!(location, Location::Sftp(_)) {
            return Err(DaemonError::InvalidArgument(
                "ssh key passphrase: given for a location that is not sftp:...".into(),
            ));
        }
        options.sftp.key_passphrase = new.ssh_key_passphrase.clone();
        if let Some((id, secret)) = &new.s3_credentials {
            options.s3_credentials = Some(S3Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: None,
            });
        }
        if cairn_engine::secrecy::ExposeSecret::expose_secret(&new.passphrase).is_empty() {
            return Err(DaemonError::InvalidArgument(
                "passphrase: empty; the daemon needs the repository's passphrase to run jobs"
                    .into(),
            ));
        }
        let exists = self.store.read("reading a repository", |rx| {
            rx.get_named::<RepoRecord>(REPOSITORIES, &new.name)
        })?;
        if exists.is_some() {
            return Err(DaemonError::AlreadyExists(format!(
                "a repository named {:?} exists already",
                new.name
            )));
        }
        let backend = open_backend(&location, &options)?;
        // The passphrase is the caller's input here: one that opens nothing is a bad
        // argument (a stored one that stops opening is the daemon's state).
        let wrong_key = |e: cairn_engine::Error| match crate::error::failure(&e) {
            crate::error::Failure::WrongKey => {
                DaemonError::InvalidArgument(format!("passphrase: {e}"))
            }
            _ => DaemonError::from(e),
        };
        let repo = if new.init {
            Repository::init(
                backend,
                &NewKey::Passphrase {
                    passphrase: new.passphrase.clone(),
                    work_factor: None,
                },
                &InitOptions::default(),
            )?
        } else {
            Repository::open_with_cache(
                backend,
                &Unlock::Passphrase(new.passphrase.clone()),
                Some(self.cache_dir),
            )
            .map_err(wrong_key)?
        };
        let record = RepoRecord {
            name: new.name,
            location: location.to_string(),
            repository_id: repo.config().id.clone(),
            added: now_ms(),
            options: new.options,
            s3_access_key_id: new.s3_credentials.as_ref().map(|(id, _)| id.clone()),
            ssh_key_passphrase: new.ssh_key_passphrase.is_some(),
        };
        let secret = RepoRecord::passphrase_secret(&record.name);
        let sealed = self.sealer.seal(&secret, &new.passphrase)?;
        let s3_secret = RepoRecord::s3_secret(&record.name);
        let sealed_s3 = new
            .s3_credentials
            .as_ref()
            .map(|(_, key)| self.sealer.seal(&s3_secret, key))
            .transpose()?;
        let ssh_secret = RepoRecord::ssh_key_secret(&record.name);
        let sealed_ssh = new
            .ssh_key_passphrase
            .as_ref()
            .map(|passphrase| self.sealer.seal(&ssh_secret, passphrase))
            .transpose()?;
        audit.write(self.store, "adding a repository", |tx| {
            tx.put_named(REPOSITORIES, &record.name, &record)?;
            if let Some(sealed) = &sealed_s3 {
                tx.put_named_bytes(SECRETS, &s3_secret, sealed)?;
            }
            if let Some(sealed) = &sealed_ssh {
                tx.put_named_bytes(SECRETS, &ssh_secret, sealed)?;
            }
            tx.put_named_bytes(SECRETS, &secret, &sealed)
        })?;
        tracing::info!(repository = %record.name, location = %record.location, init = new.init, "repository added");
        self.changes
            .publish(Change::Repository(record.name.clone()));
        Ok(record)
    }

    /// Forgets a repository no job uses and no run works on; its data is untouched.
    pub fn forget(&self, name: &str, audit: &Pending) -> Result<(), DaemonError> {
        self.get(name)?;
        let jobs = self.jobs_using(name)?;
        if !jobs.is_empty() {
            return Err(DaemonError::FailedPrecondition(format!(
                "repository {name} is used by job{} {}; delete or move them first",
                if jobs.len() == 1 { "" } else { "s" },
                jobs.join(", ")
            )));
        }
        if self.runs.uses_repository(name) {
            return Err(DaemonError::FailedPrecondition(format!(
                "a run on repository {name} is going; wait for it or cancel it"
            )));
        }
        audit.write(self.store, "forgetting a repository", |tx| {
            tx.delete_named(REPOSITORIES, name)?;
            tx.delete_named(SECRETS, &RepoRecord::passphrase_secret(name))?;
            tx.delete_named(SECRETS, &RepoRecord::s3_secret(name))?;
            tx.delete_named(SECRETS, &RepoRecord::ssh_key_secret(name))?;
            crate::store::storage_health::forget(tx, name)?;
            Ok::<_, DaemonError>(())
        })?;
        self.unlocked.forget(name);
        tracing::info!(repository = %name, "repository forgotten (its data is untouched)");
        self.changes.publish(Change::Repository(name.to_owned()));
        Ok(())
    }
}

/// A repository's passphrase, unsealed from the store.
pub fn passphrase(store: &Store, sealer: &Sealer, name: &str) -> Result<SecretString, DaemonError> {
    unseal(
        store,
        sealer,
        &RepoRecord::passphrase_secret(name),
        "passphrase",
        name,
    )
}

/// The secret stored under `secret` for repository `name`, unsealed.
fn unseal(
    store: &Store,
    sealer: &Sealer,
    secret: &str,
    what: &str,
    name: &str,
) -> Result<SecretString, DaemonError> {
    let sealed = store
        .read("reading a secret", |rx| rx.get_named_bytes(SECRETS, secret))?
        .ok_or_else(|| {
            DaemonError::FailedPrecondition(format!(
                "no {what} is stored for repository {name}; add it again"
            ))
        })?;
    Ok(sealer.unseal(secret, &sealed)?)
}

/// How to reach a repository's storage: its settings and, for S3, its credentials
/// (the sealed secret key, else the daemon's own AWS_* environment), for SFTP its
/// key's sealed passphrase.
pub fn backend_options(
    store: &Store,
    sealer: &Sealer,
    record: &RepoRecord,
) -> Result<BackendOptions, DaemonError> {
    let mut options = BackendOptions::from_list(&record.options)?;
    if let Some(access_key_id) = &record.s3_access_key_id {
        let secret = RepoRecord::s3_secret(&record.name);
        let key = unseal(store, sealer, &secret, "S3 secret key", &record.name)?;
        options.s3_credentials = Some(S3Credentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: key,
            session_token: None,
        });
    }
    if record.ssh_key_passphrase {
        let secret = RepoRecord::ssh_key_secret(&record.name);
        let passphrase = unseal(store, sealer, &secret, "SSH key passphrase", &record.name)?;
        options.sftp.key_passphrase = Some(passphrase);
    }
    Ok(options)
}

/// Opens the repository a record names, refusing when its location now holds
/// another repository.
pub fn open_record(
    record: &RepoRecord,
    passphrase: &SecretString,
    options: &BackendOptions,
    cache_dir: &Path,
) -> cairn_engine::Result<Repository> {
    let backend = open_backend(&Location::parse(&record.location)?, options)?;
    let repo = Repository::open_with_cache(
        backend,
        &Unlock::Passphrase(passphrase.clone()),
        Some(cache_dir),
    )?;
    let found = repo.config().id.to_string();
    if found != record.repository_id {
        return Err(cairn_engine::Error::invalid(
            format!("repository {}", record.name),
            format!(
                "{} now holds repository {found}, not {} that was added under this name; re-add it if the move was deliberate",
                record.location, record.repository_id
            ),
        ));
    }
    Ok(repo)
}
