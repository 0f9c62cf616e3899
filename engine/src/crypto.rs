//! Repository secrets, the keys derived from them, and the two primitives every stored
//! object goes through: age encryption to the repository recipient, and a keyed MAC
//! for the objects whose authenticity matters beyond what keyed ids give (snapshots,
//! index files, the config).
//!
//! age is confidentiality only: anyone holding the repository recipient can produce a
//! well-formed age file. Authenticity therefore never comes from a successful
//! decryption; it comes from keyed BLAKE3 (ids of blobs, MAC of sealed objects) with
//! keys only the holders of a repository key have.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Read buffer under an age stream: one age STREAM segment (64 KiB) plus its tag.
const STREAM_BUFFER: usize = 64 * 1024 + 16;

/// Length of every symmetric key.
pub const KEY_LEN: usize = 32;

/// Recipient stanzas an age header may have. Cairn writes one; age tries every stanza
/// against the identity, so thousands of planted ones would stall each read.
const MAX_STANZAS: usize = 4;
/// The longest age header accepted (one SSH RSA stanza is under 1 KiB).
const MAX_HEADER: usize = 8 * 1024;

/// Refuses an age header with more stanzas or bytes than Cairn ever writes, before age
/// parses it. `start` is the beginning of the object (all of it, or at least
/// `MAX_HEADER` bytes of it when it is longer). Anything else malformed is left to
/// age, which reports it quickly.
pub(crate) fn check_age_header(start: &[u8], object: &str) -> Result<()> {
    let window = &start[..start.len().min(MAX_HEADER)];
    let end = window.windows(4).position(|w| w == b"\n---");
    let header = &window[..end.unwrap_or(window.len())];
    let stanzas = header.windows(4).filter(|w| w == b"\n-> ").count();
    if stanzas > MAX_STANZAS {
        return Err(Error::corrupt(
            object,
            format!(
                "its age header has {stanzas} or more recipient stanzas (Cairn writes one); damaged or planted"
            ),
        ));
    }
    if end.is_none() && start.len() >= MAX_HEADER {
        return Err(Error::corrupt(
            object,
            format!(
                "its age header is longer than {MAX_HEADER} bytes (Cairn writes a few hundred); damaged or planted"
            ),
        ));
    }
    Ok(())
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The kernel CSPRNG failing is not something a backup can recover from or route
    // around; refusing to go on without randomness is the only safe behaviour.
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
}

/// The secrets of one repository, made once at `init` and stored (encrypted) in every
/// key file. Whoever holds them can read and write the whole repository.
pub struct MasterSecrets {
    /// The repository identity: packs, index files and snapshots are encrypted to its
    /// public recipient. Absent in a write-only key: it can encrypt, never decrypt.
    pub(crate) identity: Option<age::x25519::Identity>,
    /// The repository recipient (the identity's public half).
    pub(crate) recipient: age::x25519::Recipient,
    /// Root of the keyed blob ids.
    pub(crate) id_key: [u8; KEY_LEN],
    /// Root of the MAC keys.
    pub(crate) mac_key: [u8; KEY_LEN],
    /// XORed into fastcdc's gear table, so chunk boundaries depend on a secret.
    pub(crate) chunker_seed: u64,
}

impl fmt::Debug for MasterSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterSecrets(<redacted>)")
    }
}

/// The serialised form of [`MasterSecrets`], the plaintext inside a key file.
#[derive(Serialize, Deserialize)]
pub(crate) struct SecretsFile {
    pub version: u32,
    pub repository: String,
    /// Absent in a write-only key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The repository recipient; written since write-only keys exist (a key file
    /// without it has an identity to derive it from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    pub id_key: String,
    pub mac_key: String,
    pub chunker_seed: u64,
}

impl MasterSecrets {
    pub fn generate() -> Self {
        let identity = age::x25519::Identity::generate();
        MasterSecrets {
            recipient: identity.to_public(),
            identity: Some(identity),
            id_key: random_bytes(),
            mac_key: random_bytes(),
            chunker_seed: u64::from_le_bytes(random_bytes()),
        }
    }

    pub fn recipient(&self) -> age::x25519::Recipient {
        self.recipient.clone()
    }

    /// Whether these secrets can decrypt (false for a write-only key).
    pub fn can_read(&self) -> bool {
        self.identity.is_some()
    }

    /// A copy of all the secrets (for another key file of the same repository).
    pub(crate) fn clone_secrets(&self) -> MasterSecrets {
        MasterSecrets {
            identity: self.identity.clone(),
            recipient: self.recipient.clone(),
            id_key: self.id_key,
            mac_key: self.mac_key,
            chunker_seed: self.chunker_seed,
        }
    }

    /// The same secrets without the identity: what a write-only key holds.
    pub fn write_only(&self) -> MasterSecrets {
        let mut secrets = self.clone_secrets();
        secrets.identity = None;
        secrets
    }

    pub(crate) fn to_file(&self, repository_id: &str) -> SecretsFile {
        SecretsFile {
            version: 1,
            repository: repository_id.to_owned(),
            identity: self
                .identity
                .as_ref()
                .map(|i| i.to_string().expose_secret().to_owned()),
            recipient: Some(self.recipient.to_string()),
            id_key: hex::encode(self.id_key),
            mac_key: hex::encode(self.mac_key),
            chunker_seed: self.chunker_seed,
        }
    }

    pub(crate) fn from_file(file: &SecretsFile, object: &str) -> Result<Self> {
        let bad = |reason: &str| Error::corrupt(object, reason.to_owned());
        if file.version != 1 {
            return Err(bad("unknown key file version"));
        }
        let identity = file
            .identity
            .as_deref()
            .map(|text| age::x25519::Identity::from_str(text).map_err(|_| bad("bad identity")))
            .transpose()?;
        let stated = file
            .recipient
            .as_deref()
            .map(|text| age::x25519::Recipient::from_str(text).map_err(|_| bad("bad recipient")))
            .transpose()?;
        let recipient = match (&identity, stated) {
            (Some(identity), Some(stated))
                if identity.to_public().to_string() != stated.to_string() =>
            {
                return Err(bad("its recipient is not its identity's"));
            }
            (Some(identity), _) => identity.to_public(),
            (None, Some(stated)) => stated,
            (None, None) => return Err(bad("neither an identity nor a recipient")),
        };
        let mut id_key = [0u8; KEY_LEN];
        hex::decode_to_slice(&file.id_key, &mut id_key).map_err(|_| bad("bad id key"))?;
        let mut mac_key = [0u8; KEY_LEN];
        hex::decode_to_slice(&file.mac_key, &mut mac_key).map_err(|_| bad("bad mac key"))?;
        Ok(MasterSecrets {
            identity,
            recipient,
            id_key,
            mac_key,
            chunker_seed: file.chunker_seed,
        })
    }
}

impl Drop for MasterSecrets {
    fn drop(&mut self) {
        // Best effort: the age identity zeroises itself; ours are plain arrays.
        self.id_key.iter_mut().for_each(|b| *b = 0);
        self.mac_key.iter_mut().for_each(|b| *b = 0);
    }
}

/// The kinds of object a MAC can seal. Each gets its own derived key, so a MAC made
/// for one kind never verifies as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacDomain {
    Config,
    Index,
    Snapshot,
    Forget,
    Lock,
    Condemn,
}

/// The kinds of blob. Ids are keyed per kind (domain separation): the same bytes stored
/// as data and as a tree get different ids, so a data chunk can never be passed off as
/// metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BlobKind {
    Data,
    Tree,
}

impl BlobKind {
    pub fn to_byte(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
        }
    }
}

/// Keys derived from the master secrets, ready for use on hot paths.
pub struct Keys {
    data_id: [u8; KEY_LEN],
    tree_id: [u8; KEY_LEN],
    mac_config: [u8; KEY_LEN],
    mac_index: [u8; KEY_LEN],
    mac_snapshot: [u8; KEY_LEN],
    mac_forget: [u8; KEY_LEN],
    mac_lock: [u8; KEY_LEN],
    mac_condemn: [u8; KEY_LEN],
    pub(crate) chunker_seed: u64,
    recipient: age::x25519::Recipient,
    identity: Option<age::x25519::Identity>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub fn derive(secrets: &MasterSecrets) -> Self {
        let derive = |context: &str, root: &[u8; KEY_LEN]| blake3::derive_key(context, root);
        Keys {
            data_id: derive("cairn 2026 v1 blob id data", &secrets.id_key),
            tree_id: derive("cairn 2026 v1 blob id tree", &secrets.id_key),
            mac_config: derive("cairn 2026 v1 mac config", &secrets.mac_key),
            mac_index: derive("cairn 2026 v1 mac index", &secrets.mac_key),
            mac_snapshot: derive("cairn 2026 v1 mac snapshot", &secrets.mac_key),
            mac_forget: derive("cairn 2026 v1 mac forget", &secrets.mac_key),
            mac_lock: derive("cairn 2026 v1 mac lock", &secrets.mac_key),
            mac_condemn: derive("cairn 2026 v1 mac condemn", &secrets.mac_key),
            chunker_seed: secrets.chunker_seed,
            recipient: secrets.recipient(),
            identity: secrets.identity.clone(),
        }
    }

    /// The id of a blob of the given kind with the given plaintext.
    pub fn blob_id(&self, kind: BlobKind, plaintext: &[u8]) -> crate::id::BlobId {
        let key = match kind {
            BlobKind::Data => &self.data_id,
            BlobKind::Tree => &self.tree_id,
        };
        crate::id::BlobId(*blake3::keyed_hash(key, plaintext).as_bytes())
    }

    fn mac_key(&self, domain: MacDomain) -> &[u8; KEY_LEN] {
        match domain {
            MacDomain::Config => &self.mac_config,
            MacDomain::Index => &self.mac_index,
            MacDomain::Snapshot => &self.mac_snapshot,
            MacDomain::Forget => &self.mac_forget,
            MacDomain::Lock => &self.mac_lock,
            MacDomain::Condemn => &self.mac_condemn,
        }
    }

    pub fn mac(&self, domain: MacDomain, payload: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(self.mac_key(domain), payload).as_bytes()
    }

    /// Verifies a MAC in constant time.
    pub fn verify_mac(&self, domain: MacDomain, payload: &[u8], mac: &[u8]) -> bool {
        let Ok(mac) = <[u8; 32]>::try_from(mac) else {
            return false;
        };
        blake3::keyed_hash(self.mac_key(domain), payload) == blake3::Hash::from(mac)
    }

    pub fn recipient(&self) -> &age::x25519::Recipient {
        &self.recipient
    }

    pub(crate) fn identity(&self, object: &str) -> Result<&age::x25519::Identity> {
        self.identity.as_ref().ok_or_else(|| Error::WriteOnly {
            what: format!("reading {object}"),
        })
    }

    /// Whether these keys can decrypt (false for a write-only key).
    pub fn can_read(&self) -> bool {
        self.identity.is_some()
    }

    /// Encrypts a whole object to the repository recipient.
    pub fn encrypt(&self, plaintext: &[u8], object: &str) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plaintext.len() + 256);
        let mut writer = self.encrypt_stream(&mut out, object)?;
        writer
            .write_all(plaintext)
            .map_err(|e| Error::io(object, e))?;
        writer.finish().map_err(|e| Error::io(object, e))?;
        Ok(out)
    }

    /// Starts an age stream to the repository recipient on top of `output`.
    pub fn encrypt_stream<W: Write>(
        &self,
        output: W,
        object: &str,
    ) -> Result<age::stream::StreamWriter<W>> {
        let encryptor = age::Encryptor::with_recipients(std::iter::once(
            &self.recipient as &dyn age::Recipient,
        ))
        .map_err(|e| Error::Encryption {
            what: format!("encrypting {object}"),
            source: e.into(),
        })?;
        encryptor
            .wrap_output(output)
            .map_err(|e| Error::io(object, e))
    }

    /// Opens an age stream written to the repository recipient. The input is buffered:
    /// age's unbuffered header parser reads one byte per call, a syscall each on a file.
    pub fn decrypt_stream<R: Read>(
        &self,
        input: R,
        object: &str,
    ) -> Result<age::stream::StreamReader<std::io::BufReader<R>>> {
        let identity = self.identity(object)?;
        let mut buffered = std::io::BufReader::with_capacity(STREAM_BUFFER, input);
        let start = std::io::BufRead::fill_buf(&mut buffered).map_err(|e| Error::io(object, e))?;
        check_age_header(start, object)?;
        let decryptor =
            age::Decryptor::new_buffered(buffered).map_err(|e| decrypt_error(object, e))?;
        decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .map_err(|e| decrypt_error(object, e))
    }

    /// Decrypts a whole object.
    pub fn decrypt(&self, ciphertext: &[u8], object: &str) -> Result<Vec<u8>> {
        let mut reader = self.decrypt_stream(ciphertext, object)?;
        let mut plaintext = Vec::with_capacity(ciphertext.len());
        reader
            .read_to_end(&mut plaintext)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => {
                    Error::corrupt(object, format!("decryption failed: {e}"))
                }
                _ => Error::io(object, e),
            })?;
        Ok(plaintext)
    }

    /// MACs `payload`, appends the MAC and encrypts: the stored form of index files and
    /// snapshots.
    pub fn seal(&self, domain: MacDomain, payload: &[u8], object: &str) -> Result<Vec<u8>> {
        let mut plaintext = Vec::with_capacity(payload.len() + 32);
        plaintext.extend_from_slice(payload);
        plaintext.extend_from_slice(&self.mac(domain, payload));
        self.encrypt(&plaintext, object)
    }

    /// Decrypts and checks the MAC of a sealed object, returning its payload.
    pub fn unseal(&self, domain: MacDomain, stored: &[u8], object: &str) -> Result<Vec<u8>> {
        let mut plaintext = self.decrypt(stored, object)?;
        if plaintext.len() < 32 {
            return Err(Error::Tampered {
                object: object.to_owned(),
            });
        }
        let split = plaintext.len() - 32;
        if !self.verify_mac(domain, &plaintext[..split], &plaintext[split..]) {
            return Err(Error::Tampered {
                object: object.to_owned(),
            });
        }
        plaintext.truncate(split);
        Ok(plaintext)
    }
}

/// Seals a JSON record (snapshots, forget records): its stored bytes and the name they
/// go under (their unkeyed hash).
pub fn seal_json<T: Serialize>(
    keys: &Keys,
    domain: MacDomain,
    value: &T,
    what: &str,
) -> Result<([u8; 32], Vec<u8>)> {
    let payload = serde_json::to_vec(value).map_err(|e| Error::invalid(what, e.to_string()))?;
    let stored = keys.seal(domain, &payload, &format!("new {what}"))?;
    Ok((crate::id::storage_hash(&stored), stored))
}

/// Opens what [`seal_json`] made, stored under `name`: the content must match the name,
/// the MAC must verify, and the JSON must parse.
pub fn open_json<T: serde::de::DeserializeOwned>(
    keys: &Keys,
    domain: MacDomain,
    name: &[u8; 32],
    stored: &[u8],
    object: &str,
) -> Result<T> {
    if crate::id::storage_hash(stored) != *name {
        return Err(Error::corrupt(object, "content does not match its name"));
    }
    let payload = keys.unseal(domain, stored, object)?;
    serde_json::from_slice(&payload).map_err(|e| Error::corrupt(object, e.to_string()))
}

/// MACs a JSON record that is stored in clear (locks, condemn records: read by hosts
/// with write-only keys, and holding nothing secret). The MAC covers `bound` (the
/// object's name when it is not a content hash) and the payload, so a record moved to
/// another name does not verify there.
pub fn sign_json<T: Serialize>(
    keys: &Keys,
    domain: MacDomain,
    bound: &str,
    value: &T,
    what: &str,
) -> Result<Vec<u8>> {
    let mut stored = serde_json::to_vec(value).map_err(|e| Error::invalid(what, e.to_string()))?;
    let mac = keys.mac(domain, &[bound.as_bytes(), &stored].concat());
    stored.extend_from_slice(&mac);
    Ok(stored)
}

/// Opens what [`sign_json`] made: the MAC must verify and the JSON must parse.
pub fn open_signed_json<T: serde::de::DeserializeOwned>(
    keys: &Keys,
    domain: MacDomain,
    bound: &str,
    stored: &[u8],
    object: &str,
) -> Result<T> {
    let split = stored
        .len()
        .checked_sub(32)
        .ok_or_else(|| Error::Tampered {
            object: object.to_owned(),
        })?;
    let (payload, mac) = stored.split_at(split);
    if !keys.verify_mac(domain, &[bound.as_bytes(), payload].concat(), mac) {
        return Err(Error::Tampered {
            object: object.to_owned(),
        });
    }
    serde_json::from_slice(payload).map_err(|e| Error::corrupt(object, e.to_string()))
}

fn decrypt_error(object: &str, error: age::DecryptError) -> Error {
    match error {
        age::DecryptError::NoMatchingKeys => Error::Tampered {
            object: object.to_owned(),
        },
        age::DecryptError::Io(e) => Error::io(object, e),
        other => Error::corrupt(object, format!("decryption failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_separated_by_kind() {
        let keys = Keys::derive(&MasterSecrets::generate());
        let bytes = b"the same bytes";
        assert_ne!(
            keys.blob_id(BlobKind::Data, bytes),
            keys.blob_id(BlobKind::Tree, bytes)
        );
    }

    #[test]
    fn ids_depend_on_the_repository_key() {
        let a = Keys::derive(&MasterSecrets::generate());
        let b = Keys::derive(&MasterSecrets::generate());
        assert_ne!(
            a.blob_id(BlobKind::Data, b"x"),
            b.blob_id(BlobKind::Data, b"x")
        );
    }

    #[test]
    fn sealed_objects_reject_other_domains_and_forgeries() {
        let keys = Keys::derive(&MasterSecrets::generate());
        let sealed = keys
            .seal(MacDomain::Snapshot, b"payload", "snapshot x")
            .unwrap();
        assert_eq!(
            keys.unseal(MacDomain::Snapshot, &sealed, "s").unwrap(),
            b"payload"
        );
        assert!(matches!(
            keys.unseal(MacDomain::Index, &sealed, "s"),
            Err(Error::Tampered { .. })
        ));
        // Anyone with the recipient can encrypt; without the MAC key the result is refused.
        let mut forged = b"payload".to_vec();
        forged.extend_from_slice(&[0u8; 32]);
        let forged = keys.encrypt(&forged, "forged").unwrap();
        assert!(matches!(
            keys.unseal(MacDomain::Snapshot, &forged, "s"),
            Err(Error::Tampered { .. })
        ));
    }

    #[test]
    fn age_headers_with_more_stanzas_or_bytes_than_cairn_writes_are_refused() {
        let keys = Keys::derive(&MasterSecrets::generate());
        let ours = keys.encrypt(b"payload", "object").unwrap();
        check_age_header(&ours, "object").unwrap();
        let mut planted = b"age-encryption.org/v1\n".to_vec();
        for _ in 0..10_000 {
            planted.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
        }
        planted.extend_from_slice(b"--- AAAA\n");
        let error = keys
            .decrypt(&planted, "snapshot 1234")
            .unwrap_err()
            .to_string();
        assert!(error.contains("recipient stanzas"), "{error}");
        let long_line = [
            b"age-encryption.org/v1\n-> X25519 ".as_slice(),
            &[b'A'; 9000],
        ]
        .concat();
        let error = check_age_header(&long_line, "pack 1")
            .unwrap_err()
            .to_string();
        assert!(error.contains("longer than"), "{error}");
        // Short garbage is left to age, which refuses it.
        assert!(keys.decrypt(b"not age", "x").is_err());
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let secrets = MasterSecrets::generate();
        let keys = Keys::derive(&secrets);
        let text = format!("{secrets:?} {keys:?}");
        assert!(!text.contains(&hex::encode(secrets.id_key)));
        assert!(!text.contains("AGE-SECRET-KEY"));
    }
}
