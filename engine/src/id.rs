//! Typed 32-byte identifiers. Each kind of object has its own type so that a pack id
//! can never be passed where a blob id is expected. Shown as 8 hex characters in
//! listings, 64 in full.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Length of every id in bytes.
pub const ID_LEN: usize = 32;

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
                Self(bytes)
            }
            pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }
            /// The full id as 64 lowercase hex characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The short form used in listings and messages.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            /// Parses a full 64-character hex id.
            pub fn parse(text: &str) -> Result<Self> {
                let mut bytes = [0u8; ID_LEN];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| {
                    Error::invalid(
                        format!("{} id {text:?}", $what),
                        "expected 64 hexadecimal characters",
                    )
                })?;
                Ok(Self(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        /// Hex in human-readable formats (JSON), 32 raw bytes in binary ones (trees).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_hex())
                } else {
                    serde::Serialize::serialize(&self.0, serializer)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                    Self::parse(&text).map_err(serde::de::Error::custom)
                } else {
                    <[u8; ID_LEN] as serde::Deserialize>::deserialize(deserializer).map(Self)
                }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self> {
                Self::parse(text)
            }
        }
    };
}

define_id!(
    /// A blob (data chunk or tree) in a pack: keyed BLAKE3 of its plaintext.
    BlobId, "blob"
);
define_id!(
    /// A pack file: BLAKE3 of its stored (encrypted) bytes.
    PackId, "pack"
);
define_id!(
    /// An index file: BLAKE3 of its stored bytes.
    IndexId, "index"
);
define_id!(
    /// A snapshot record: BLAKE3 of its stored bytes.
    SnapshotId, "snapshot"
);
define_id!(
    /// A key file: BLAKE3 of its stored bytes.
    KeyId, "key"
);
define_id!(
    /// A forget record (which snapshots a forget removed): BLAKE3 of its stored bytes.
    ForgetId, "forget record"
);
define_id!(
    /// A lock record: random, so its holder can rewrite it in place to refresh it.
    LockId, "lock"
);
define_id!(
    /// A condemn record (packs a prune will delete): BLAKE3 of its stored bytes.
    CondemnId, "condemn record"
);

/// The unkeyed content hash that names stored objects.
pub fn storage_hash(bytes: &[u8]) -> [u8; ID_LEN] {
    *blake3::hash(bytes).as_bytes()
}

/// Whether `prefix` (hex, any length) is a prefix of `id`'s hex form.
pub fn hex_prefix_matches(id: &[u8; ID_LEN], prefix: &str) -> bool {
    let full = hex::encode(id);
    full.starts_with(&prefix.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hex_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            let id = BlobId(bytes);
            prop_assert_eq!(BlobId::parse(&id.to_hex()).unwrap(), id);
            prop_assert!(hex_prefix_matches(&bytes, &id.short()));
            prop_assert_eq!(id.short().len(), 8);
        }

        #[test]
        fn json_uses_hex_and_binary_uses_bytes(bytes in proptest::array::uniform32(any::<u8>())) {
            let id = SnapshotId(bytes);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(&json, &format!("\"{}\"", id.to_hex()));
            prop_assert_eq!(serde_json::from_str::<SnapshotId>(&json).unwrap(), id);
            let binary = postcard::to_stdvec(&id).unwrap();
            prop_assert_eq!(binary.len(), 32);
            prop_assert_eq!(postcard::from_bytes::<SnapshotId>(&binary).unwrap(), id);
        }

        #[test]
        fn parse_rejects_anything_but_64_hex(text in "\\PC{0,80}") {
            let valid = text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit());
            prop_assert_eq!(PackId::parse(&text).is_ok(), valid);
        }
    }
}
