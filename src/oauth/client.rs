//! Client registration rules (RFC 7591 §2): what metadata a client may
//! be registered with. The CLI, and later `/register` and the admin API,
//! all register through `register`.

use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::client::{AUTH_METHOD_NONE, Client, ClientAssertionAlg, ClientMetadata};
use crate::domain::scope::ScopeSet;
use crate::error::OAuthError;
use crate::jose::SigningAlg;
use crate::oauth::client_auth::{self, client_secret_basic, private_key_jwt};
use crate::oauth::grants::{
    self, authorization_code, client_credentials, device_code, refresh_token,
};
use crate::oauth::registration::{RegistrationError, RegistrationErrorCode};
use crate::oauth::response::ResponseType;

/// The scope a token request may have: the `requested` scopes if the
/// client is registered for all of them (else `invalid_scope`), or, without
/// a `scope` parameter, every registered one (RFC 6749 §3.3).
pub fn scope_within_registered(
    client: &Client,
    requested: Option<ScopeSet>,
) -> Result<ScopeSet, OAuthError> {
    let registered = client.scopes();
    let Some(requested) = requested else {
        return Ok(registered);
    };
    if let Some(extra) = requested.missing_from(&registered).next() {
        return Err(OAuthError::invalid_scope(format!(
            "scope {extra:?} is not registered for this client"
        )));
    }
    Ok(requested)
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
    /// OIDC Back-Channel Logout 1.0 §2.2.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub skip_consent: bool,
    /// RFC 9126 §6: only pushed authorization requests are accepted.
    pub require_pushed_authorization_requests: bool,
    /// RFC 7591 §2 `jwks`, as sent: the public keys of a `private_key_jwt`
    /// client (required by it, refused with any other method).
    pub jwks: Option<serde_json::Value>,
    /// RFC 7591 §2: the algorithm of a `private_key_jwt` client's assertions.
    pub token_endpoint_auth_signing_alg: Option<ClientAssertionAlg>,
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
    let method = client_auth::find(auth_method);
    let issues_secret = method.is_some_and(|m| m.issues_secret());
    let confidential = method.is_some_and(|m| m.is_confidential());
    if reg.public && confidential {
        return bad(format!(
            "a public client cannot use {auth_method}; it has no credentials"
        ));
    }
    let jwks = client_keys(&reg, auth_method).map_err(InvalidClientMetadata)?;
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
        if !confidential && !handler.allows_public_clients() {
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
    if has(refresh_token::GRANT_TYPE)
        && !has(authorization_code::GRANT_TYPE)
        && !has(device_code::GRANT_TYPE)
    {
        return bad(
            "refresh_token is only issued through authorization_code or the device grant".into(),
        );
    }
    for uri in reg
        .redirect_uris
        .iter()
        .chain(&reg.post_logout_redirect_uris)
    {
        super::redirect::validate_registered_uri(uri).map_err(InvalidClientMetadata)?;
    }
    if let Some(uri) = &reg.backchannel_logout_uri {
        super::redirect::validate_backchannel_logout_uri(uri).map_err(InvalidClientMetadata)?;
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
            backchannel_logout_uri: reg.backchannel_logout_uri,
            backchannel_logout_session_required: reg.backchannel_logout_session_required,
            skip_consent: reg.skip_consent,
            require_pushed_authorization_requests: reg.require_pushed_authorization_requests,
            jwks,
            token_endpoint_auth_signing_alg: reg.token_endpoint_auth_signing_alg,
        },
        created_at: now,
    };
    Ok((client, secret))
}

/// The keys of a `private_key_jwt` client: its `jwks` is required and
/// checked (`private_key_jwt::check_jwks`). With any other method `jwks`
/// and `token_endpoint_auth_signing_alg` are refused rather than ignored,
/// so a client never believes its keys are in use when they are not.
/// `jwks_uri` is not supported (no outbound HTTP yet; refused by
/// `registration::parse_registration`).
fn client_keys(
    reg: &ClientRegistration,
    auth_method: &str,
) -> Result<Option<jsonwebtoken::jwk::JwkSet>, String> {
    if auth_method != private_key_jwt::NAME {
        if reg.jwks.is_some() {
            return Err(format!(
                "jwks is only used with token_endpoint_auth_method {}",
                private_key_jwt::NAME
            ));
        }
        if reg.token_endpoint_auth_signing_alg.is_some() {
            return Err(format!(
                "token_endpoint_auth_signing_alg is only used with token_endpoint_auth_method {}",
                private_key_jwt::NAME
            ));
        }
        return Ok(None);
    }
    let Some(jwks) = &reg.jwks else {
        return Err(format!(
            "jwks is required by token_endpoint_auth_method {}: the client's public keys as \
             a JWK Set",
            private_key_jwt::NAME
        ));
    };
    private_key_jwt::check_jwks(jwks, reg.token_endpoint_auth_signing_alg)
        .map(Some)
        .map_err(|e| format!("jwks {e}"))
}

/// The scope that opens the admin API (`/admin/api/v1`). Only an operator
/// grants it (`tessera client add`, the admin API itself): a client
/// registering itself over HTTP may never ask for it, whatever
/// `registration.allowed_scopes` says.
pub const ADMIN_SCOPE: &str = "tessera:admin";

/// What a client registering itself over HTTP may ask for, beyond
/// `register`'s rules (RFC 7591 §2 lets the server restrict metadata).
#[derive(Debug, Clone, Default)]
pub struct DynamicRegistrationPolicy {
    /// When set, the client's scopes must be among these.
    pub allowed_scopes: Option<ScopeSet>,
}

/// `register` for a client registering itself (RFC 7591 §3), answering
/// RFC 7591 §3.2.2 error codes. First each field on its own, so that the
/// error names it: every redirect URI (`invalid_redirect_uri`), then each
/// name against its registry and the scope against the policy
/// (`invalid_client_metadata`). Then `register`'s rules for the combination.
/// Such a client never skips consent; without a `scope` it gets the
/// default scopes that the policy allows; without a name it is named by
/// its `client_id`.
pub fn register_dynamic(
    reg: ClientRegistration,
    policy: &DynamicRegistrationPolicy,
    now: UnixTime,
) -> Result<(Client, Option<String>), RegistrationError> {
    let (mut client, secret, named) = register_dynamic_unnamed(reg, policy, now)?;
    if !named {
        client.metadata.client_name = client.client_id.clone();
    }
    Ok((client, secret))
}

/// `register_dynamic`, leaving the name of a client registered without
/// one to the caller; the flag says whether it has one.
fn register_dynamic_unnamed(
    reg: ClientRegistration,
    policy: &DynamicRegistrationPolicy,
    now: UnixTime,
) -> Result<(Client, Option<String>, bool), RegistrationError> {
    check_each_field(&reg, policy)?;
    let named = !reg.client_name.trim().is_empty();
    let scope_given = reg.scope.is_some();
    let reg = ClientRegistration {
        // `register` wants a name; the caller replaces this one.
        client_name: if named { reg.client_name } else { "-".into() },
        skip_consent: false,
        ..reg
    };
    let (mut client, secret) = register(reg, now)
        .map_err(|e| RegistrationError::new(RegistrationErrorCode::InvalidClientMetadata, e.0))?;
    if let (false, Some(allowed)) = (scope_given, &policy.allowed_scopes) {
        client.metadata.scope = client
            .metadata
            .scope
            .iter()
            .filter(|s| allowed.contains(s))
            .map(str::to_string)
            .collect();
    }
    Ok((client, secret, named))
}

/// RFC 7592 §2.2: `existing` replaced as a whole by `reg`, on the rules of
/// `register_dynamic`. The client id and creation time stay. The secret
/// stays while the client keeps authenticating with one, is created when
/// it starts to (and only then returned, to be shown once), and is
/// dropped when it stops.
pub fn replace_dynamic(
    existing: &Client,
    reg: ClientRegistration,
    policy: &DynamicRegistrationPolicy,
    now: UnixTime,
) -> Result<(Client, Option<String>), RegistrationError> {
    let (minted, new_secret, named) = register_dynamic_unnamed(reg, policy, now)?;
    let mut client = Client {
        client_id: existing.client_id.clone(),
        created_at: existing.created_at,
        ..minted
    };
    if !named {
        client.metadata.client_name = existing.client_id.clone();
    }
    let secret = match (&existing.secret_hash, client.secret_hash.is_some()) {
        (Some(kept), true) => {
            client.secret_hash = Some(kept.clone());
            None
        }
        (None, true) => new_secret,
        (_, false) => None,
    };
    Ok((client, secret))
}

/// The checks of `register_dynamic` that concern one field each.
fn check_each_field(
    reg: &ClientRegistration,
    policy: &DynamicRegistrationPolicy,
) -> Result<(), RegistrationError> {
    for uri in &reg.redirect_uris {
        super::redirect::validate_registered_uri(uri).map_err(RegistrationError::redirect_uri)?;
    }
    for uri in &reg.post_logout_redirect_uris {
        super::redirect::validate_registered_uri(uri)
            .map_err(|e| RegistrationError::metadata("post_logout_redirect_uris", e))?;
    }
    if let Some(uri) = &reg.backchannel_logout_uri {
        super::redirect::validate_backchannel_logout_uri(uri)
            .map_err(|e| RegistrationError::metadata("backchannel_logout_uri", e))?;
    }
    if let Some(name) = &reg.token_endpoint_auth_method
        && client_auth::find(name).is_none()
    {
        return Err(RegistrationError::metadata(
            "token_endpoint_auth_method",
            format!(
                "unsupported method {name:?} (supported: {})",
                client_auth::method_names().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for g in &reg.grant_types {
        if grants::find(g).is_err() {
            return Err(RegistrationError::metadata(
                "grant_types",
                format!(
                    "unsupported grant type {g:?} (supported: {})",
                    grants::grant_types().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    for t in &reg.response_types {
        if ResponseType::parse(t).is_none() {
            return Err(RegistrationError::metadata(
                "response_types",
                format!(
                    "unsupported response type {t:?} (supported: {})",
                    ResponseType::ALL
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    if let Some(scope) = &reg.scope {
        let requested =
            ScopeSet::parse(scope).map_err(|e| RegistrationError::metadata("scope", e))?;
        if requested.contains(ADMIN_SCOPE) {
            return Err(RegistrationError::metadata(
                "scope",
                format!("{ADMIN_SCOPE} is reserved for clients an operator registers"),
            ));
        }
        if let Some(allowed) = &policy.allowed_scopes {
            let refused: Vec<&str> = requested.missing_from(allowed).collect();
            if !refused.is_empty() {
                return Err(RegistrationError::metadata(
                    "scope",
                    format!(
                        "{} not allowed for registered clients (allowed: {allowed})",
                        refused.join(" ")
                    ),
                ));
            }
        }
    }
    Ok(())
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

    fn web() -> ClientRegistration {
        ClientRegistration {
            client_name: "web".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..Default::default()
        }
    }

    #[test]
    fn dynamic_clients_never_skip_consent_and_stay_within_the_policy() {
        let open = DynamicRegistrationPolicy::default();
        let (c, _) = register_dynamic(
            ClientRegistration {
                skip_consent: true,
                ..web()
            },
            &open,
            0,
        )
        .unwrap();
        assert!(!c.metadata.skip_consent);

        let policy = DynamicRegistrationPolicy {
            allowed_scopes: Some(ScopeSet::parse("openid profile read").unwrap()),
        };
        let e = register_dynamic(
            ClientRegistration {
                scope: Some("openid write".into()),
                ..web()
            },
            &policy,
            0,
        )
        .unwrap_err();
        assert_eq!(e.code, RegistrationErrorCode::InvalidClientMetadata);
        assert!(e.description.starts_with("scope:"), "{e}");
        assert!(e.description.contains("write"), "{e}");
        // Without a scope: the defaults the policy allows.
        let (c, _) = register_dynamic(web(), &policy, 0).unwrap();
        assert_eq!(c.metadata.scope.to_string(), "openid profile");
    }

    #[test]
    fn dynamic_errors_name_the_field() {
        let open = DynamicRegistrationPolicy::default();
        let cases = [
            (
                ClientRegistration {
                    redirect_uris: vec!["http://app.example/cb".into()],
                    ..web()
                },
                RegistrationErrorCode::InvalidRedirectUri,
                "redirect_uris",
            ),
            (
                ClientRegistration {
                    grant_types: vec!["implicit".into()],
                    ..web()
                },
                RegistrationErrorCode::InvalidClientMetadata,
                "grant_types",
            ),
            (
                ClientRegistration {
                    token_endpoint_auth_method: Some("client_secret_jwt".into()),
                    ..web()
                },
                RegistrationErrorCode::InvalidClientMetadata,
                "token_endpoint_auth_method",
            ),
            (
                ClientRegistration {
                    response_types: vec!["token".into()],
                    ..web()
                },
                RegistrationErrorCode::InvalidClientMetadata,
                "response_types",
            ),
            (
                ClientRegistration {
                    post_logout_redirect_uris: vec!["https://app.example/out#x".into()],
                    ..web()
                },
                RegistrationErrorCode::InvalidClientMetadata,
                "post_logout_redirect_uris",
            ),
            (
                ClientRegistration {
                    backchannel_logout_uri: Some("http://rp.example/logout".into()),
                    ..web()
                },
                RegistrationErrorCode::InvalidClientMetadata,
                "backchannel_logout_uri",
            ),
        ];
        for (reg, code, field) in cases {
            let e = register_dynamic(reg, &open, 0).unwrap_err();
            assert_eq!(e.code, code, "{e}");
            assert!(e.description.starts_with(field), "{e}");
        }
    }

    #[test]
    fn unnamed_clients_are_named_by_their_id() {
        let open = DynamicRegistrationPolicy::default();
        let (c, _) = register_dynamic(
            ClientRegistration {
                client_name: " ".into(),
                ..web()
            },
            &open,
            0,
        )
        .unwrap();
        assert_eq!(c.metadata.client_name, c.client_id);
        let (replaced, _) = replace_dynamic(
            &c,
            ClientRegistration {
                client_name: String::new(),
                ..web()
            },
            &open,
            9,
        )
        .unwrap();
        assert_eq!(replaced.client_id, c.client_id);
        assert_eq!(replaced.metadata.client_name, c.client_id);
        assert_eq!(replaced.created_at, c.created_at);
    }

    #[test]
    fn replacing_keeps_creates_or_drops_the_secret() {
        let open = DynamicRegistrationPolicy::default();
        let (confidential, secret) = register_dynamic(web(), &open, 0).unwrap();
        assert!(secret.is_some());
        let basic_to_post = ClientRegistration {
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..web()
        };
        let (kept, shown) = replace_dynamic(&confidential, basic_to_post, &open, 1).unwrap();
        assert_eq!(shown, None);
        assert_eq!(kept.secret_hash, confidential.secret_hash);

        let public = ClientRegistration {
            token_endpoint_auth_method: Some("none".into()),
            public: true,
            ..web()
        };
        let (dropped, shown) = replace_dynamic(&confidential, public.clone(), &open, 1).unwrap();
        assert_eq!((dropped.secret_hash, shown), (None, None));

        let (public_client, _) = register_dynamic(public, &open, 0).unwrap();
        let (created, shown) = replace_dynamic(&public_client, web(), &open, 1).unwrap();
        let shown = shown.expect("a new secret is shown once");
        assert!(crypto::secret_matches(
            &shown,
            created.secret_hash.as_deref().unwrap()
        ));
    }
}
