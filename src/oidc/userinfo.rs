//! The UserInfo endpoint's logic (OIDC Core §5.3).

use serde_json::{Value, json};

use super::claims::scope_claims;
use crate::domain::scope::ScopeSet;
use crate::error::AppError;
use crate::oauth::access_token::{self, RevocationCheck};
use crate::oauth::tokens::Tokens;
use crate::store::UserStore;

/// RFC 6750 §3.1 error codes of a bearer-protected resource.
#[derive(Debug, PartialEq, Eq)]
pub enum BearerError {
    /// No token at all: a bare `WWW-Authenticate: Bearer` challenge.
    Missing,
    InvalidToken(&'static str),
    InsufficientScope(&'static str),
}

pub async fn userinfo(
    tokens: &Tokens<'_>,
    revoked: &RevocationCheck<'_>,
    users: &dyn UserStore,
    token: &str,
) -> Result<Result<Value, BearerError>, AppError> {
    let Some(claims) = access_token::validate(tokens, revoked, token).await? else {
        return Ok(Err(BearerError::InvalidToken(
            "the access token is invalid, expired or revoked",
        )));
    };
    if claims.grant_id.is_none() {
        return Ok(Err(BearerError::InvalidToken(
            "the access token was not issued to a user",
        )));
    }
    let scope = ScopeSet::parse(claims.scope.as_deref().unwrap_or("")).unwrap_or_default();
    if !scope.contains("openid") {
        return Ok(Err(BearerError::InsufficientScope(
            "the access token lacks the openid scope",
        )));
    }
    let Some(user) = users.user(&claims.sub).await? else {
        return Ok(Err(BearerError::InvalidToken("the user no longer exists")));
    };
    let mut body = json!({ "sub": user.sub });
    if let Value::Object(map) = &mut body {
        map.extend(scope_claims(&user, &scope));
    }
    Ok(Ok(body))
}
