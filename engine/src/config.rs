//! The repository's `config` object: the parameters every writer must agree on.
//! Stored as JSON in clear (a reader needs it before any key is opened) and
//! authenticated by a MAC checked right after a key is opened, so storage cannot
//! quietly change the chunker or the compression of later backups.

use serde::{Deserialize, Serialize};

use crate::crypto::{Keys, MacDomain};
use crate::error::{Error, Result};

/// The repository format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Content-defined chunking parameters (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 512 * 1024,
            avg_size: 1024 * 1024,
            max_size: 8 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Checks the parameters against what fastcdc v2020 accepts.
    pub fn validate(&self) -> Result<()> {
        let ChunkerParams {
            min_size,
            avg_size,
            max_size,
        } = *self;
        let ok = (64..=1_048_576).contains(&min_size)
            && (256..=4_194_304).contains(&avg_size)
            && (1024..=16_777_216).contains(&max_size)
            && min_size <= avg_size
            && avg_size <= max_size
            && [min_size, avg_size, max_size].iter().all(|v| v % 2 == 0);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "chunker parameters",
                format!(
                    "min {min_size} / avg {avg_size} / max {max_size} must be even, ordered, \
                     with min in 64..=1MiB, avg in 256..=4MiB, max in 1KiB..=16MiB"
                ),
            ))
        }
    }
}

/// Settings chosen at `init`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigBody {
    pub format: String,
    pub version: u32,
    /// Random id of this repository (hex), also bound into every key file.
    pub id: String,
    pub created: String,
    pub chunker: ChunkerParams,
    /// zstd level for blobs (0 = store uncompressed).
    pub compression_level: i32,
    /// Target size of a pack file in bytes.
    pub pack_size: u32,
    /// The repository recipient, for information (the key file is what is trusted).
    pub recipient: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredConfig {
    #[serde(flatten)]
    body: ConfigBody,
    mac: String,
}

pub const CONFIG_FORMAT: &str = "cairn-repository";

impl ConfigBody {
    pub(crate) fn encode(&self, keys: &Keys) -> Result<Vec<u8>> {
        let payload = self.mac_payload()?;
        let stored = StoredConfig {
            body: self.clone(),
            mac: hex::encode(keys.mac(MacDomain::Config, &payload)),
        };
        let mut bytes = serde_json::to_vec_pretty(&stored)
            .map_err(|e| Error::invalid("config", e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    fn mac_payload(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::invalid("config", e.to_string()))
    }

    /// Parses the config without checking its MAC (done by [`Self::verify`] once a key is open).
    pub(crate) fn decode(bytes: &[u8]) -> Result<(ConfigBody, String)> {
        let stored: StoredConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("config", format!("not a cairn config: {e}")))?;
        if stored.body.format != CONFIG_FORMAT {
            return Err(Error::corrupt("config", "not a cairn config"));
        }
        if stored.body.version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: stored.body.version,
                supported: FORMAT_VERSION,
            });
        }
        Ok((stored.body, stored.mac))
    }

    pub(crate) fn verify(&self, mac_hex: &str, keys: &Keys) -> Result<()> {
        let mac = hex::decode(mac_hex).map_err(|_| Error::Tampered {
            object: "config".into(),
        })?;
        if keys.verify_mac(MacDomain::Config, &self.mac_payload()?, &mac) {
            Ok(())
        } else {
            Err(Error::Tampered {
                object: "config".into(),
            })
        }
    }
}
