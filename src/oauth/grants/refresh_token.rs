//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2); refreshes racing within the grace window all get the
//! one successor (`tokens::RefreshSuccessors`). Also the token response
//! shared with the authorization code grant.

use super::{Grant, GrantContext, TokenResponse};
use crate::crypto;
use crate::domain::scope::ScopeSet;
use crate::domain::{Client, Grant as UserGrant, RefreshRotation, RefreshToken};
use crate::error::{AppError, OAuthError};
use crate::oauth::access_token::{self, Subject};
use crate::oauth::request::FormParams;
use crate::oauth::resource::{self, TokenTarget};
use crate::oauth::tokens::Tokens;
use crate::oidc::id_token::{self, IdTokenInput};

pub const GRANT_TYPE: &str = "refresh_token";

/// The `error_description` of the `invalid_grant` that answers a reused
/// refresh token; the token endpoint's handler audits it by this text.
pub const REUSED_DESCRIPTION: &str = "the refresh token was already used; the grant is revoked";

pub struct RefreshTokenGrant;

pub struct RefreshTokenRequest {
    pub refresh_token: String,
    pub scope: Option<ScopeSet>,
    /// RFC 8707 §2.2: the resources the new access token is for.
    pub resources: Vec<String>,
}

impl Grant for RefreshTokenGrant {
    const GRANT_TYPE: &'static str = GRANT_TYPE;
    type Request = RefreshTokenRequest;

    fn parse(params: &FormParams) -> Result<Self::Request, OAuthError> {
        Ok(RefreshTokenRequest {
            refresh_token: params.require("refresh_token")?.to_string(),
            scope: params.scope()?,
            resources: resource::requested(params)?,
        })
    }

    async fn handle(
        ctx: &GrantContext<'_>,
        client: &Client,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        let now = ctx.tokens.now();
        let invalid = |d: &'static str| AppError::from(OAuthError::invalid_grant(d));
        let old_hash = crypto::hash_secret(&request.refresh_token);
        let token = ctx
            .grants
            .refresh_token(&old_hash)
            .await?
            .ok_or_else(|| invalid("the refresh token is invalid"))?;
        let grant = ctx
            .grants
            .grant(&token.grant_id)
            .await?
            .filter(|g| g.client_id == client.client_id)
            .ok_or_else(|| invalid("the refresh token is invalid"))?;
        if !grant.is_live(now) {
            return Err(invalid("the refresh token was revoked or has expired"));
        }
        // RFC 6749 §6: a refresh may narrow the scope, never widen it. Checked
        // before rotating so that a bad request does not use the token up.
        if let Some(requested) = &request.scope
            && let Some(extra) = requested.missing_from(&grant.scope).next()
        {
            return Err(OAuthError::invalid_scope(format!(
                "scope {extra:?} was not granted originally"
            ))
            .into());
        }
        // RFC 8707 §2.2: only resources the grant covers; also checked
        // before rotating.
        let issue = access_for(ctx, &grant, request.scope, request.resources).await?;
        // Derived from the presented token, not random: a racing refresh
        // within the grace window gets this same successor (issue 7.9).
        let new_token = ctx
            .tokens
            .refresh_successors
            .successor_of(&request.refresh_token);
        let new_record = refresh_record(&ctx.tokens, &grant, &new_token);
        match ctx
            .grants
            .rotate_refresh_token(
                &old_hash,
                &new_record,
                now,
                ctx.tokens.settings.refresh_grace_secs,
            )
            .await?
        {
            RefreshRotation::Rotated => {}
            RefreshRotation::Reused => {
                tracing::warn!(client_id = %client.client_id, "refresh token reused; grant revoked");
                metrics::counter!("tessera_refresh_token_reuse_total").increment(1);
                return Err(invalid(REUSED_DESCRIPTION));
            }
            RefreshRotation::Invalid => return Err(invalid("the refresh token is invalid")),
        }
        let mut response = respond(ctx, client, &grant, issue, None, false).await?;
        response.refresh_token = Some(new_token);
        Ok(response)
    }
}

/// The stored form of refresh token `token` of `grant`, issued now.
fn refresh_record(tokens: &Tokens<'_>, grant: &UserGrant, token: &str) -> RefreshToken {
    let now = tokens.now();
    RefreshToken {
        token_hash: crypto::hash_secret(token),
        grant_id: grant.grant_id.clone(),
        created_at: now,
        expires_at: (now + tokens.settings.refresh_token_idle_ttl_secs).min(grant.expires_at),
        rotated_at: None,
    }
}

/// What an access token issued under a grant is for: its scope and its
/// resources.
pub struct AccessFor {
    pub scope: ScopeSet,
    pub target: TokenTarget,
}

/// The scope (`narrowed`, already checked against the grant, or the
/// grant's) and resources of an access token issued under `grant`.
/// RFC 8707 §2.2: the requested resources must all have been authorized
/// (none requested: all of them), so one authorization for two APIs
/// yields a token for each in turn; the scope is narrowed to what they
/// define (`oauth::resource::narrow_scope`).
pub async fn access_for(
    ctx: &GrantContext<'_>,
    grant: &UserGrant,
    narrowed: Option<ScopeSet>,
    requested: Vec<String>,
) -> Result<AccessFor, AppError> {
    let selected = resource::select_authorized(requested, &grant.resources)?;
    let resources = resource::resolve(ctx.resources, &selected).await?;
    let target = TokenTarget::of(&resources)?;
    let asked = narrowed.is_some();
    let scope = narrowed.unwrap_or_else(|| grant.scope.clone());
    let scope = resource::narrow_scope(&scope, &resources, asked)?;
    Ok(AccessFor { scope, target })
}

/// The token response for a user's grant: an access token, an ID token
/// when `openid` is in scope, and (on first issue) a refresh token when
/// `offline_access` was granted to a client registered for refresh.
pub async fn respond(
    ctx: &GrantContext<'_>,
    client: &Client,
    grant: &UserGrant,
    access: AccessFor,
    nonce: Option<&str>,
    first_issue: bool,
) -> Result<TokenResponse, AppError> {
    let user = ctx
        .users
        .user(&grant.sub)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let AccessFor { scope, target } = access;
    let issued = access_token::issue(
        &ctx.tokens,
        client,
        Subject {
            sub: &grant.sub,
            auth_time: Some(grant.auth_time),
            grant_id: Some(&grant.grant_id),
        },
        &scope,
        &target,
    )?;
    let id_token = if scope.contains("openid") {
        Some(id_token::issue(
            &ctx.tokens,
            IdTokenInput {
                client,
                user: &user,
                auth_time: grant.auth_time,
                sid: grant.sid.as_deref(),
                nonce,
                access_token: Some(&issued.token),
                scope: &scope,
            },
        )?)
    } else {
        None
    };
    let refresh_token =
        if first_issue && client.allows_grant(GRANT_TYPE) && grant.scope.contains("offline_access")
        {
            // The first of a family is random; its successors derive from it.
            let token = crypto::random_token();
            ctx.grants
                .insert_refresh_token(&refresh_record(&ctx.tokens, grant, &token))
                .await?;
            Some(token)
        } else {
            None
        };
    Ok(TokenResponse {
        issued_token_type: None,
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.claims.exp - issued.claims.iat,
        scope: issued.claims.scope,
        refresh_token,
        id_token,
    })
}
