//! The narrow piece every token-issuing or token-checking function takes:
//! the key set, the clock, the issuer and the token settings. Built by the
//! server from its state (`AppState::tokens`), or by a unit test from a
//! `FixedClock` and a generated `KeySet`, so no server is needed.

use std::sync::Arc;

use crate::clock::{Clock, UnixTime};
use crate::config::TokenConfig;
use crate::jose::KeySet;

#[derive(Clone)]
pub struct Tokens<'a> {
    pub keys: Arc<KeySet>,
    pub clock: &'a dyn Clock,
    pub issuer: &'a str,
    pub settings: &'a TokenConfig,
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
