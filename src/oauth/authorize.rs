//! The authorization endpoint's logic (RFC 6749 §4.1.1, OIDC Core §3.1.2):
//! validate the request once, then decide Login | Consent | Redirect. A
//! request that needs the person is kept as an interaction
//! (`oauth::interaction`) while they sign in and answer the consent page.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::client_cache::ClientCache;
use super::device::{self, DeviceAnswer, DeviceRequest};
use super::grants::authorization_code;
use super::pkce;
use super::redirect;
use super::request::FormParams;
use super::resource;
use super::resource_cache::ResourceCache;
use super::response::{AuthorizationResponse, RedirectTarget, ResponseMode, ResponseType};
use super::tokens::Tokens;
use crate::auth::session::LoginSession;
use crate::crypto;
use crate::domain::scope::ScopeSet;
use crate::domain::{AuthorizationCode, Client, Grant};
use crate::error::{AppError, ErrorCode, OAuthError};
use crate::oidc::id_token::{self, IdTokenInput};
use crate::oidc::logout::IdTokenHint;
use crate::store::{
    ConsentStore, DeviceCodeStore, GrantStore, PushedRequestStore, StoreError, UserStore,
};

/// What the authorization endpoint works with.
pub struct AuthorizeContext<'a> {
    pub tokens: Tokens<'a>,
    pub clients: &'a ClientCache,
    pub consents: &'a dyn ConsentStore,
    pub grants: &'a dyn GrantStore,
    /// Where the person's answer to a device's request goes (RFC 8628).
    pub device_codes: &'a dyn DeviceCodeStore,
    /// For the claims of an ID token answered at once (`response_type=id_token`).
    pub users: &'a dyn UserStore,
    /// The registered resources a request may name (RFC 8707).
    pub resources: &'a ResourceCache,
    /// Pushed authorization requests (RFC 9126), stored by `/par`.
    pub pushed: &'a dyn PushedRequestStore,
    /// `par.required`: every client must push its requests (RFC 9126 §5).
    pub require_pushed_requests: bool,
}

/// Where the authorization parameters came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSource {
    /// The browser's query or form at `/authorize`.
    FrontChannel,
    /// A client's authenticated POST to `/par` (RFC 9126), validated there
    /// and again when the browser brings the `request_uri`.
    Pushed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated authorization request, as an interaction stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub response_type: ResponseType,
    pub target: RedirectTarget,
    /// Whether `redirect_uri` was in the request (then the token request
    /// must repeat it).
    pub redirect_uri_sent: bool,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint`: only that user may be the
    /// answer (OIDC Core §3.1.2.1).
    pub hint_sub: Option<String>,
    /// RFC 8707 §2.1: the registered resources the person is asked to
    /// authorize; stored with the grant, so token requests may name any
    /// of them (§2.2). Absent in interactions stored before resources
    /// existed.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Set when this is a device's request (RFC 8628) that the person
    /// confirms on the `/device` page: then the answer goes to the device
    /// code, and `response_type` and `target` are inert
    /// (`oauth::device::pending_confirmation`). Only that function sets it;
    /// an authorization request never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceRequest>,
}

/// A validated request with its (cached) client.
#[derive(Debug, Clone)]
pub struct Pending {
    pub client: Arc<Client>,
    pub request: AuthorizationRequest,
}

/// Longest `nonce` we store with a code.
const MAX_NONCE_LEN: usize = 512;

pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page and
    /// NEVER redirect (RFC 6749 §4.1.2.1).
    Page(String),
    /// Sent back to the client's redirect URI; the error it carries, for
    /// `/par`, which answers it as JSON instead.
    Redirect(AuthorizationResponse, OAuthError),
    Internal(AppError),
}

impl From<AppError> for AuthorizeError {
    fn from(e: AppError) -> Self {
        AuthorizeError::Internal(e)
    }
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        AuthorizeError::Internal(e.into())
    }
}

/// Validates a request sent by the browser to `/authorize`.
pub async fn parse(
    ctx: &AuthorizeContext<'_>,
    params: &FormParams,
) -> Result<Pending, AuthorizeError> {
    parse_from(ctx, params, RequestSource::FrontChannel).await
}

/// Validates authorization parameters from `source`.
pub async fn parse_from(
    ctx: &AuthorizeContext<'_>,
    params: &FormParams,
    source: RequestSource,
) -> Result<Pending, AuthorizeError> {
    let issuer = ctx.tokens.issuer;
    // 1. client_id and redirect_uri first: until both are trusted, errors
    //    are shown here, not redirected.
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AuthorizeError::Page("The request has no client_id.".into()))?;
    let client =
        ctx.clients.get(client_id).await?.ok_or_else(|| {
            AuthorizeError::Page("The application is not registered here.".into())
        })?;
    let requested_uri = params.get("redirect_uri");
    let redirect_uri = match requested_uri {
        Some(uri) => redirect::match_registered(&client.metadata.redirect_uris, uri)
            .map(|_| uri.to_string())
            .ok_or_else(|| {
                AuthorizeError::Page(
                    "The redirect URI is not registered for this application.".into(),
                )
            })?,
        // RFC 6749 §3.1.2.3: it may be omitted when exactly one is registered.
        None => match client.metadata.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(AuthorizeError::Page(
                    "The request has no redirect_uri.".into(),
                ));
            }
        },
    };
    let mode = match params.get("response_mode") {
        None => Ok(ResponseMode::Query),
        Some(m) => {
            ResponseMode::parse(m).ok_or_else(|| format!("response_mode {m:?} is not supported"))
        }
    };
    let target = RedirectTarget {
        redirect_uri,
        mode: *mode.as_ref().unwrap_or(&ResponseMode::Query),
        state: params.get("state").map(str::to_string),
    };
    let fail = |code: ErrorCode, d: String| {
        let error = OAuthError::new(code, d);
        AuthorizeError::Redirect(target.error(issuer, &error), error)
    };

    // 2. Everything else goes back to the client.
    if let Err(d) = mode {
        return Err(fail(ErrorCode::InvalidRequest, d));
    }
    let response_type = match params.get("response_type").map(ResponseType::parse) {
        Some(Some(t)) => t,
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "response_type is required".into(),
            ));
        }
        Some(None) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                format!(
                    "response_type {:?} is not supported; use code",
                    params.get("response_type").unwrap_or_default()
                ),
            ));
        }
    };
    if !client.allows_response_type(response_type.as_str()) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            format!(
                "this client is not registered for response_type {}",
                response_type.as_str()
            ),
        ));
    }
    if response_type == ResponseType::IdToken && target.mode != ResponseMode::FormPost {
        // The ID token must not travel in a URL, and fragments are not
        // supported: only form_post carries it (OAuth 2.0 Form Post Response Mode).
        return Err(fail(
            ErrorCode::InvalidRequest,
            "response_type=id_token needs response_mode=form_post".into(),
        ));
    }
    if params.get("request").is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported".into(),
        ));
    }
    if params.get("request_uri").is_some() {
        // Only `/par`'s own request URIs are accepted, and those are
        // resolved before this (`par::redeem`); never a URL to fetch
        // (discovery: request_uri_parameter_supported false).
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is accepted only as returned by the pushed authorization request \
             endpoint"
                .into(),
        ));
    }
    if source == RequestSource::FrontChannel
        && (ctx.require_pushed_requests || client.metadata.require_pushed_authorization_requests)
    {
        // RFC 9126 §5: such a client's requests must arrive through /par.
        return Err(fail(
            ErrorCode::InvalidRequest,
            "pushed authorization requests are required: POST the parameters to the \
             pushed_authorization_request_endpoint and send its request_uri"
                .into(),
        ));
    }
    if response_type == ResponseType::Code && !client.allows_grant(authorization_code::GRANT_TYPE) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization code grant".into(),
        ));
    }
    let registered = client.scopes();
    let scope = match params.get("scope") {
        None => registered.clone(),
        Some(s) => ScopeSet::parse(s).map_err(|d| fail(ErrorCode::InvalidScope, d))?,
    };
    if let Some(extra) = scope.missing_from(&registered).next() {
        return Err(fail(
            ErrorCode::InvalidScope,
            format!("scope {extra:?} is not registered for this client"),
        ));
    }
    // RFC 8707 §2.1: each resource must be registered; the consent page
    // and the grant then cover only the scopes they define. Resources that
    // cannot share a token (different algorithms) can still be authorized
    // together: the token endpoint issues one token per resource.
    let resources =
        resource::requested(params).map_err(|e| fail(e.code, e.description.into_owned()))?;
    let scope = match resource::resolve(ctx.resources, &resources).await {
        Ok(found) => resource::narrow_scope(&scope, &found, params.get("scope").is_some())
            .map_err(|e| fail(e.code, e.description.into_owned()))?,
        Err(AppError::OAuth(e)) => return Err(fail(e.code, e.description.into_owned())),
        Err(e) => return Err(e.into()),
    };
    let code_challenge = pkce::validate_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )
    .map_err(|d| fail(ErrorCode::InvalidRequest, d.into()))?;
    if response_type == ResponseType::Code && code_challenge.is_none() && client.is_public() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "PKCE (code_challenge with S256) is required for public clients".into(),
        ));
    }
    let mut prompt = Prompt::default();
    for value in params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => {}
        }
    }
    // OIDC Core §3.1.2.1: `none` with any other value is an error.
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative integer".into(),
            )
        })?),
    };
    let nonce = params.get("nonce").map(str::to_string);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(fail(ErrorCode::InvalidRequest, "nonce is too long".into()));
    }
    if response_type == ResponseType::IdToken {
        // OIDC Core §3.2.2.1: nonce is required when the ID token comes
        // from the authorization endpoint; and it is an OpenID request.
        if nonce.is_none() {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "nonce is required with response_type=id_token".into(),
            ));
        }
        if !scope.contains("openid") {
            return Err(fail(
                ErrorCode::InvalidScope,
                "response_type=id_token needs the openid scope".into(),
            ));
        }
    }
    let hint_sub = match params.get("id_token_hint") {
        None => None,
        // An expired ID token still names the user (OIDC Core §3.1.2.1).
        Some(t) => match ctx
            .tokens
            .keys
            .verify::<IdTokenHint>(t, "JWT", issuer, None)
        {
            Some(hint) => Some(hint.sub),
            None => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "id_token_hint is not a valid ID token from this server".into(),
                ));
            }
        },
    };
    Ok(Pending {
        request: AuthorizationRequest {
            client_id: client.client_id.clone(),
            response_type,
            target,
            redirect_uri_sent: requested_uri.is_some(),
            scope,
            nonce,
            code_challenge,
            prompt,
            max_age,
            login_hint: params.get("login_hint").map(str::to_string),
            hint_sub,
            resources,
            device: None,
        },
        client,
    })
}

pub enum Decision {
    Login,
    Consent(LoginSession),
    /// Signed in and approved: `approve` may answer.
    Approved(LoginSession),
    /// An error for the client (`login_required`, …).
    Redirect(AuthorizationResponse),
}

/// What happens next for a valid request and the browser's login session
/// (`None` when signed out or the account is gone). `signed_in_here` is
/// the `sub` that signed in during this very interaction: that sign-in
/// satisfies `prompt=login` and any `max_age` (with `max_age=0` and a
/// ticking clock the person would otherwise loop through the login form;
/// `auth_time` still tells the client when it was).
pub async fn decide(
    ctx: &AuthorizeContext<'_>,
    pending: &Pending,
    login: Option<LoginSession>,
    signed_in_here: Option<&str>,
) -> Result<Decision, AppError> {
    let req = &pending.request;
    let now = ctx.tokens.now();
    let issuer = ctx.tokens.issuer;
    let interaction = |code: ErrorCode, d: &'static str| {
        Decision::Redirect(req.target.error(issuer, &OAuthError::new(code, d)))
    };
    let just_signed_in = |l: &LoginSession| signed_in_here == Some(l.sub.as_str());
    let fresh_enough = |l: &LoginSession| req.max_age.is_none_or(|m| now - l.auth_time <= m);
    // Someone else than the hinted user is signed in: they must sign in as
    // the hinted user (or, with prompt=none, the client is told so).
    let login = login.filter(|l| req.hint_sub.as_deref().is_none_or(|s| s == l.sub));
    let login = match login {
        Some(l) if just_signed_in(&l) || (!req.prompt.login && fresh_enough(&l)) => l,
        _ if req.prompt.none => {
            return Ok(interaction(
                ErrorCode::LoginRequired,
                "the user must sign in",
            ));
        }
        _ => return Ok(Decision::Login),
    };
    if needs_consent(ctx, pending, &login).await? {
        if req.prompt.none {
            return Ok(interaction(
                ErrorCode::ConsentRequired,
                "the user must approve access",
            ));
        }
        return Ok(Decision::Consent(login));
    }
    Ok(Decision::Approved(login))
}

async fn needs_consent(
    ctx: &AuthorizeContext<'_>,
    pending: &Pending,
    login: &LoginSession,
) -> Result<bool, AppError> {
    // RFC 8628 §5.4: the person always confirms a device's request on the
    // consent page (which shows the user code), whatever was consented
    // before and even for a client that skips consent: a user code may
    // have been sent to them by an attacker.
    if pending.request.device.is_some() {
        return Ok(true);
    }
    if pending.client.metadata.skip_consent {
        return Ok(false);
    }
    if pending.request.prompt.consent {
        return Ok(true);
    }
    // No consent row at all means the person never approved this client,
    // even for an empty scope.
    let Some(granted) = ctx
        .consents
        .consent(&login.sub, &pending.client.client_id)
        .await?
    else {
        return Ok(true);
    };
    Ok(!pending.request.scope.is_subset(&granted))
}

/// Where the answer on the consent page goes.
pub enum ConsentAnswer {
    /// Back to the client's redirect URI.
    Client(AuthorizationResponse),
    /// To the waiting device (RFC 8628): the person is told to return to it.
    Device(DeviceAnswer),
}

/// The person's answer on the consent page. The caller has ended the
/// interaction, so this runs once per consent form.
pub async fn answer_consent(
    ctx: &AuthorizeContext<'_>,
    pending: &Pending,
    login: &LoginSession,
    allow: bool,
) -> Result<ConsentAnswer, AppError> {
    let req = &pending.request;
    if let Some(request) = &req.device {
        let answer =
            device::answer(ctx.device_codes, request, login, allow, ctx.tokens.now()).await?;
        if answer == DeviceAnswer::Approved {
            remember_consent(ctx, pending, login).await?;
        }
        return Ok(ConsentAnswer::Device(answer));
    }
    if !allow {
        return Ok(ConsentAnswer::Client(req.target.error(
            ctx.tokens.issuer,
            &OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
        )));
    }
    remember_consent(ctx, pending, login).await?;
    Ok(ConsentAnswer::Client(approve(ctx, pending, login).await?))
}

/// Adds the request's scopes to what the person consented to for its client.
async fn remember_consent(
    ctx: &AuthorizeContext<'_>,
    pending: &Pending,
    login: &LoginSession,
) -> Result<(), AppError> {
    let req = &pending.request;
    let previous = ctx
        .consents
        .consent(&login.sub, &pending.client.client_id)
        .await?
        .unwrap_or_default();
    let remembered = previous.union(&req.scope);
    ctx.consents
        .save_consent(
            &login.sub,
            &pending.client.client_id,
            &remembered,
            ctx.tokens.now(),
        )
        .await?;
    Ok(())
}

/// The answer to an approved request: a code, or (for
/// `response_type=id_token`) the ID token itself.
pub async fn approve(
    ctx: &AuthorizeContext<'_>,
    pending: &Pending,
    login: &LoginSession,
) -> Result<AuthorizationResponse, AppError> {
    if pending.request.device.is_some() {
        // `decide` always asks the person about a device's request.
        return Err(AppError::internal(
            "a device's request is only approved on the consent page",
        ));
    }
    match pending.request.response_type {
        ResponseType::Code => issue_code(ctx, pending, login).await,
        ResponseType::IdToken => issue_id_token(ctx, pending, login).await,
    }
}

/// OIDC Core §3.2.2.5: the ID token alone, no access token, so no `at_hash`;
/// the scope's claims go into it (§5.4).
async fn issue_id_token(
    ctx: &AuthorizeContext<'_>,
    pending: &Pending,
    login: &LoginSession,
) -> Result<AuthorizationResponse, AppError> {
    let req = &pending.request;
    let user = ctx
        .users
        .user(&login.sub)
        .await?
        .ok_or_else(|| AppError::internal("the signed-in user no longer exists"))?;
    let token = id_token::issue(
        &ctx.tokens,
        IdTokenInput {
            client: &pending.client,
            user: &user,
            auth_time: login.auth_time,
            sid: Some(&login.sid),
            nonce: req.nonce.as_deref(),
            access_token: None,
            scope: &req.scope,
        },
    )?;
    Ok(req
        .target
        .respond(ctx.tokens.issuer, vec![("id_token".into(), token)]))
}

/// Creates the grant and its single-use, 60-second code.
async fn issue_code(
    ctx: &AuthorizeContext<'_>,
    pending: &Pending,
    login: &LoginSession,
) -> Result<AuthorizationResponse, AppError> {
    let req = &pending.request;
    let now = ctx.tokens.now();
    let settings = ctx.tokens.settings;
    let code = crypto::random_token();
    let grant = Grant {
        grant_id: crypto::random_token(),
        client_id: pending.client.client_id.clone(),
        sub: login.sub.clone(),
        scope: req.scope.clone(),
        auth_time: login.auth_time,
        sid: Some(login.sid.clone()),
        created_at: now,
        expires_at: now + settings.refresh_token_absolute_ttl_secs,
        revoked_at: None,
        resources: req.resources.clone(),
    };
    let record = AuthorizationCode {
        code_hash: crypto::hash_secret(&code),
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: if req.redirect_uri_sent {
            req.target.redirect_uri.clone()
        } else {
            String::new()
        },
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        created_at: now,
        expires_at: now + settings.authorization_code_ttl_secs,
    };
    ctx.grants.insert_grant_with_code(&grant, &record).await?;
    Ok(req
        .target
        .respond(ctx.tokens.issuer, vec![("code".into(), code)]))
}
