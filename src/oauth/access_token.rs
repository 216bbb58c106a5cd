//! JWT access tokens (RFC 9068).

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::Client;
use crate::domain::scope::ScopeSet;
use crate::error::AppError;
use crate::jose::SigningAlg;
use crate::state::AppState;

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// RFC 9068 §2.2 claims, plus the authentication facts of §2.2.1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    /// The grant (refresh family) the token was issued under, so that
    /// revoking the grant revokes the token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// Who the token is for: the client itself (client credentials) or a user
/// through a grant.
pub struct Subject<'a> {
    pub sub: &'a str,
    pub auth_time: Option<UnixTime>,
    pub grant_id: Option<&'a str>,
}

pub struct IssuedAccessToken {
    pub token: String,
    pub claims: AccessTokenClaims,
}

/// Signs an access token for `client` with the algorithm it registered
/// (or the server default). Nothing is written anywhere.
pub fn issue(
    state: &AppState,
    client: &Client,
    subject: Subject<'_>,
    scope: &ScopeSet,
) -> Result<IssuedAccessToken, AppError> {
    let now = state.clock.now();
    let claims = AccessTokenClaims {
        iss: state.config.issuer.clone(),
        sub: subject.sub.to_string(),
        aud: state.config.access_token_audience().to_string(),
        exp: now + state.config.tokens.access_token_ttl_secs,
        iat: now,
        jti: crypto::random_token(),
        client_id: client.client_id.clone(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: subject.auth_time,
        grant_id: subject.grant_id.map(str::to_string),
    };
    let alg = access_token_alg(state, client);
    let token = state.keys().sign(alg, ACCESS_TOKEN_TYP, &claims)?;
    Ok(IssuedAccessToken { token, claims })
}

pub fn access_token_alg(state: &AppState, client: &Client) -> SigningAlg {
    client
        .metadata
        .access_token_signed_response_alg
        .unwrap_or(state.config.tokens.default_access_token_alg)
}

/// Verifies an access token we issued and checks it was not revoked.
pub async fn validate(
    state: &AppState,
    token: &str,
) -> Result<Option<AccessTokenClaims>, AppError> {
    let now = state.clock.now();
    let Some(claims) = state.keys().verify::<AccessTokenClaims>(
        token,
        ACCESS_TOKEN_TYP,
        &state.config.issuer,
        Some(now),
    ) else {
        return Ok(None);
    };
    if state.store.is_access_token_revoked(&claims.jti).await? {
        return Ok(None);
    }
    // A revoked grant (logout, reused refresh token, replayed code) takes
    // every access token issued under it along.
    if let Some(grant_id) = &claims.grant_id {
        match state.store.grant(grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(claims))
}
