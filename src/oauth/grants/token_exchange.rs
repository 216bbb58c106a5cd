//! Token exchange (RFC 8693) of an API key for a short-lived JWT access
//! token (issue 12.4): `subject_token` is the key and `subject_token_type`
//! is [`API_KEY_TOKEN_TYPE`]. The key is the credential, so such a request
//! needs no client authentication (client credentials presented beside it
//! are still checked). Other subject token types are not exchanged yet.
//!
//! The token's `sub` is the key's owner (the client id, or the person's
//! `sub`; the key id for a key nobody owns), its `client_id` the owning
//! client or else the key id, and it carries `api_key_id`, so that revoking
//! the key ends it (`access_token::validate`). Each exchange counts as a
//! use of the key against its rate limit. `resource` (RFC 8707) narrows
//! the audience, scopes, lifetime and algorithm as for every grant.

use super::{Grant, GrantContext, TokenResponse};
use crate::domain::scope::ScopeSet;
use crate::domain::{ApiKey, ApiKeyOwner, Client};
use crate::error::{AppError, ErrorCode, OAuthError};
use crate::oauth::access_token::{ACCESS_TOKEN_TYP, AccessTokenClaims};
use crate::oauth::request::FormParams;
use crate::oauth::resource::{self, TokenTarget};
use crate::service::api_keys::{self, VerifyCode};
use crate::service::audit::Actor;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Tessera's token type URI for an API key as the subject token.
pub const API_KEY_TOKEN_TYPE: &str = "urn:tessera:params:oauth:token-type:api-key";
/// RFC 8693 §3: what is issued.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub struct TokenExchangeGrant;

pub struct TokenExchangeRequest {
    subject_token: String,
    subject_token_type: String,
    scope: Option<ScopeSet>,
    /// RFC 8707 §2 (RFC 8693 §2.1 names it too): the APIs the token is for.
    resources: Vec<String>,
}

impl Grant for TokenExchangeGrant {
    const GRANT_TYPE: &'static str = GRANT_TYPE;
    type Request = TokenExchangeRequest;

    fn parse(params: &FormParams) -> Result<Self::Request, OAuthError> {
        // RFC 8693 §2.1: both are REQUIRED.
        let subject_token = params.require("subject_token")?.to_string();
        let subject_token_type = params.require("subject_token_type")?.to_string();
        if let Some(requested) = params.get("requested_token_type")
            && requested != ACCESS_TOKEN_TYPE
        {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type {requested:?} cannot be issued; only {ACCESS_TOKEN_TYPE}"
            )));
        }
        if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
            // RFC 8693 §2.1: delegation needs an actor token; not offered.
            return Err(OAuthError::invalid_request(
                "actor_token is not supported by this server",
            ));
        }
        if params.get("audience").is_some() {
            // RFC 8693 §2.1 `audience` names services by logical name;
            // Tessera's are registered resources, named by `resource`.
            return Err(resource::invalid_target(
                "audience is not supported here; name the API with resource (RFC 8707)",
            ));
        }
        Ok(TokenExchangeRequest {
            subject_token,
            subject_token_type,
            scope: params.scope()?,
            resources: resource::requested(params)?,
        })
    }

    fn authenticates_itself(params: &FormParams) -> bool {
        params.get("subject_token_type") == Some(API_KEY_TOKEN_TYPE)
    }

    async fn handle(
        ctx: &GrantContext<'_>,
        _client: &Client,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        // An authenticated client may send an API key too; the key still
        // decides what the token is.
        Self::handle_self_authenticated(ctx, request).await
    }

    async fn handle_self_authenticated(
        ctx: &GrantContext<'_>,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        if request.subject_token_type != API_KEY_TOKEN_TYPE {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type {:?} is not exchanged here; use {API_KEY_TOKEN_TYPE}",
                request.subject_token_type
            ))
            .into());
        }
        let now = ctx.tokens.now();
        let refused = |code: VerifyCode| {
            // RFC 6749 §5.2: the grant (here the key) is invalid, expired
            // or revoked. RFC 8693 §2.2.2 would say invalid_request; issue
            // 12 chose invalid_grant, which clients treat as "get a new
            // credential".
            AppError::from(OAuthError::new(
                ErrorCode::InvalidGrant,
                format!("the API key cannot be used ({})", code.as_str()),
            ))
        };
        // The key first, read only: a caller without a usable key learns
        // nothing else (not which resources exist), and nothing is counted
        // until the whole request has been checked.
        let key = match api_keys::lookup(ctx.api_keys, now, &request.subject_token).await? {
            Ok(key) => key,
            Err((code, key)) => {
                let verification = api_keys::Verification {
                    code,
                    key,
                    remaining: None,
                };
                api_keys::record_answer(ctx.audit, &Actor::Anonymous, now, &verification).await;
                return Err(refused(code));
            }
        };
        let asked = request.scope.is_some();
        let scope = match request.scope {
            None => key.scopes.clone(),
            Some(requested) => {
                if let Some(extra) = requested.missing_from(&key.scopes).next() {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope {extra:?} is not one of the API key's scopes"
                    ))
                    .into());
                }
                requested
            }
        };
        // RFC 8707 §2: the token is for the requested resources only, with
        // only the scopes they define, as for every grant. A key holding
        // none of them gets no token for them: `aud` alone must never be
        // a permission the key was not given.
        let resources = resource::resolve(ctx.resources, &request.resources).await?;
        let target = TokenTarget::of(&resources)?;
        let scope = resource::narrow_scope(&scope, &resources, asked)?;
        if !resources.is_empty() && scope.is_empty() {
            return Err(OAuthError::invalid_scope(
                "the API key holds no scope the requested resources define",
            )
            .into());
        }
        let verification = api_keys::use_key(ctx.api_keys, now, key, &[]).await?;
        api_keys::record_answer(ctx.audit, &Actor::Anonymous, now, &verification).await;
        let key = match (verification.code, verification.key) {
            (VerifyCode::Valid, Some(key)) => key,
            (code, _) => return Err(refused(code)),
        };
        issue(ctx, &key, &scope, &target)
    }
}

fn issue(
    ctx: &GrantContext<'_>,
    key: &ApiKey,
    scope: &ScopeSet,
    target: &TokenTarget,
) -> Result<TokenResponse, AppError> {
    let tokens = &ctx.tokens;
    let now = tokens.now();
    let (sub, client_id) = match &key.owner {
        ApiKeyOwner::Client(client_id) => (client_id.clone(), client_id.clone()),
        ApiKeyOwner::User(sub) => (sub.clone(), key.id.clone()),
        ApiKeyOwner::Unowned => (key.id.clone(), key.id.clone()),
    };
    // A resource may shorten the lifetime, never lengthen it.
    let ttl_default = tokens.settings.api_key_exchange_ttl_secs;
    let ttl = target.ttl_or(ttl_default, ttl_default);
    // Never past the key's own expiry: a token must not outlive its key.
    let exp = key
        .expires_at
        .map_or(now + ttl, |expires_at| (now + ttl).min(expires_at));
    let claims = AccessTokenClaims {
        iss: tokens.issuer.to_string(),
        sub,
        aud: target.audience_or(tokens.audience()),
        exp,
        iat: now,
        jti: crate::crypto::random_token(),
        client_id,
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: None,
        grant_id: None,
        api_key_id: Some(key.id.clone()),
    };
    let alg = target
        .alg
        .unwrap_or(tokens.settings.default_access_token_alg);
    let token = tokens.keys.sign(alg, ACCESS_TOKEN_TYP, &claims)?;
    Ok(TokenResponse {
        access_token: token,
        // RFC 8693 §2.2.1: REQUIRED in a token exchange response.
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        token_type: "Bearer",
        expires_in: claims.exp - claims.iat,
        scope: claims.scope,
        refresh_token: None,
        id_token: None,
    })
}
