//! Client registration rules (RFC 7591 §2): what metadata a client may
//! be registered with. The CLI, and later `/register` and the admin API,
//! all register through `register`.

use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::client::{
    Client, ClientMetadata, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN, SUPPORTED_GRANT_TYPES, TokenEndpointAuthMethod,
};
use crate::domain::scope::ScopeSet;
use crate::jose::SigningAlg;

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
        Some(s) => {
            ScopeSet::parse(&s).map_err(|e| InvalidClientMetadata(format!("invalid scope: {e}")))?
        }
        None if has(GRANT_AUTHORIZATION_CODE) => ScopeSet::parse("openid profile email")
            .map_err(|e| InvalidClientMetadata(format!("invalid scope: {e}")))?,
        None => ScopeSet::default(),
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
