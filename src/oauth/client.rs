//! Registered clients (RFC 7591 metadata) and their registration rules.

use serde::{Deserialize, Serialize};

use super::scope::ScopeSet;
use crate::clock::UnixTime;
use crate::crypto;
use crate::jose::SigningAlg;

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

/// Grant types a client may be registered for: what the token endpoint
/// implements.
pub const SUPPORTED_GRANT_TYPES: [&str; 3] = [
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_CLIENT_CREDENTIALS,
];

/// RFC 7591 §2 `token_endpoint_auth_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl TokenEndpointAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// Client metadata as registered (RFC 7591 §2, OIDC Registration §2,
/// RP-Initiated Logout §3.1), stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    #[serde(default)]
    pub scope: String,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<SigningAlg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_signed_response_alg: Option<SigningAlg>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party client: the consent page is never shown.
    #[serde(default)]
    pub skip_consent: bool,
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
        self.metadata.token_endpoint_auth_method == TokenEndpointAuthMethod::None
    }

    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.metadata.grant_types.iter().any(|g| g == grant_type)
    }

    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.metadata.scope).unwrap_or_default()
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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidClientMetadata(pub String);

/// What an operator asks for; `register` checks it and mints the client.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistration {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scope: Option<String>,
    pub public: bool,
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    pub id_token_signed_response_alg: Option<SigningAlg>,
    pub access_token_signed_response_alg: Option<SigningAlg>,
    pub post_logout_redirect_uris: Vec<String>,
    pub skip_consent: bool,
}

/// Validates a registration and returns the client and, for a confidential
/// client, its secret (shown once, stored only as a hash).
pub fn register(
    reg: ClientRegistration,
    now: UnixTime,
) -> Result<(Client, Option<String>), InvalidClientMetadata> {
    let bad = |m: String| Err(InvalidClientMetadata(m));
    if reg.client_name.trim().is_empty() {
        return bad("client name must not be empty".into());
    }
    let auth_method = match (reg.public, reg.token_endpoint_auth_method) {
        (true, None | Some(TokenEndpointAuthMethod::None)) => TokenEndpointAuthMethod::None,
        (true, Some(m)) => {
            return bad(format!(
                "a public client cannot use {}; it has no secret",
                m.as_str()
            ));
        }
        (false, Some(m)) => m,
        (false, None) => TokenEndpointAuthMethod::ClientSecretBasic,
    };
    // RFC 7591 §2: without grant_types the client uses authorization_code;
    // a client registered with no redirect URI can only be a machine client.
    let grant_types = if !reg.grant_types.is_empty() {
        reg.grant_types.clone()
    } else if reg.redirect_uris.is_empty() {
        vec![GRANT_CLIENT_CREDENTIALS.to_string()]
    } else {
        vec![GRANT_AUTHORIZATION_CODE.to_string()]
    };
    let mut deduped: Vec<String> = Vec::new();
    for g in grant_types {
        if !SUPPORTED_GRANT_TYPES.contains(&g.as_str()) {
            return bad(format!(
                "unsupported grant type {g:?} (supported: {})",
                SUPPORTED_GRANT_TYPES.join(", ")
            ));
        }
        if !deduped.contains(&g) {
            deduped.push(g);
        }
    }
    let grant_types = deduped;
    let has = |g: &str| grant_types.iter().any(|x| x == g);
    if auth_method == TokenEndpointAuthMethod::None && has(GRANT_CLIENT_CREDENTIALS) {
        // RFC 6749 §4.4: the client credentials grant is for confidential clients only.
        return bad("a public client cannot use the client_credentials grant".into());
    }
    if has(GRANT_AUTHORIZATION_CODE) && reg.redirect_uris.is_empty() {
        return bad("the authorization_code grant needs at least one redirect URI".into());
    }
    if has(GRANT_REFRESH_TOKEN) && !has(GRANT_AUTHORIZATION_CODE) {
        return bad("refresh_token is only issued through authorization_code".into());
    }
    for uri in reg
        .redirect_uris
        .iter()
        .chain(&reg.post_logout_redirect_uris)
    {
        super::redirect::validate_registered_uri(uri).map_err(InvalidClientMetadata)?;
    }
    let scope = match reg.scope {
        Some(s) => ScopeSet::parse(&s)
            .map_err(|e| InvalidClientMetadata(format!("invalid scope: {e}")))?
            .to_string(),
        None if has(GRANT_AUTHORIZATION_CODE) => "openid profile email".to_string(),
        None => String::new(),
    };
    let secret = (auth_method != TokenEndpointAuthMethod::None).then(crypto::random_token);
    let client = Client {
        client_id: crypto::random_hex::<16>(),
        secret_hash: secret.as_deref().map(crypto::hash_secret),
        metadata: ClientMetadata {
            client_name: reg.client_name.trim().to_string(),
            redirect_uris: reg.redirect_uris,
            response_types: if has(GRANT_AUTHORIZATION_CODE) {
                vec!["code".into()]
            } else {
                vec![]
            },
            grant_types,
            scope,
            token_endpoint_auth_method: auth_method,
            id_token_signed_response_alg: reg.id_token_signed_response_alg,
            access_token_signed_response_alg: reg.access_token_signed_response_alg,
            post_logout_redirect_uris: reg.post_logout_redirect_uris,
            skip_consent: reg.skip_consent,
        },
        created_at: now,
    };
    Ok((client, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> ClientRegistration {
        ClientRegistration {
            client_name: "svc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn machine_client_defaults() {
        let (c, secret) = register(reg(), 5).unwrap();
        assert_eq!(c.metadata.grant_types, vec!["client_credentials"]);
        assert_eq!(
            c.metadata.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        let secret = secret.unwrap();
        assert!(crypto::secret_matches(
            &secret,
            c.secret_hash.as_deref().unwrap()
        ));
        let info = c.information_response(Some(&secret));
        assert_eq!(info["client_secret_expires_at"], 0);
        assert_eq!(info["client_id"], c.client_id.as_str());
    }

    #[test]
    fn rejects_inconsistent_metadata() {
        let public_cc = ClientRegistration {
            public: true,
            grant_types: vec!["client_credentials".into()],
            ..reg()
        };
        assert!(register(public_cc, 0).is_err());
        let code_without_uri = ClientRegistration {
            grant_types: vec!["authorization_code".into()],
            ..reg()
        };
        assert!(register(code_without_uri, 0).is_err());
        let implicit = ClientRegistration {
            grant_types: vec!["implicit".into()],
            ..reg()
        };
        assert!(register(implicit, 0).is_err());
        let bad_scope = ClientRegistration {
            scope: Some("a\"b".into()),
            ..reg()
        };
        assert!(register(bad_scope, 0).is_err());
    }
}
