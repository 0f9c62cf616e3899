//! Passphrase protection of key files: scrypt, then XChaCha20-Poly1305.
//!
//! age's own passphrase recipient fixes scrypt's parallelism at 1, so matching the cost
//! of restic's key (N=2^15, r=8, p=4, about half a second here) would take N=2^17 and
//! 128 MiB of memory in every command that opens a repository. With p=4 the same work
//! needs 32 MiB, which keeps a whole backup under its memory budget.

use age::secrecy::{ExposeSecret, SecretString};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;
use crate::error::{Error, Result};

/// log2(N) by default: with r=8, p=4 this is restic's default cost.
pub const DEFAULT_LOG_N: u8 = 15;
/// The cheapest and the costliest work factor a key may have.
pub const MIN_LOG_N: u8 = 10;
pub const MAX_LOG_N: u8 = 18;
const R: u32 = 8;
const P: u32 = 4;
const NONCE_LEN: usize = 24;
/// Binds the ciphertext to its purpose.
const AAD: &[u8] = b"cairn key file v1 passphrase";

/// The KDF parameters stored in clear in a passphrase key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub algorithm: String,
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
    /// 16 random bytes, hex.
    pub salt: String,
}

impl KdfParams {
    pub fn new(log_n: u8) -> Result<Self> {
        let params = KdfParams {
            algorithm: "scrypt".into(),
            log_n,
            r: R,
            p: P,
            salt: hex::encode(random_bytes::<16>()),
        };
        params.validate("new key")?;
        Ok(params)
    }

    /// Refuses parameters that are unknown, too weak to be ours, or so costly that a
    /// planted key file could stall every open: at most `MAX_LOG_N`, r=8, p=4, which is
    /// 256 MiB and about 8 times the default key's time.
    fn validate(&self, object: &str) -> Result<()> {
        let ok = self.algorithm == "scrypt"
            && (MIN_LOG_N..=MAX_LOG_N).contains(&self.log_n)
            && (1..=R).contains(&self.r)
            && (1..=P).contains(&self.p)
            && self.salt.len() == 32;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                object,
                format!(
                    "key derivation out of bounds (scrypt log2 N {}, r {}, p {}; Cairn accepts log2 N {MIN_LOG_N}..={MAX_LOG_N}, r at most {R}, p at most {P}); damaged or planted",
                    self.log_n, self.r, self.p
                ),
            ))
        }
    }

    /// scrypt's work in block operations: N × r × p.
    pub fn cost(&self) -> u64 {
        (1u64 << self.log_n.min(63)) * u64::from(self.r) * u64::from(self.p)
    }

    fn derive(&self, passphrase: &SecretString, object: &str) -> Result<[u8; 32]> {
        self.validate(object)?;
        let salt = hex::decode(&self.salt).map_err(|_| Error::corrupt(object, "bad salt"))?;
        let params = scrypt::Params::new(self.log_n, self.r, self.p, 32)
            .map_err(|e| Error::corrupt(object, format!("bad scrypt parameters: {e}")))?;
        let mut key = [0u8; 32];
        scrypt::scrypt(
            passphrase.expose_secret().as_bytes(),
            &salt,
            &params,
            &mut key,
        )
        .map_err(|e| Error::corrupt(object, format!("scrypt failed: {e}")))?;
        Ok(key)
    }
}

/// Encrypts `plaintext` under a key derived from the passphrase: nonce || ciphertext.
pub fn seal(passphrase: &SecretString, params: &KdfParams, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut key = params.derive(passphrase, "new key")?;
    let cipher = XChaCha20Poly1305::new((&key).into());
    key.iter_mut().for_each(|b| *b = 0);
    let nonce = random_bytes::<NONCE_LEN>();
    let mut out = nonce.to_vec();
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: AAD,
            },
        )
        .map_err(|_| Error::invalid("key file", "encryption failed"))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts what [`seal`] made; `Ok(None)` when the passphrase is not this key's.
pub fn open(
    passphrase: &SecretString,
    params: &KdfParams,
    sealed: &[u8],
    object: &str,
) -> Result<Option<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(Error::corrupt(object, "payload too short"));
    }
    let mut key = params.derive(passphrase, object)?;
    let cipher = XChaCha20Poly1305::new((&key).into());
    key.iter_mut().for_each(|b| *b = 0);
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    Ok(cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: AAD,
            },
        )
        .ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_passphrase_opens_and_a_wrong_one_does_not() {
        let params = KdfParams::new(10).unwrap();
        let pass = SecretString::from("correct horse".to_owned());
        let sealed = seal(&pass, &params, b"secrets").unwrap();
        assert_eq!(
            open(&pass, &params, &sealed, "k").unwrap().as_deref(),
            Some(&b"secrets"[..])
        );
        let wrong = SecretString::from("wrong".to_owned());
        assert_eq!(open(&wrong, &params, &sealed, "k").unwrap(), None);
        let mut other_salt = params.clone();
        other_salt.salt = hex::encode([7u8; 16]);
        assert_eq!(open(&pass, &other_salt, &sealed, "k").unwrap(), None);
    }

    #[test]
    fn planted_costly_or_unknown_parameters_are_refused() {
        let pass = SecretString::from("x".to_owned());
        let mut params = KdfParams::new(10).unwrap();
        let sealed = seal(&pass, &params, b"s").unwrap();
        params.log_n = 30;
        assert!(open(&pass, &params, &sealed, "k").is_err());
        params.log_n = 10;
        params.algorithm = "argon9".into();
        assert!(open(&pass, &params, &sealed, "k").is_err());
    }
}
