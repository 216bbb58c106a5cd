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
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{}", http::TOKEN_PATH),
        "jwks_uri": format!("{issuer}{}", http::JWKS_PATH),
        "introspection_endpoint": format!("{issuer}{}", http::INTROSPECTION_PATH),
        "revocation_endpoint": format!("{issuer}{}", http::REVOCATION_PATH),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "code_challenge_methods_supported": ["S256"],
        "access_token_signing_alg_values_supported": algs,
    })
}
