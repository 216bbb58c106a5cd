//! Token exchange (RFC 8693) at the token endpoint, for two kinds of
//! subject token:
//!
//! - an API key ([`API_KEY_TOKEN_TYPE`], issue 12.4) for a short-lived JWT.
//!   The key is the credential, so such a request needs no client
//!   authentication (client credentials presented beside it are still
//!   checked). The token's `sub` is the key's owner (the client id, or the
//!   person's `sub`; the key id for a key nobody owns), its `client_id` the
//!   owning client or else the key id, and it carries `api_key_id`, so that
//!   revoking the key ends it. Each exchange counts as a use of the key.
//! - an access token Tessera issued ([`ACCESS_TOKEN_TYPE`], issue 11.2): a
//!   service calls another on the subject's behalf. The exchanging client
//!   authenticates and is registered for this grant; the policy
//!   ([`may_exchange`]) is deny by default. The new token keeps `sub`,
//!   `auth_time`, the grant and the API key the subject token hangs on (so
//!   revoking those ends it too), never outlives the subject token, and
//!   with an `actor_token` records the delegation in `act` (§4.1).
//!
//! `resource` and `audience` (RFC 8707, RFC 8693 §2.1: registered
//! resources by identifier) narrow the audience, scopes, lifetime and
//! algorithm as for every grant.

use super::{Grant, GrantContext, TokenResponse};
use crate::domain::scope::ScopeSet;
use crate::domain::{ApiKey, ApiKeyOwner, Client};
use crate::error::{AppError, ErrorCode, OAuthError};
use crate::oauth::access_token::{
    self, ACCESS_TOKEN_TYP, AccessTokenClaims, ActorClaim, Audience, Subject,
};
use crate::oauth::request::FormParams;
use crate::oauth::resource::{self, TokenTarget};
use crate::service::api_keys::{self, VerifyCode};
use crate::service::audit::{Actor, AuditEvent, AuditKind};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Tessera's token type URI for an API key as the subject token.
pub const API_KEY_TOKEN_TYPE: &str = "urn:tessera:params:oauth:token-type:api-key";
/// RFC 8693 §3: an access token, as subject, actor, or what is issued.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The longest delegation chain (`act` nested in `act`) a token may carry:
/// each exchange with an actor adds one, and a chain this deep is a loop
/// between services, not a design.
pub const MAX_ACTOR_DEPTH: usize = 8;

pub struct TokenExchangeGrant;

pub struct TokenExchangeRequest {
    subject_token: String,
    subject_token_type: String,
    /// RFC 8693 §2.1: the acting party's token (delegation), always of
    /// [`ACCESS_TOKEN_TYPE`].
    actor_token: Option<String>,
    scope: Option<ScopeSet>,
    /// RFC 8707 §2 `resource` and RFC 8693 §2.1 `audience`: the APIs the
    /// token is for.
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
        // RFC 8693 §2.1: actor_token_type is REQUIRED with an actor_token
        // and MUST NOT be sent without one.
        let actor_token = match (params.get("actor_token"), params.get("actor_token_type")) {
            (None, None) => None,
            (Some(token), Some(ACCESS_TOKEN_TYPE)) => Some(token.to_string()),
            (Some(_), Some(other)) => {
                return Err(OAuthError::invalid_request(format!(
                    "actor_token_type {other:?} is not accepted; only {ACCESS_TOKEN_TYPE}"
                )));
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type is required with an actor_token",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type must not be sent without an actor_token",
                ));
            }
        };
        Ok(TokenExchangeRequest {
            subject_token,
            subject_token_type,
            actor_token,
            scope: params.scope()?,
            resources: resource::requested_with_audience(params)?,
        })
    }

    fn authenticates_itself(params: &FormParams) -> bool {
        params.get("subject_token_type") == Some(API_KEY_TOKEN_TYPE)
    }

    async fn handle(
        ctx: &GrantContext<'_>,
        client: &Client,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        match request.subject_token_type.as_str() {
            ACCESS_TOKEN_TYPE => exchange_access_token(ctx, client, request).await,
            // An authenticated client may send an API key too; the key
            // still decides what the token is.
            _ => Self::handle_self_authenticated(ctx, request).await,
        }
    }

    async fn handle_self_authenticated(
        ctx: &GrantContext<'_>,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        if request.subject_token_type != API_KEY_TOKEN_TYPE {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type {:?} is not exchanged here; use {ACCESS_TOKEN_TYPE} \
                 or {API_KEY_TOKEN_TYPE}",
                request.subject_token_type
            ))
            .into());
        }
        if request.actor_token.is_some() {
            // An API key stands for its owner alone; delegation is for
            // access tokens, exchanged by an authenticated client.
            return Err(OAuthError::invalid_request(
                "an actor_token cannot be combined with an API key subject token",
            )
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
        let (scope, target) = narrow_to_targets(
            ctx,
            &key.scopes,
            request.scope,
            &request.resources,
            "API key",
        )
        .await?;
        let verification = api_keys::use_key(ctx.api_keys, now, key, &[]).await?;
        api_keys::record_answer(ctx.audit, &Actor::Anonymous, now, &verification).await;
        let key = match (verification.code, verification.key) {
            (VerifyCode::Valid, Some(key)) => key,
            (code, _) => return Err(refused(code)),
        };
        issue_for_key(ctx, &key, &scope, &target)
    }
}

/// The scopes and target of the issued token: the requested scopes (or
/// all of `ceiling` when none were asked for), every one within
/// `ceiling` (`invalid_scope` otherwise), narrowed to what the requested
/// resources define. A token for named resources with no scope left is
/// refused: `aud` alone must never be a permission the subject was not
/// given.
async fn narrow_to_targets(
    ctx: &GrantContext<'_>,
    ceiling: &ScopeSet,
    requested: Option<ScopeSet>,
    identifiers: &[String],
    holder: &str,
) -> Result<(ScopeSet, TokenTarget), AppError> {
    let asked = requested.is_some();
    let scope = match requested {
        None => ceiling.clone(),
        Some(requested) => {
            if let Some(extra) = requested.missing_from(ceiling).next() {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {extra:?} is not one of the {holder}'s scopes"
                ))
                .into());
            }
            requested
        }
    };
    // RFC 8707 §2: the token is for the requested resources only, with
    // only the scopes they define, as for every grant.
    let resources = resource::resolve(ctx.resources, identifiers).await?;
    let target = TokenTarget::of(&resources)?;
    let scope = resource::narrow_scope(&scope, &resources, asked)?;
    if !resources.is_empty() && scope.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "the {holder} holds no scope the requested resources define"
        ))
        .into());
    }
    Ok((scope, target))
}

/// An access token exchanged for another (issue 11.2).
async fn exchange_access_token(
    ctx: &GrantContext<'_>,
    client: &Client,
    request: TokenExchangeRequest,
) -> Result<TokenResponse, AppError> {
    let tokens = &ctx.tokens;
    // RFC 8693 §2.1: the subject token must be valid; here a live access
    // token we signed (unexpired, not revoked, its grant, key and client
    // still there). Anything else is this grant's invalid_grant.
    let subject = access_token::validate(tokens, &ctx.revoked, &request.subject_token)
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_grant("the subject_token is not an active access token")
        })?;
    if !may_exchange(ctx, client, &subject).await? {
        return Err(OAuthError::invalid_grant(
            "this client may not exchange the subject_token: it was issued to another client \
             and is not meant for a resource this client owns",
        )
        .into());
    }
    let act = match &request.actor_token {
        None => subject.act.clone(),
        Some(actor_token) => Some(delegate(ctx, client, &subject, actor_token).await?),
    };
    // The subject's permissions, and no more than this client may hold.
    let registered = client.scopes();
    let ceiling = subject_scopes(&subject)?.filtered(|s| registered.contains(s));
    let (scope, target) = narrow_to_targets(
        ctx,
        &ceiling,
        request.scope,
        &request.resources,
        "subject token",
    )
    .await?;
    let mut claims = access_token::claims_for(
        tokens,
        client,
        Subject {
            sub: &subject.sub,
            auth_time: subject.auth_time,
            grant_id: subject.grant_id.as_deref(),
        },
        &scope,
        &target,
    );
    // RFC 8693 §2.2.1: the new token must not outlive the one it replaces.
    claims.exp = claims.exp.min(subject.exp);
    claims.api_key_id = subject.api_key_id.clone();
    claims.act = act;
    let issued = access_token::sign(tokens, client, &target, claims)?;
    let mut event = AuditEvent::new(
        AuditKind::TokenExchanged,
        &Actor::Client(client.client_id.clone()),
        issued.claims.iat,
    )
    .with_client(&client.client_id)
    .with_subject(&issued.claims.sub)
    .with_detail("subject_client_id", subject.client_id.as_str())
    .with_detail("delegated", request.actor_token.is_some());
    if let Some(actor) = &issued.claims.act {
        event = event.with_detail("actor", actor.sub.as_str());
    }
    if let Some(scope) = &issued.claims.scope {
        event = event.with_detail("scope", scope.as_str());
    }
    if !target.audience.is_empty() {
        event = event.with_detail("resources", target.audience.clone());
    }
    ctx.audit.record(event).await;
    Ok(TokenResponse {
        access_token: issued.token,
        // RFC 8693 §2.2.1: REQUIRED in a token exchange response.
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        token_type: "Bearer",
        expires_in: issued.claims.exp - issued.claims.iat,
        scope: issued.claims.scope,
        refresh_token: None,
        id_token: None,
    })
}

/// The exchange policy, deny by default (issue 11.2). `client` may exchange
/// `subject` when it was issued to `client` itself, when its `aud` names a
/// registered resource `client` owns (an API passing its caller's token on),
/// or when a configured rule (`tokens.exchange_rules`) allows it.
pub async fn may_exchange(
    ctx: &GrantContext<'_>,
    client: &Client,
    subject: &AccessTokenClaims,
) -> Result<bool, AppError> {
    if subject.client_id == client.client_id
        || ctx
            .tokens
            .settings
            .exchange_allowed_by_rule(&client.client_id, &subject.client_id)
    {
        return Ok(true);
    }
    let audience: &[String] = match &subject.aud {
        Audience::One(aud) => std::slice::from_ref(aud),
        Audience::Many(auds) => auds,
    };
    for identifier in audience {
        if let Some(resource) = ctx.resources.get(identifier).await?
            && resource.owner_client_id.as_deref() == Some(client.client_id.as_str())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `act` of a delegated token (RFC 8693 §4.1): the actor token's
/// subject, with the subject token's own chain nested as prior actors. The
/// actor token must be a live access token issued to the exchanging client
/// itself (its own client-credentials token, or one it holds for a
/// person): a client cannot name as actor someone whose token it merely
/// came across.
async fn delegate(
    ctx: &GrantContext<'_>,
    client: &Client,
    subject: &AccessTokenClaims,
    actor_token: &str,
) -> Result<ActorClaim, AppError> {
    let actor = access_token::validate(&ctx.tokens, &ctx.revoked, actor_token)
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_grant("the actor_token is not an active access token")
        })?;
    if actor.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the actor_token must have been issued to the client that exchanges",
        )
        .into());
    }
    let act = ActorClaim {
        sub: actor.sub,
        act: subject.act.clone().map(Box::new),
    };
    if act.depth() > MAX_ACTOR_DEPTH {
        return Err(OAuthError::invalid_grant(format!(
            "the delegation chain would name more than {MAX_ACTOR_DEPTH} actors"
        ))
        .into());
    }
    Ok(act)
}

/// The subject token's scopes; a token we signed with a malformed `scope`
/// is refused rather than read as none.
fn subject_scopes(subject: &AccessTokenClaims) -> Result<ScopeSet, OAuthError> {
    ScopeSet::parse(subject.scope.as_deref().unwrap_or(""))
        .map_err(|_| OAuthError::invalid_grant("the subject_token carries a malformed scope"))
}

fn issue_for_key(
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
        act: None,
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
