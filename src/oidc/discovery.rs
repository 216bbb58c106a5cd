//! Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2). Lists only what
//! Tessera really implements: grant types, client authentication methods,
//! response types and modes come from their registries, URLs from
//! `Endpoints`.

use serde_json::{Value, json};

use crate::domain::client::ClientAssertionAlg;
use crate::endpoints::Endpoints;
use crate::jose::SigningAlg;
use crate::oauth::response::{ResponseMode, ResponseType};
use crate::oauth::{client_auth, grants};

/// The scopes every server understands (OIDC Core §5.4, §11).
pub const STANDARD_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// `configured_scopes`: the scopes the operator described in the config.
/// `registration_enabled`: whether `/register` accepts registrations
/// (`RegistrationConfig::enabled`); only then is it advertised.
/// `par_required`: `par.required`, every client must push its requests.
pub fn metadata<'a>(
    endpoints: &Endpoints,
    configured_scopes: impl Iterator<Item = &'a str>,
    registration_enabled: bool,
    par_required: bool,
) -> Value {
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    let mut scopes: Vec<&str> = STANDARD_SCOPES.to_vec();
    scopes.extend(configured_scopes.filter(|s| !STANDARD_SCOPES.contains(s)));
    let auth_methods: Vec<&str> = client_auth::method_names().collect();
    // RFC 7662 §2.1: introspection callers must be confidential clients.
    let confidential_methods: Vec<&str> = client_auth::REGISTRY
        .iter()
        .filter(|m| m.is_confidential())
        .map(|m| m.name())
        .collect();
    // RFC 8414 §2: the algorithms `private_key_jwt` assertions may use.
    let assertion_algs: Vec<&str> = ClientAssertionAlg::ALL.iter().map(|a| a.as_str()).collect();
    let mut document = json!({
        "issuer": endpoints.issuer,
        "authorization_endpoint": endpoints.authorization,
        "token_endpoint": endpoints.token,
        "userinfo_endpoint": endpoints.userinfo,
        "jwks_uri": endpoints.jwks,
        "end_session_endpoint": endpoints.end_session,
        "introspection_endpoint": endpoints.introspection,
        "revocation_endpoint": endpoints.revocation,
        // RFC 8628 §4.
        "device_authorization_endpoint": endpoints.device_authorization,
        "scopes_supported": scopes,
        "response_types_supported": ResponseType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "response_modes_supported": ResponseMode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "grant_types_supported": grants::grant_types().collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": confidential_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid",
            "name", "preferred_username", "updated_at", "email", "email_verified"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        // RFC 9126 §5.
        "pushed_authorization_request_endpoint": endpoints.pushed_authorization_request,
        "require_pushed_authorization_requests": par_required,
        "access_token_signing_alg_values_supported": algs,
        // OIDC Back-Channel Logout 1.0 §2.1: Logout Tokens are sent, and
        // always carry `sid`.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    if registration_enabled {
        // RFC 8414 §2, OIDC Discovery §3; RFC 7591 §3.
        document["registration_endpoint"] = endpoints.registration.clone().into();
    }
    document
}
