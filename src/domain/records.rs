//! Rows of the browser flow: users, grants, codes, refresh tokens,
//! interactions.

use super::scope::ScopeSet;
use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable, opaque subject identifier (OIDC Core §2 `sub`).
    pub sub: String,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// One authorization a user gave a client: the family every code, refresh
/// and access token issued from it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub client_id: String,
    pub sub: String,
    pub scope: ScopeSet,
    pub auth_time: UnixTime,
    /// The login session (OIDC `sid`) it was granted in.
    pub sid: Option<String>,
    pub created_at: UnixTime,
    /// Absolute end of the refresh family.
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    /// The resources (RFC 8707 identifiers) authorized with it; empty when
    /// the authorization request named none.
    pub resources: Vec<String>,
}

impl Grant {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    /// The redirect URI the authorization request carried, or "" when it
    /// was omitted (RFC 6749 §4.1.3 then does not require it back).
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

pub enum CodeRedemption {
    /// First use: the code is now consumed.
    Redeemed(AuthorizationCode),
    /// Already used before: a replay.
    Replayed {
        grant_id: String,
    },
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: UnixTime,
    /// Idle expiry; never later than the grant's absolute expiry.
    pub expires_at: UnixTime,
    pub rotated_at: Option<UnixTime>,
}

pub enum RefreshRotation {
    /// The old token is now used up and `new` is stored.
    Rotated,
    /// The old token had already been rotated outside the grace window:
    /// the whole grant is revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}

/// A failed sign-in counter for one account or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub failures: i64,
    pub window_start: UnixTime,
    pub locked_until: Option<UnixTime>,
}

/// A validated authorization request waiting for the person (sign-in, consent, …):
/// stored so every instance can continue it; forms carry only its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// 256-bit random handle, carried in the login/consent form URLs.
    pub id: String,
    pub client_id: String,
    /// The validated request, serialised by the protocol layer (opaque to storage).
    pub request: String,
    /// SHA-256 of the browser-binding cookie value: only that browser may continue it.
    pub browser_hash: String,
    /// SHA-256 of the CSRF token its forms carry.
    pub csrf_hash: String,
    /// Set when someone signed in during this interaction.
    pub sub: Option<String>,
    pub auth_time: Option<UnixTime>,
    /// Authentication methods (RFC 8176 values, e.g. "pwd"), space-separated when stored.
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A pushed authorization request (RFC 9126): validated parameters waiting
/// for the browser at `/authorize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    /// SHA-256 of the `request_uri`; the URI itself is never stored.
    pub request_uri_hash: String,
    pub client_id: String,
    /// The authorization parameters, serialised by the protocol layer
    /// (opaque to storage).
    pub params: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}
/// A device authorization (RFC 8628 §3.2): the device polls the token
/// endpoint with its device code while the person approves or denies on
/// the `/device` page with the user code. Both codes are stored here only
/// as SHA-256; while the person confirms, their interaction holds the
/// normalised user code (the consent page shows it for comparison,
/// RFC 8628 §5.4) until it ends or expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub device_code_hash: String,
    /// SHA-256 of the normalised user code (upper-case, no dash).
    pub user_code_hash: String,
    pub client_id: String,
    pub scope: ScopeSet,
    /// The least number of seconds between polls; grows on `slow_down`
    /// (RFC 8628 §3.5).
    pub interval_secs: i64,
    pub last_polled_at: Option<UnixTime>,
    pub decision: DeviceDecision,
    /// When the device got its tokens: the code is used up.
    pub consumed_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// What the person answered on the `/device` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceDecision {
    Pending,
    /// Approved by `sub`, signed in at `auth_time` in login session `sid`.
    Approved {
        sub: String,
        auth_time: UnixTime,
        sid: Option<String>,
    },
    Denied {
        at: UnixTime,
    },
}

/// A Logout Token owed to a client (OIDC Back-Channel Logout 1.0 §2.5),
/// as a worker claimed it: who signed out of which session. The token is
/// signed at each attempt, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelDelivery {
    pub id: String,
    pub client_id: String,
    pub sub: String,
    pub sid: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// How an attempt to deliver a Logout Token ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; tried again at `at`.
    Retry {
        at: UnixTime,
        error: String,
    },
    /// Failed, and no attempt is left.
    Failed {
        error: String,
    },
}
