//! JOSE: signing keys, their encryption at rest, JWS signing and
//! verification, the JWKS document and the key rotation schedule.

pub mod import;
pub mod jwks;
pub mod keys;
pub mod rotation;
pub mod signer;

use serde::{Deserialize, Serialize};

pub use keys::{KeyState, MasterKey, SigningKeyRecord};
pub use signer::KeySet;

/// The JWS algorithms Tessera signs with (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(SigningAlg::RS256),
            "ES256" => Some(SigningAlg::ES256),
            _ => None,
        }
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("unsupported algorithm {s:?} (use RS256 or ES256)"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    #[error("key-encryption key: {0}")]
    MasterKey(String),
    #[error("no current {0} signing key")]
    NoSigningKey(SigningAlg),
    #[error("stored key {kid} is unreadable: {reason}")]
    Corrupt { kid: String, reason: String },
    /// AES-GCM refused to open a sealed key: another key-encryption key
    /// sealed it (or the row was tampered with).
    #[error(
        "the key-encryption key cannot open stored key {kid}: it is not the one the keys were \
         sealed with (check TESSERA_MASTER_KEY or keys/master.key)"
    )]
    WrongMasterKey { kid: String },
    #[error("a key with kid {0} is already stored")]
    KidExists(String),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}
