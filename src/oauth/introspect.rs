//! Token introspection (RFC 7662).

use serde_json::{Value, json};

use super::access_token;
use crate::error::AppError;
use crate::state::AppState;

/// RFC 7662 §2.2. Anything we cannot vouch for (garbage, `alg: none`,
/// expired, foreign, wrongly signed, revoked) is just `{"active": false}`.
/// The `token_type_hint` only orders the search (§2.1), so it is ignored:
/// access tokens are recognised by their signature.
pub async fn introspect(state: &AppState, token: &str) -> Result<Value, AppError> {
    if let Some(claims) = access_token::validate(state, token).await? {
        let mut body = json!({
            "active": true,
            "token_type": "Bearer",
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
        });
        if let Some(scope) = claims.scope {
            body["scope"] = scope.into();
        }
        if let Some(auth_time) = claims.auth_time {
            body["auth_time"] = auth_time.into();
        }
        return Ok(body);
    }
    Ok(json!({ "active": false }))
}
