//! Client registration rules (RFC 7591 §2): what metadata a client may
//! be registered with. The CLI, and later `/register` and the admin API,
//! all register through `register`.

use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::client::{AUTH_METHOD_NONE, Client, ClientMetadata};
use crate::domain::scope::ScopeSet;
use crate::jose::SigningAlg;
use crate::oauth::client_auth::{self, client_secret_basic};
use crate::oauth::grants::{self, authorization_code, client_credentials, refresh_token};
use crate::oauth::response::ResponseType;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidClientMetadata(pub String);

/// What an operator asks for; `register` checks it and mints the client.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistration {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// RFC 7591 §2 `response_types`; default `code` for an
    /// authorization-code client.
    pub response_types: Vec<String>,
    pub scope: Option<String>,
    pub public: bool,
    /// A name from `client_auth::REGISTRY`; default `client_secret_basic`
    /// (or `none` for a public client).
    pub token_endpoint_auth_method: Option<String>,
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
    let auth_method = match (reg.public, reg.token_endpoint_auth_method.as_deref()) {
        (true, None) => AUTH_METHOD_NONE,
        (false, None) => client_secret_basic::NAME,
        (_, Some(name)) => match client_auth::find(name) {
            Some(m) => m.name(),
            None => {
                return bad(format!(
                    "unsupported token_endpoint_auth_method {name:?} (supported: {})",
                    client_auth::method_names().collect::<Vec<_>>().join(", ")
                ));
            }
        },
    };
    let issues_secret = client_auth::find(auth_method).is_some_and(|m| m.issues_secret());
    if reg.public && issues_secret {
        return bad(format!(
            "a public client cannot use {auth_method}; it has no secret"
        ));
    }
    // RFC 7591 §2: without grant_types the client uses authorization_code;
    // a client registered with no redirect URI can only be a machine client.
    let mut response_types: Vec<ResponseType> = Vec::new();
    for name in &reg.response_types {
        let Some(t) = ResponseType::parse(name) else {
            return bad(format!(
                "unsupported response type {name:?} (supported: {})",
                ResponseType::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if !response_types.contains(&t) {
            response_types.push(t);
        }
    }
    let id_token_only = !response_types.is_empty() && !response_types.contains(&ResponseType::Code);
    let grant_types = if !reg.grant_types.is_empty() {
        reg.grant_types.clone()
    } else if id_token_only {
        // RFC 7591 §2.1: `id_token` alone uses no token endpoint grant.
        Vec::new()
    } else if reg.redirect_uris.is_empty() {
        vec![client_credentials::GRANT_TYPE.to_string()]
    } else {
        vec![authorization_code::GRANT_TYPE.to_string()]
    };
    let mut deduped: Vec<String> = Vec::new();
    for g in grant_types {
        let Ok(handler) = grants::find(&g) else {
            return bad(format!(
                "unsupported grant type {g:?} (supported: {})",
                grants::grant_types().collect::<Vec<_>>().join(", ")
            ));
        };
        if !issues_secret && !handler.allows_public_clients() {
            // RFC 6749 §4.4: e.g. client credentials are for confidential clients only.
            return bad(format!("a public client cannot use the {g} grant"));
        }
        if !deduped.contains(&g) {
            deduped.push(g);
        }
    }
    let grant_types = deduped;
    let has = |g: &str| grant_types.iter().any(|x| x == g);
    if has(authorization_code::GRANT_TYPE) && reg.redirect_uris.is_empty() {
        return bad("the authorization_code grant needs at least one redirect URI".into());
    }
    // RFC 7591 §2.1: `code` goes with the authorization_code grant.
    if response_types.is_empty() && has(authorization_code::GRANT_TYPE) {
        response_types.push(ResponseType::Code);
    }
    if response_types.contains(&ResponseType::Code) && !has(authorization_code::GRANT_TYPE) {
        return bad("response type code needs the authorization_code grant".into());
    }
    if response_types.contains(&ResponseType::IdToken) && reg.redirect_uris.is_empty() {
        return bad("response type id_token needs at least one redirect URI".into());
    }
    if has(refresh_token::GRANT_TYPE) && !has(authorization_code::GRANT_TYPE) {
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
        Some(s) => {
            ScopeSet::parse(&s).map_err(|e| InvalidClientMetadata(format!("invalid scope: {e}")))?
        }
        None if !response_types.is_empty() => ScopeSet::parse("openid profile email")
            .map_err(|e| InvalidClientMetadata(format!("invalid scope: {e}")))?,
        None => ScopeSet::default(),
    };
    let secret = issues_secret.then(crypto::random_token);
    let client = Client {
        client_id: crypto::random_hex::<16>(),
        secret_hash: secret.as_deref().map(crypto::hash_secret),
        metadata: ClientMetadata {
            client_name: reg.client_name.trim().to_string(),
            redirect_uris: reg.redirect_uris,
            response_types: response_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            grant_types,
            scope,
            token_endpoint_auth_method: auth_method.to_string(),
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
        assert_eq!(c.metadata.token_endpoint_auth_method, "client_secret_basic");
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
