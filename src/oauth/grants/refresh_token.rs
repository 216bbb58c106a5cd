//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2). Also the token response shared with the
//! authorization code grant.

use super::TokenResponse;
use crate::crypto;
use crate::domain::Client;
use crate::domain::client::GRANT_REFRESH_TOKEN;
use crate::domain::scope::ScopeSet;
use crate::domain::{Grant, RefreshRotation, RefreshToken};
use crate::error::{AppError, OAuthError};
use crate::oauth::access_token::{self, Subject};
use crate::oidc::id_token::{self, IdTokenInput};
use crate::state::AppState;

pub async fn grant(
    state: &AppState,
    client: &Client,
    presented: &str,
    requested_scope: Option<ScopeSet>,
) -> Result<TokenResponse, AppError> {
    let now = state.clock.now();
    let invalid = |d: &'static str| AppError::from(OAuthError::invalid_grant(d));
    let old_hash = crypto::hash_secret(presented);
    let token = state
        .store
        .refresh_token(&old_hash)
        .await?
        .ok_or_else(|| invalid("the refresh token is invalid"))?;
    let grant = state
        .store
        .grant(&token.grant_id)
        .await?
        .filter(|g| g.client_id == client.client_id)
        .ok_or_else(|| invalid("the refresh token is invalid"))?;
    if !grant.is_live(now) {
        return Err(invalid("the refresh token was revoked or has expired"));
    }
    // RFC 6749 §6: a refresh may narrow the scope, never widen it. Checked
    // before rotating so that a bad request does not use the token up.
    let granted = &grant.scope;
    if let Some(requested) = &requested_scope
        && let Some(extra) = requested.missing_from(granted).next()
    {
        return Err(OAuthError::invalid_scope(format!(
            "scope {extra:?} was not granted originally"
        ))
        .into());
    }
    let (new_token, new_record) = new_refresh_token(state, &grant);
    match state
        .store
        .rotate_refresh_token(
            &old_hash,
            &new_record,
            now,
            state.config.tokens.refresh_grace_secs,
        )
        .await?
    {
        RefreshRotation::Rotated => {}
        RefreshRotation::Reused => {
            tracing::warn!(client_id = %client.client_id, "refresh token reused; grant revoked");
            return Err(invalid(
                "the refresh token was already used; the grant is revoked",
            ));
        }
        RefreshRotation::Invalid => return Err(invalid("the refresh token is invalid")),
    }
    let mut response = respond(state, client, &grant, requested_scope, None, false).await?;
    response.refresh_token = Some(new_token);
    Ok(response)
}

fn new_refresh_token(state: &AppState, grant: &Grant) -> (String, RefreshToken) {
    let now = state.clock.now();
    let token = crypto::random_token();
    let record = RefreshToken {
        token_hash: crypto::hash_secret(&token),
        grant_id: grant.grant_id.clone(),
        created_at: now,
        expires_at: (now + state.config.tokens.refresh_token_idle_ttl_secs).min(grant.expires_at),
        rotated_at: None,
    };
    (token, record)
}

/// The token response for a user's grant: an access token, an ID token
/// when `openid` is in scope, and (on first issue) a refresh token when
/// `offline_access` was granted to a client registered for refresh.
pub async fn respond(
    state: &AppState,
    client: &Client,
    grant: &Grant,
    narrowed: Option<ScopeSet>,
    nonce: Option<&str>,
    first_issue: bool,
) -> Result<TokenResponse, AppError> {
    let user = state
        .store
        .user(&grant.sub)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let scope = narrowed.unwrap_or_else(|| grant.scope.clone());
    let issued = access_token::issue(
        state,
        client,
        Subject {
            sub: &grant.sub,
            auth_time: Some(grant.auth_time),
            grant_id: Some(&grant.grant_id),
        },
        &scope,
    )?;
    let id_token = if scope.contains("openid") {
        Some(id_token::issue(
            state,
            IdTokenInput {
                client,
                user: &user,
                grant,
                nonce,
                access_token: &issued.token,
                scope: &scope,
            },
        )?)
    } else {
        None
    };
    let refresh_token = if first_issue
        && client.allows_grant(GRANT_REFRESH_TOKEN)
        && grant.scope.contains("offline_access")
    {
        let (token, record) = new_refresh_token(state, grant);
        state.store.insert_refresh_token(&record).await?;
        Some(token)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.claims.exp - issued.claims.iat,
        scope: issued.claims.scope,
        refresh_token,
        id_token,
    })
}
