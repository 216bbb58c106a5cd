//! Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2). Lists only what
//! Tessera really implements.

use serde_json::{Value, json};

use crate::config::Config;
use crate::http;
use crate::jose::SigningAlg;

pub fn metadata(config: &Config) -> Value {
    let issuer = &config.issuer;
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let mut scopes: Vec<&str> = vec!["openid", "profile", "email", "offline_access"];
    scopes.extend(
        config
            .scopes
            .keys()
            .map(String::as_str)
            .filter(|s| !scopes_contains(s)),
    );
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{}", http::AUTHORIZATION_PATH),
        "token_endpoint": format!("{issuer}{}", http::TOKEN_PATH),
        "userinfo_endpoint": format!("{issuer}{}", http::USERINFO_PATH),
        "jwks_uri": format!("{issuer}{}", http::JWKS_PATH),
        "end_session_endpoint": format!("{issuer}{}", http::END_SESSION_PATH),
        "introspection_endpoint": format!("{issuer}{}", http::INTROSPECTION_PATH),
        "revocation_endpoint": format!("{issuer}{}", http::REVOCATION_PATH),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
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
        "access_token_signing_alg_values_supported": algs,
    })
}

fn scopes_contains(s: &str) -> bool {
    ["openid", "profile", "email", "offline_access"].contains(&s)
}
