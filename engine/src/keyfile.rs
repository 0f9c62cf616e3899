//! Key files (`keys/<id>`): the repository's master secrets, encrypted with age to
//! whatever the user chose (a passphrase, an age recipient, an SSH public key).
//! Several key files can coexist; adding or removing one re-encrypts nothing else.
//!
//! A key file is a small JSON envelope. Its descriptive fields (kind, label, host,
//! recipient) are in clear so `key list` can show every key while holding only one;
//! they are not trusted for anything but display. The secrets are in `payload`.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::crypto::{MasterSecrets, SecretsFile};
use crate::error::{Error, IoContext, Result};
use crate::id::{KeyId, storage_hash};
use crate::passphrase::KdfParams;

/// How a key file is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Passphrase,
    Age,
    Ssh,
}

/// The stored envelope of a key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub format: String,
    pub version: u32,
    pub kind: KeyKind,
    pub label: String,
    /// The public recipient the secrets are encrypted to (age and ssh kinds).
    pub recipient: Option<String>,
    pub created: String,
    pub host: String,
    pub username: String,
    /// A write-only key (descriptive, for `key list`; what the key can do is what its
    /// payload holds).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub write_only: bool,
    /// For passphrase keys: how the key is derived from the passphrase.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kdf: Option<KdfParams>,
    /// Hex of the encrypted secrets (age for recipients; nonce and XChaCha20-Poly1305
    /// for passphrases). Never printed.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    payload: String,
}

const KEY_FORMAT: &str = "cairn-key";

/// What a new key file is encrypted to.
pub enum NewKey {
    /// A passphrase. `work_factor` is log2 of scrypt's N (r=8, p=4); `None` means 15,
    /// the cost of restic's default key.
    Passphrase {
        passphrase: SecretString,
        work_factor: Option<u8>,
    },
    /// An age X25519 recipient (`age1...`) or an SSH public key line.
    Recipient(String),
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewKey::Passphrase { work_factor, .. } => {
                write!(
                    f,
                    "NewKey::Passphrase(<redacted>, work_factor: {work_factor:?})"
                )
            }
            NewKey::Recipient(r) => write!(f, "NewKey::Recipient({r})"),
        }
    }
}

/// What the caller offers to open a key file with.
pub enum Unlock {
    Passphrase(SecretString),
    /// An age identity file or an unencrypted SSH private key.
    IdentityFile(PathBuf),
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unlock::Passphrase(_) => f.write_str("Unlock::Passphrase(<redacted>)"),
            Unlock::IdentityFile(path) => write!(f, "Unlock::IdentityFile({})", path.display()),
        }
    }
}

impl KeyFile {
    /// Encrypts the secrets for a new key file. Returns its id and stored bytes.
    pub(crate) fn create(
        secrets: &MasterSecrets,
        repository_id: &str,
        new_key: &NewKey,
        label: &str,
    ) -> Result<(KeyId, Vec<u8>)> {
        let plaintext = serde_json::to_vec(&secrets.to_file(repository_id))
            .map_err(|e| Error::invalid("key file", e.to_string()))?;
        let (kind, recipient, kdf, ciphertext) = match new_key {
            NewKey::Passphrase {
                passphrase,
                work_factor,
            } => {
                let params =
                    KdfParams::new(work_factor.unwrap_or(crate::passphrase::DEFAULT_LOG_N))?;
                let sealed = crate::passphrase::seal(passphrase, &params, &plaintext)?;
                (KeyKind::Passphrase, None, Some(params), sealed)
            }
            NewKey::Recipient(text) => {
                let (kind, recipient, boxed) = parse_recipient(text)?;
                (
                    kind,
                    recipient,
                    None,
                    age_encrypt(boxed.as_ref(), &plaintext)?,
                )
            }
        };
        let envelope = KeyFile {
            format: KEY_FORMAT.into(),
            version: 1,
            kind,
            label: label.to_owned(),
            recipient,
            created: jiff::Timestamp::now().to_string(),
            host: crate::host::hostname(),
            username: crate::host::username(),
            write_only: !secrets.can_read(),
            kdf,
            payload: hex::encode(ciphertext),
        };
        let mut stored = serde_json::to_vec_pretty(&envelope)
            .map_err(|e| Error::invalid("key file", e.to_string()))?;
        stored.push(b'\n');
        Ok((KeyId(storage_hash(&stored)), stored))
    }

    pub(crate) fn parse(stored: &[u8], object: &str) -> Result<Self> {
        let file: KeyFile = serde_json::from_slice(stored)
            .map_err(|e| Error::corrupt(object, format!("not a key file: {e}")))?;
        if file.format != KEY_FORMAT || file.version != 1 {
            return Err(Error::corrupt(object, "unknown key file format or version"));
        }
        Ok(file)
    }

    /// What trying this key costs, in scrypt block operations (0 for age and SSH keys),
    /// so that cheap keys are tried before costly ones.
    pub(crate) fn cost(&self) -> u64 {
        self.kdf.as_ref().map_or(0, KdfParams::cost)
    }

    /// Whether `unlock` can possibly open this key (so a passphrase is not run through
    /// scrypt against SSH keys).
    pub(crate) fn accepts(&self, unlock: &Unlock) -> bool {
        matches!(
            (self.kind, unlock),
            (KeyKind::Passphrase, Unlock::Passphrase(_))
                | (KeyKind::Age | KeyKind::Ssh, Unlock::IdentityFile(_))
        )
    }

    /// Decrypts the secrets. `Ok(None)` means this key file is not opened by `unlock`.
    pub(crate) fn open(
        &self,
        unlock: &Unlock,
        identities: &[Box<dyn age::Identity>],
        object: &str,
    ) -> Result<Option<(String, MasterSecrets)>> {
        let ciphertext =
            hex::decode(&self.payload).map_err(|_| Error::corrupt(object, "payload is not hex"))?;
        let plaintext = match (self.kind, unlock) {
            (KeyKind::Passphrase, Unlock::Passphrase(passphrase)) => {
                let params = self
                    .kdf
                    .as_ref()
                    .ok_or_else(|| Error::corrupt(object, "passphrase key without kdf"))?;
                match crate::passphrase::open(passphrase, params, &ciphertext, object)? {
                    Some(plaintext) => plaintext,
                    None => return Ok(None),
                }
            }
            (KeyKind::Age | KeyKind::Ssh, Unlock::IdentityFile(_)) => {
                match age_decrypt(&ciphertext, identities, object)? {
                    Some(plaintext) => plaintext,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let file: SecretsFile = serde_json::from_slice(&plaintext)
            .map_err(|e| Error::corrupt(object, format!("bad secrets: {e}")))?;
        let secrets = MasterSecrets::from_file(&file, object)?;
        Ok(Some((file.repository.clone(), secrets)))
    }
}

fn age_encrypt(recipient: &dyn age::Recipient, plaintext: &[u8]) -> Result<Vec<u8>> {
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient)).map_err(|e| {
        Error::Encryption {
            what: "encrypting a key file".into(),
            source: e.into(),
        }
    })?;
    let mut ciphertext = Vec::new();
    let mut writer = encryptor.wrap_output(&mut ciphertext).at("new key file")?;
    std::io::Write::write_all(&mut writer, plaintext).at("new key file")?;
    writer.finish().at("new key file")?;
    Ok(ciphertext)
}

fn age_decrypt(
    ciphertext: &[u8],
    identities: &[Box<dyn age::Identity>],
    object: &str,
) -> Result<Option<Vec<u8>>> {
    crate::crypto::check_age_header(ciphertext, object)?;
    let decryptor = age::Decryptor::new(ciphertext)
        .map_err(|e| Error::corrupt(object, format!("bad age header: {e}")))?;
    let mut reader = match decryptor.decrypt(identities.iter().map(|i| i.as_ref())) {
        Ok(reader) => reader,
        Err(age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed) => {
            return Ok(None);
        }
        Err(e) => return Err(Error::corrupt(object, format!("cannot decrypt: {e}"))),
    };
    let mut plaintext = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut plaintext)
        .map_err(|e| Error::corrupt(object, format!("cannot decrypt: {e}")))?;
    Ok(Some(plaintext))
}

fn parse_recipient(text: &str) -> Result<(KeyKind, Option<String>, Box<dyn age::Recipient>)> {
    let text = text.trim();
    if text.starts_with("age1") {
        let recipient = age::x25519::Recipient::from_str(text)
            .map_err(|e| Error::invalid(format!("age recipient {text:?}"), e.to_string()))?;
        return Ok((KeyKind::Age, Some(text.to_owned()), Box::new(recipient)));
    }
    if text.starts_with("ssh-") {
        let recipient = age::ssh::Recipient::from_str(text).map_err(|e| {
            Error::invalid(
                "SSH public key",
                format!("{e:?}; use an ssh-ed25519 or ssh-rsa key"),
            )
        })?;
        return Ok((KeyKind::Ssh, Some(text.to_owned()), Box::new(recipient)));
    }
    Err(Error::invalid(
        format!("recipient {text:?}"),
        "expected an age recipient (age1...) or an SSH public key (ssh-ed25519 ..., ssh-rsa ...)",
    ))
}

/// Loads the identities an [`Unlock`] stands for.
pub(crate) fn identities(unlock: &Unlock) -> Result<Vec<Box<dyn age::Identity>>> {
    match unlock {
        // Passphrase keys are opened by `passphrase::open`, not by age.
        Unlock::Passphrase(_) => Ok(Vec::new()),
        Unlock::IdentityFile(path) => load_identity_file(path),
    }
}

fn load_identity_file(path: &Path) -> Result<Vec<Box<dyn age::Identity>>> {
    let text = std::fs::read_to_string(path).at_path(path)?;
    if text.contains("AGE-SECRET-KEY-") {
        let file = age::IdentityFile::from_buffer(BufReader::new(text.as_bytes())).at_path(path)?;
        let identities = file.into_identities().map_err(|e| {
            Error::invalid(format!("identity file {}", path.display()), e.to_string())
        })?;
        return Ok(identities
            .into_iter()
            .map(|i| i as Box<dyn age::Identity>)
            .collect());
    }
    let identity =
        age::ssh::Identity::from_buffer(BufReader::new(text.as_bytes()), None).map_err(|_| {
            Error::invalid(
                format!("identity file {}", path.display()),
                "neither an age identity nor an SSH private key",
            )
        })?;
    match identity {
        age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(identity)]),
        age::ssh::Identity::Encrypted(_) => Err(Error::invalid(
            format!("identity file {}", path.display()),
            "passphrase-protected SSH keys are not supported yet; use an unencrypted copy or an age identity",
        )),
        age::ssh::Identity::Unsupported(_) => Err(Error::invalid(
            format!("identity file {}", path.display()),
            "unsupported SSH key type; use ssh-ed25519 or ssh-rsa",
        )),
    }
}
