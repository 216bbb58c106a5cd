//! The narrow piece every token-issuing or token-checking function takes:
//! the key set, the clock, the issuer, the token settings and the server
//! secret refresh-token successors are derived with. Built by the server
//! from its state (`AppState::tokens`), or by a unit test from a
//! `FixedClock` and a generated `KeySet`, so no server is needed.

use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::{Clock, UnixTime};
use crate::config::TokenConfig;
use crate::jose::{KeyError, KeySet, MasterKey};

#[derive(Clone)]
pub struct Tokens<'a> {
    pub keys: Arc<KeySet>,
    pub clock: &'a dyn Clock,
    pub issuer: &'a str,
    pub settings: &'a TokenConfig,
    pub refresh_successors: &'a RefreshSuccessors,
}

impl Tokens<'_> {
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// `aud` of access tokens (RFC 9068 §3): the configured audience, or the issuer.
    pub fn audience(&self) -> &str {
        self.settings.audience.as_deref().unwrap_or(self.issuer)
    }
}

/// Derives the refresh token that replaces a presented one (issue 7.9).
///
/// Rotation (RFC 9700 §4.14.2) within `tokens.refresh_grace_secs` must give
/// every racing refresh of one token the same successor, or each would
/// start a live branch of the family. So the successor is not drawn at
/// random but computed, as HMAC-SHA256 of the presented token under a key
/// derived from the key-encryption key: every instance computes the same
/// one, and nobody without the server's secret can, so a stolen, already
/// rotated token does not reveal the live one. Its output is 256 bits, as
/// unpredictable as a random token, and stored only as its SHA-256.
pub struct RefreshSuccessors(hmac::Key);

impl RefreshSuccessors {
    /// The `MasterKey::derive_key` label; changing it changes every
    /// successor, so a grace-window refresh across the change would fail.
    const LABEL: &'static str = "tessera/refresh-token-successor/v1";

    pub fn from_master_key(master: &MasterKey) -> Result<Self, KeyError> {
        Ok(Self(master.derive_key(Self::LABEL)?))
    }

    /// The successor of `presented`: 43 base64url characters, like a
    /// random token.
    pub fn successor_of(&self, presented: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, presented.as_bytes()))
    }
}

/// Shows no key material.
impl std::fmt::Debug for RefreshSuccessors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshSuccessors(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn the_successor_is_the_same_for_every_caller_and_needs_the_secret() {
        let a = RefreshSuccessors::from_master_key(&master(1)).unwrap();
        let again = RefreshSuccessors::from_master_key(&master(1)).unwrap();
        let other_server = RefreshSuccessors::from_master_key(&master(2)).unwrap();
        let successor = a.successor_of("token-1");
        assert_eq!(successor, again.successor_of("token-1"));
        assert_eq!(successor.len(), 43);
        assert_ne!(successor, a.successor_of("token-2"));
        assert_ne!(successor, other_server.successor_of("token-1"));
        // Not a plain hash of the token, which anyone could compute.
        assert_ne!(
            successor,
            URL_SAFE_NO_PAD.encode(crate::crypto::sha256(b"token-1"))
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let key = RefreshSuccessors::from_master_key(&master(1)).unwrap();
        assert_eq!(format!("{key:?}"), "RefreshSuccessors(..)");
    }
}
