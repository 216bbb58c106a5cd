//! A registered resource (an API, RFC 8707): the identifier clients name
//! in `resource` and tokens carry as `aud`, the scopes that make sense for
//! it, and the token settings it overrides.

use serde_json::json;

use crate::clock::UnixTime;
use crate::domain::scope::ScopeSet;
use crate::jose::SigningAlg;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// An absolute URI without a fragment (RFC 8707 §2), compared exactly.
    pub identifier: String,
    /// Shown on the consent page beside the scopes it defines.
    pub name: String,
    pub scopes: ScopeSet,
    /// Lifetime of access tokens for it; the server default when `None`.
    pub access_token_ttl_secs: Option<i64>,
    /// Algorithm of access tokens for it; the client's or the default when
    /// `None`.
    pub signing_alg: Option<SigningAlg>,
    /// Hex SHA-256 of the secret it introspects with (RFC 7662 §2.1);
    /// `None` when it has no credentials.
    pub secret_hash: Option<String>,
    /// The client that owns it (the API's own client): it may exchange
    /// (RFC 8693) access tokens meant for this resource for tokens to call
    /// other APIs on the same subject's behalf. `None`: no client does.
    pub owner_client_id: Option<String>,
    pub created_at: UnixTime,
}

impl Resource {
    /// How the CLI and the admin API show it; never the secret's hash.
    /// `secret` is the plain secret, known only right after creation.
    pub fn to_json(&self, secret: Option<&str>) -> serde_json::Value {
        let mut value = json!({
            "identifier": self.identifier,
            "name": self.name,
            "scope": self.scopes.to_string(),
            "access_token_ttl_secs": self.access_token_ttl_secs,
            "signing_alg": self.signing_alg.map(SigningAlg::as_str),
            "has_secret": self.secret_hash.is_some(),
            "owner_client_id": self.owner_client_id,
            "created_at": self.created_at,
        });
        if let Some(secret) = secret {
            value["secret"] = secret.into();
        }
        value
    }
}
