//! API keys: long-lived credentials for server-to-server callers, checked
//! by resource servers (`POST /apikeys/verify`). Only the key's hash is a
//! record; the key itself exists once, in the answer to its creation.

use crate::clock::UnixTime;
use crate::domain::ScopeSet;

/// Whom a key acts for: a registered client, a person, or nobody in
/// particular (the key speaks only for itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyOwner {
    Client(String),
    /// A person, by `sub`.
    User(String),
    Unowned,
}

impl ApiKeyOwner {
    /// The stored `owner_kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Client(_) => "client",
            Self::User(_) => "user",
            Self::Unowned => "none",
        }
    }

    /// The client id or the person's `sub` (empty for `Unowned`).
    pub fn id(&self) -> &str {
        match self {
            Self::Client(id) | Self::User(id) => id,
            Self::Unowned => "",
        }
    }

    pub fn from_parts(kind: &str, id: String) -> Option<Self> {
        match kind {
            "client" => Some(Self::Client(id)),
            "user" => Some(Self::User(id)),
            "none" if id.is_empty() => Some(Self::Unowned),
            _ => None,
        }
    }
}

/// At most `count` uses per `window_secs` (a fixed window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: i64,
    pub window_secs: i64,
}

/// A stored API key. `key_hash` is the SHA-256 (hex) of the whole key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub key_hash: String,
    pub prefix: String,
    /// The first characters after the prefix, for display.
    pub start: String,
    pub name: String,
    pub scopes: ScopeSet,
    pub owner: ApiKeyOwner,
    /// A JSON object the operator attached; handed to resource servers.
    pub meta: serde_json::Map<String, serde_json::Value>,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    pub rate_limit: Option<RateLimit>,
    pub use_count: i64,
    pub last_used_at: Option<UnixTime>,
    /// The key this one replaced, when made by a rotation.
    pub rotated_from: Option<String>,
}

impl ApiKey {
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The rate-limit window after one more use was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUse {
    /// Uses counted in the current window, this one included.
    pub window_count: i64,
    pub window_start: UnixTime,
}
