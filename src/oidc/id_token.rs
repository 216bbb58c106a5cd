//! ID tokens (OIDC Core §2, §3.1.3.7).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::claims::scope_claims;
use crate::crypto;
use crate::domain::Client;
use crate::domain::User;
use crate::domain::scope::ScopeSet;
use crate::error::AppError;
use crate::oauth::tokens::Tokens;

/// OIDC Core §3.1.3.6: `at_hash` is the base64url of the left half of
/// the SHA-256 of the access token (RS256 and ES256 both use SHA-256).
pub fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&crypto::sha256(access_token.as_bytes())[..16])
}

pub struct IdTokenInput<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    /// When the person signed in (OIDC `auth_time`).
    pub auth_time: i64,
    /// The login session (OIDC `sid`).
    pub sid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// The access token issued beside it, for `at_hash`; `None` when the
    /// ID token is the whole response (`response_type=id_token`).
    pub access_token: Option<&'a str>,
    pub scope: &'a ScopeSet,
}

pub fn issue(tokens: &Tokens<'_>, input: IdTokenInput<'_>) -> Result<String, AppError> {
    let now = tokens.now();
    let client_id = &input.client.client_id;
    let mut claims = json!({
        "iss": tokens.issuer,
        "sub": input.user.sub,
        "aud": client_id,
        "azp": client_id,
        "exp": now + tokens.settings.id_token_ttl_secs,
        "iat": now,
        "auth_time": input.auth_time,
    });
    if let Some(access_token) = input.access_token {
        claims["at_hash"] = at_hash(access_token).into();
    }
    if let Some(nonce) = input.nonce {
        claims["nonce"] = nonce.into();
    }
    if let Some(sid) = input.sid {
        claims["sid"] = sid.into();
    }
    if let Value::Object(map) = &mut claims {
        map.extend(scope_claims(input.user, input.scope));
    }
    sign_for_client(tokens, input.client, "JWT", &claims)
}

/// Signs `claims` as a JWT of media type `typ` for `client`: with the
/// client's `id_token_signed_response_alg` (else the server's default), by
/// the current key. ID tokens, and Logout Tokens (OIDC Back-Channel Logout
/// 1.0 §2.4: signed as ID tokens are).
pub fn sign_for_client(
    tokens: &Tokens<'_>,
    client: &Client,
    typ: &str,
    claims: &Value,
) -> Result<String, AppError> {
    let alg = client
        .metadata
        .id_token_signed_response_alg
        .unwrap_or(tokens.settings.default_id_token_alg);
    Ok(tokens.keys.sign(alg, typ, claims)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core, Appendix A.3 (RS256 example).
        assert_eq!(
            super::at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
