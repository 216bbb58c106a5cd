//! A registered client and its RFC 7591 metadata, as stored.

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::domain::scope::ScopeSet;
use crate::jose::SigningAlg;

/// RFC 7591 §2: the `token_endpoint_auth_method` of a public client.
pub const AUTH_METHOD_NONE: &str = "none";

/// The algorithms a client may sign its `private_key_jwt` assertions with
/// (RFC 7591 §2 `token_endpoint_auth_signing_alg`). Asymmetric only: never
/// `none` (RFC 7591 §2 forbids it here) nor HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAssertionAlg {
    RS256,
    ES256,
    PS256,
}

impl ClientAssertionAlg {
    pub const ALL: [ClientAssertionAlg; 3] = [Self::RS256, Self::ES256, Self::PS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::PS256 => "PS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == s)
    }

    /// "RS256, ES256, PS256", for error messages.
    pub fn supported() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl std::fmt::Display for ClientAssertionAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ClientAssertionAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| {
            format!(
                "unsupported algorithm {s:?} (use one of {})",
                Self::supported()
            )
        })
    }
}

/// Client metadata as registered (RFC 7591 §2, OIDC Registration §2,
/// RP-Initiated Logout §3.1, Back-Channel Logout §2.2), stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    #[serde(default)]
    pub scope: ScopeSet,
    /// A name from the client-authentication registry
    /// (`oauth::client_auth::REGISTRY`), checked at registration.
    pub token_endpoint_auth_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<SigningAlg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_signed_response_alg: Option<SigningAlg>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// OIDC Back-Channel Logout 1.0 §2.2: where Logout Tokens are POSTed
    /// when a session the client got tokens in ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// §2.2: the client needs the `sid` claim in the Logout Token (Tessera
    /// always sends it); omitted when false, its default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backchannel_logout_session_required: bool,
    /// First-party client: the consent page is never shown.
    #[serde(default)]
    pub skip_consent: bool,
    /// RFC 9126 §6: its authorization requests must arrive through `/par`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_pushed_authorization_requests: bool,
    /// RFC 7591 §2: the client's public keys, inline, for `private_key_jwt`
    /// (checked at registration: public keys only, at least one usable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// RFC 7591 §2: the one algorithm the client's assertions must use;
    /// any supported one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<ClientAssertionAlg>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    /// Hex SHA-256 of the secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub metadata: ClientMetadata,
    pub created_at: UnixTime,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.metadata.token_endpoint_auth_method == AUTH_METHOD_NONE
    }

    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.metadata.grant_types.iter().any(|g| g == grant_type)
    }

    pub fn allows_response_type(&self, response_type: &str) -> bool {
        self.metadata
            .response_types
            .iter()
            .any(|t| t == response_type)
    }

    pub fn scopes(&self) -> ScopeSet {
        self.metadata.scope.clone()
    }

    pub fn name(&self) -> &str {
        &self.metadata.client_name
    }

    /// RFC 7591 §3.2.1 client information response. The plain secret is
    /// only known (and shown) right after registration.
    pub fn information_response(&self, secret: Option<&str>) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.metadata).unwrap_or_default();
        value["client_id"] = self.client_id.clone().into();
        value["client_id_issued_at"] = self.created_at.into();
        if let Some(secret) = secret {
            value["client_secret"] = secret.into();
            // RFC 7591 §3.2.1: 0 means the secret does not expire.
            value["client_secret_expires_at"] = 0.into();
        }
        value
    }
}
