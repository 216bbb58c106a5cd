//! Token introspection (RFC 7662).

use serde_json::{Value, json};

use super::access_token::{self, RevocationCheck};
use super::tokens::Tokens;
use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::{ApiKeyOwner, Client, Grant, RefreshToken, Resource};
use crate::error::AppError;
use crate::service::api_keys::{self, VerifyCode};
use crate::service::audit::{Actor, AuditSink};
use crate::store::GrantStore;

/// Who asks (RFC 7662 §2.1): a confidential client, or a registered
/// resource server with its own credentials.
pub enum Introspector<'a> {
    Client(&'a Client),
    Resource(&'a Resource),
}

/// RFC 7662 §2.2. Anything we cannot vouch for (garbage, `alg: none`,
/// expired, foreign, wrongly signed, revoked) is just `{"active": false}`.
/// The `token_type_hint` only orders the search (§2.1), so it is ignored:
/// access tokens are recognised by their signature, API keys by their
/// shape (`PREFIX_` and 43 characters), refresh tokens by their stored
/// hash.
pub async fn introspect(
    tokens: &Tokens<'_>,
    revoked: &RevocationCheck<'_>,
    audit: &dyn AuditSink,
    caller: Introspector<'_>,
    token: &str,
) -> Result<Value, AppError> {
    // RFC 7662 §4: only the client the token was issued to, or a resource
    // server it is meant for (its `aud` includes it), learns anything
    // about it; a token for another API is just inactive.
    let meant_for_caller = |c: &access_token::AccessTokenClaims| match &caller {
        Introspector::Client(client) => {
            c.client_id == client.client_id || c.aud.contains(&client.client_id)
        }
        Introspector::Resource(resource) => c.aud.contains(&resource.identifier),
    };
    if let Some(claims) = access_token::validate(tokens, revoked, token)
        .await?
        .filter(meant_for_caller)
    {
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
        // RFC 8693 §4.1: who acts for the subject, when a token exchange
        // delegated it.
        if let Some(act) = claims.act {
            body["act"] = serde_json::to_value(act).unwrap_or_default();
        }
        return Ok(body);
    }
    // Issue 12.5: an API key, checked as `/apikeys/verify` does (the use
    // counts against its rate limit). Refresh tokens (43 characters) and
    // JWTs (dots) never have this shape.
    if api_keys::looks_like_a_key(token) {
        return api_key(tokens, revoked, audit, &caller, token).await;
    }
    // A refresh token is only ever meaningful to the client holding it;
    // nobody else, a resource server neither, learns anything about it
    // (RFC 7662 §4, token scanning).
    let Introspector::Client(caller) = caller else {
        return Ok(json!({ "active": false }));
    };
    if let Some((token, grant)) = live_refresh_token(revoked.grants, tokens.now(), token).await?
        && grant.client_id == caller.client_id
    {
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": grant.client_id,
            "sub": grant.sub,
            "scope": grant.scope.to_string(),
            "iss": tokens.issuer,
            "exp": token.expires_at,
            "iat": token.created_at,
            "auth_time": grant.auth_time,
        }));
    }
    Ok(json!({ "active": false }))
}

async fn api_key(
    tokens: &Tokens<'_>,
    revoked: &RevocationCheck<'_>,
    audit: &dyn AuditSink,
    caller: &Introspector<'_>,
    token: &str,
) -> Result<Value, AppError> {
    let actor = match caller {
        Introspector::Client(client) => Actor::Client(client.client_id.clone()),
        Introspector::Resource(resource) => Actor::Resource(resource.identifier.clone()),
    };
    let verification =
        api_keys::verify(revoked.api_keys, tokens.clock, audit, &actor, token, &[]).await?;
    let key = match (verification.code, verification.key) {
        (VerifyCode::Valid, Some(key)) => key,
        _ => return Ok(json!({ "active": false })),
    };
    let (sub, client_id) = match &key.owner {
        ApiKeyOwner::Client(client_id) => (client_id.as_str(), client_id.as_str()),
        ApiKeyOwner::User(sub) => (sub.as_str(), key.id.as_str()),
        ApiKeyOwner::Unowned => (key.id.as_str(), key.id.as_str()),
    };
    let mut body = json!({
        "active": true,
        "token_type": "api_key",
        "scope": key.scopes.to_string(),
        "client_id": client_id,
        "sub": sub,
        "iss": tokens.issuer,
        "iat": key.created_at,
        "api_key_id": key.id,
    });
    if let Some(exp) = key.expires_at {
        body["exp"] = exp.into();
    }
    Ok(body)
}

/// A refresh token that can still be used: known, not yet rotated, not
/// expired, and its grant neither revoked nor past its absolute lifetime.
pub async fn live_refresh_token(
    grants: &dyn GrantStore,
    now: UnixTime,
    token: &str,
) -> Result<Option<(RefreshToken, Grant)>, AppError> {
    let Some(record) = grants.refresh_token(&crypto::hash_secret(token)).await? else {
        return Ok(None);
    };
    if record.rotated_at.is_some() || record.expires_at <= now {
        return Ok(None);
    }
    Ok(grants
        .grant(&record.grant_id)
        .await?
        .filter(|g| g.is_live(now))
        .map(|g| (record, g)))
}
