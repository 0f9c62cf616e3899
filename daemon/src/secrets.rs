//! Secrets the daemon keeps (repository passphrases; later S3 keys and database
//! passwords) are sealed with age to the daemon's own X25519 identity before they reach
//! the store, so the redb file, its backups and its copies never hold them in clear.
//!
//! The identity comes from a systemd credential (`$CREDENTIALS_DIRECTORY/identity`,
//! `LoadCredential=identity:...`) when there is one, else from `identity.age` in the
//! state dir, created on first start with mode 0600.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};

/// File name of the identity, in the state dir and in the credentials dir.
pub const IDENTITY_FILE: &str = "identity.age";
/// Credential name under `$CREDENTIALS_DIRECTORY`.
pub const IDENTITY_CREDENTIAL: &str = "identity";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("daemon identity {path}: {reason}")]
    Identity { path: PathBuf, reason: String },
    #[error(
        "secret {name} cannot be opened with this daemon's identity (was the identity replaced?); set the secret again"
    )]
    Unseal { name: String },
    #[error("sealing secret {name}: {reason}")]
    Seal { name: String, reason: String },
}

/// Writes a new owner-only file (refusing to replace one) and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), SecretsError> {
    let fail = |reason: String| SecretsError::Identity {
        path: path.to_owned(),
        reason,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| fail(format!("cannot create: {e}")))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(format!("cannot write: {e}")))
}

/// The daemon identity; Debug never shows the key.
pub struct Sealer {
    identity: age::x25519::Identity,
    source: PathBuf,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(identity from {})", self.source.display())
    }
}

impl Sealer {
    /// Loads the identity from the credentials dir, else from (or newly into) the
    /// state dir.
    pub fn load_or_create(
        state_dir: &Path,
        credentials_dir: Option<&Path>,
    ) -> Result<Sealer, SecretsError> {
        if let Some(dir) = credentials_dir {
            let path = dir.join(IDENTITY_CREDENTIAL);
            if path.exists() {
                return Sealer::load(&path);
            }
        }
        let path = state_dir.join(IDENTITY_FILE);
        if path.exists() {
            return Sealer::load(&path);
        }
        Sealer::create(&path)
    }

    fn load(path: &Path) -> Result<Sealer, SecretsError> {
        let fail = |reason: String| SecretsError::Identity {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(fail(format!(
                "mode {:o} lets others read it; chmod 600 it",
                meta.permissions().mode() & 0o777
            )));
        }
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| fail(e.to_string()))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .ok_or_else(|| fail("holds no AGE-SECRET-KEY line".into()))?;
        let identity = age::x25519::Identity::from_str(line)
            .map_err(|_| fail("its AGE-SECRET-KEY line is not a valid key".into()))?;
        Ok(Sealer {
            identity,
            source: path.to_owned(),
        })
    }

    fn create(path: &Path) -> Result<Sealer, SecretsError> {
        let identity = age::x25519::Identity::generate();
        let text = format!(
            "# cairnd identity: seals the secrets in the store. Without it they are lost.\n# public key: {}\n{}\n",
            identity.to_public(),
            identity.to_string().expose_secret()
        );
        write_new(path, text.as_bytes())?;
        tracing::info!(path = %path.display(), "created the daemon identity");
        Ok(Sealer {
            identity,
            source: path.to_owned(),
        })
    }

    /// Puts an identity at `out` for systemd to hand over as a credential
    /// (`LoadCredential=identity:...`): the state dir's, when the daemon already has
    /// one (its secrets stay readable), else a new one. Leaves an existing `out` alone
    /// after checking it. Returns what it did, in words.
    pub fn provision(out: &Path, state_dir: &Path) -> Result<String, SecretsError> {
        if out.exists() {
            Sealer::load(out)?;
            return Ok(format!("{} exists already; left alone", out.display()));
        }
        if let Some(dir) = out.parent() {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| SecretsError::Identity {
                    path: dir.to_owned(),
                    reason: format!("cannot create: {e}"),
                })?;
        }
        let existing = state_dir.join(IDENTITY_FILE);
        if existing.exists() {
            Sealer::load(&existing)?;
            let text = std::fs::read(&existing).map_err(|e| SecretsError::Identity {
                path: existing.clone(),
                reason: e.to_string(),
            })?;
            let temp = out.with_extension("new");
            let _ = std::fs::remove_file(&temp);
            write_new(&temp, &text)?;
            std::fs::rename(&temp, out).map_err(|e| SecretsError::Identity {
                path: out.to_owned(),
                reason: format!("cannot rename {} into place: {e}", temp.display()),
            })?;
            return Ok(format!(
                "copied the daemon's identity from {} to {}",
                existing.display(),
                out.display()
            ));
        }
        let sealer = Sealer::create(out)?;
        Ok(format!(
            "created a new identity in {} (public key {})",
            out.display(),
            sealer.identity.to_public()
        ))
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn seal(&self, name: &str, secret: &SecretString) -> Result<Vec<u8>, SecretsError> {
        let recipient = self.identity.to_public();
        age::encrypt(&recipient, secret.expose_secret().as_bytes()).map_err(|e| {
            SecretsError::Seal {
                name: name.to_owned(),
                reason: e.to_string(),
            }
        })
    }

    pub fn unseal(&self, name: &str, sealed: &[u8]) -> Result<SecretString, SecretsError> {
        let unseal_error = || SecretsError::Unseal {
            name: name.to_owned(),
        };
        let plain = age::decrypt(&self.identity, sealed).map_err(|_| unseal_error())?;
        let text = String::from_utf8(plain).map_err(|_| unseal_error())?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_identity_is_private_and_reloads_to_open_what_it_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::load_or_create(dir.path(), None).unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let canary = SecretString::from("canary-5d1f0c".to_owned());
        let sealed = sealer.seal("repository/x/passphrase", &canary).unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        let again = Sealer::load_or_create(dir.path(), None).unwrap();
        let opened = again.unseal("repository/x/passphrase", &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "canary-5d1f0c");
        assert!(!format!("{again:?}").contains("AGE-SECRET-KEY"));
    }

    #[test]
    fn a_credential_wins_over_the_state_dir_and_others_cannot_open_its_secrets() {
        let state = tempfile::tempdir().unwrap();
        let creds = tempfile::tempdir().unwrap();
        let own = Sealer::load_or_create(state.path(), None).unwrap();
        let sealed = own.seal("s", &SecretString::from("x".to_owned())).unwrap();
        let key = age::x25519::Identity::generate();
        let cred = creds.path().join(IDENTITY_CREDENTIAL);
        std::fs::write(&cred, format!("{}\n", key.to_string().expose_secret())).unwrap();
        std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o400)).unwrap();
        let from_cred = Sealer::load_or_create(state.path(), Some(creds.path())).unwrap();
        assert_eq!(from_cred.source(), cred);
        let error = from_cred.unseal("s", &sealed).unwrap_err().to_string();
        assert!(error.contains("set the secret again"), "{error}");
    }

    #[test]
    fn provisioning_the_credential_keeps_the_daemons_identity_and_is_idempotent() {
        let state = tempfile::tempdir().unwrap();
        let credstore = tempfile::tempdir().unwrap();
        let out = credstore.path().join("store/cairnd.identity");
        let own = Sealer::load_or_create(state.path(), None).unwrap();
        let sealed = own
            .seal("s", &SecretString::from("kept".to_owned()))
            .unwrap();

        let said = Sealer::provision(&out, state.path()).unwrap();
        assert!(said.contains("copied"), "{said}");
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let before = std::fs::read(&out).unwrap();
        let said = Sealer::provision(&out, state.path()).unwrap();
        assert!(said.contains("left alone"), "{said}");
        assert_eq!(std::fs::read(&out).unwrap(), before);

        // Handed over as a credential, it opens what the daemon sealed before.
        let creds = tempfile::tempdir().unwrap();
        std::fs::copy(&out, creds.path().join(IDENTITY_CREDENTIAL)).unwrap();
        let from_cred = Sealer::load_or_create(state.path(), Some(creds.path())).unwrap();
        assert_eq!(
            from_cred.unseal("s", &sealed).unwrap().expose_secret(),
            "kept"
        );

        // A fresh host gets a new identity.
        let fresh = tempfile::tempdir().unwrap();
        let out = fresh.path().join("cairnd.identity");
        let said = Sealer::provision(&out, &fresh.path().join("no-state")).unwrap();
        assert!(said.contains("created a new identity"), "{said}");
        assert!(!said.contains("AGE-SECRET-KEY"), "{said}");
        Sealer::load(&out).unwrap();
    }

    #[test]
    fn a_readable_identity_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Sealer::load_or_create(dir.path(), None).unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Sealer::load_or_create(dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
