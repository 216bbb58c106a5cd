//! The admin API under `/admin/api/v1`: JSON over the same services the
//! CLI calls (`crate::service`), one file per resource.
//!
//! Every request carries `Authorization: Bearer` with an access token this
//! server issued (signature, expiry and revocation checked by
//! `oauth::access_token::validate`) whose scope includes `tessera:admin`:
//! a client registered with that scope gets one by client credentials.
//! Without a valid token the answer is 401 with a `WWW-Authenticate: Bearer`
//! challenge (RFC 6750 §3); a valid token without the scope is 403
//! (`insufficient_scope`, RFC 6750 §3.1). Every authenticated call is
//! audited (`admin.call`) with the calling client as actor, and so is each
//! change the services make on its behalf.
//!
//! Errors are JSON `{"error": CODE, "error_description": TEXT}` with a
//! stable code: `invalid_request` (400), `unauthorized` (401), `forbidden`
//! (403), `not_found` (404), `method_not_allowed` (405), `conflict` (409),
//! `unsupported_media_type` (415), `server_error` (500),
//! `temporarily_unavailable` (503). Lists are paginated by cursor:
//! `?limit=&cursor=` answers `{"items": [...], "next_cursor": …}`.

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod keys;
pub mod resources;
pub mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::de::DeserializeOwned;

use super::origin;
use crate::error::AppError;
use crate::oauth::access_token;
use crate::service::ServiceError;
use crate::service::audit::{
    Actor, AuditEvent, AuditKind, AuditSink, OriginAuditSink, RequestOrigin,
};
use crate::service::page::PageRequest;
use crate::state::AppState;
use crate::store::StoreError;

/// Where the admin API is mounted.
pub const PREFIX: &str = "/admin/api/v1";

/// The scope an access token needs to call the admin API.
pub use crate::oauth::client::ADMIN_SCOPE;

/// The admin API's routes, each behind the bearer-token check.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/clients", get(clients::list).post(clients::create))
        .route(
            "/clients/{client_id}",
            get(clients::show)
                .put(clients::update)
                .delete(clients::delete),
        )
        .route("/clients/{client_id}/secret", post(clients::rotate_secret))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{sub}",
            get(users::show).put(users::update).delete(users::delete),
        )
        .route("/users/{sub}/password", put(users::set_password))
        .route("/users/{sub}/sessions", delete(users::end_sessions))
        .route("/users/{sub}/grants", get(users::grants))
        .route(
            "/users/{sub}/grants/{grant_id}",
            delete(users::revoke_grant),
        )
        .route(
            "/users/{sub}/consents",
            get(users::consents).delete(users::revoke_consents),
        )
        .route(
            "/users/{sub}/consents/{client_id}",
            get(users::consent).delete(users::revoke_consent),
        )
        .route("/resources", get(resources::list).post(resources::create))
        .route(
            "/resources/{identifier}",
            get(resources::show).delete(resources::delete),
        )
        .route("/keys", get(keys::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/audit", get(audit::list))
        .route("/apikeys", get(api_keys::list).post(api_keys::create))
        .route("/apikeys/{id}", get(api_keys::show))
        .route("/apikeys/{id}/revoke", post(api_keys::revoke))
        .route("/apikeys/{id}/rotate", post(api_keys::rotate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state, authenticate))
}

/// An admin API error: a status, a stable code and a description.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code,
            "error_description": self.description,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service is temporarily unavailable; try again shortly.",
            );
        }
        // Runs inside the request's span, so the log line carries its id.
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server could not complete the request; the error was logged.",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(reason) => Self::invalid_request(reason),
            ServiceError::NotFound(reason) => Self::new(StatusCode::NOT_FOUND, "not_found", reason),
            ServiceError::Conflict(reason) => Self::new(StatusCode::CONFLICT, "conflict", reason),
            ServiceError::Internal(source) => match source.downcast::<StoreError>() {
                Ok(store) => AppError::Store(*store).into(),
                Err(other) => AppError::internal(other.to_string()).into(),
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        AppError::Store(e).into()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// The caller of an admin API request, as its access token says.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The client the token was issued to: the actor of every change.
    pub actor: Actor,
    pub origin: RequestOrigin,
}

impl Caller {
    /// The audit sink for the services this call uses: the server's, with
    /// each event stamped with this request's address and id.
    pub fn audit<'a>(&'a self, state: &'a AppState) -> OriginAuditSink<'a> {
        OriginAuditSink {
            inner: &state.audit,
            origin: &self.origin,
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        // `authenticate` put it there; without it the route was mounted
        // outside the admin router, which is a server bug.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::from(AppError::internal("admin route without authentication")))
    }
}

/// RFC 6750 §3: the challenge of a 401 or 403, with the error when a token
/// was presented.
fn challenge(mut response: Response, error: Option<&str>) -> Response {
    let value = match error {
        None => "Bearer realm=\"tessera\"".to_string(),
        Some("insufficient_scope") => format!(
            "Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"{ADMIN_SCOPE}\""
        ),
        Some(error) => format!("Bearer realm=\"tessera\", error=\"{error}\""),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The bearer token of `Authorization: Bearer TOKEN` (the scheme is
/// case-insensitive, RFC 7235 §2.1). `None` without the header; `Err` for
/// another scheme or a malformed value.
fn bearer_token(request: &Request) -> Option<Result<&str, ()>> {
    let value = request.headers().get(header::AUTHORIZATION)?;
    let parsed = value.to_str().ok().and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
            .then_some(token)
    });
    Some(parsed.ok_or(()))
}

/// Checks the bearer token, runs the route, audits the call; every answer
/// is `Cache-Control: no-store` (it may carry a secret shown once).
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = authorized(&state, request, next).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn authorized(state: &AppState, request: Request, next: Next) -> Response {
    let unauthorized = |description: &str| {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", description).into_response()
    };
    let token = match bearer_token(&request) {
        None => {
            return challenge(
                unauthorized("an access token with the tessera:admin scope is required"),
                None,
            );
        }
        Some(Err(())) => {
            return challenge(
                unauthorized("the Authorization header must be Bearer and an access token"),
                Some("invalid_request"),
            );
        }
        Some(Ok(token)) => token.to_string(),
    };
    let claims =
        match access_token::validate(&state.tokens(), &state.revocation_check(), &token).await {
            Ok(Some(claims)) => claims,
            Ok(None) => {
                return challenge(
                    unauthorized("the access token is invalid, expired or revoked"),
                    Some("invalid_token"),
                );
            }
            Err(e) => return ApiError::from(e).into_response(),
        };
    let (parts, body) = request.into_parts();
    let caller = Caller {
        actor: Actor::Client(claims.client_id.clone()),
        origin: origin::of(&parts, state),
    };
    let method = parts.method.to_string();
    // The full path: inside the nested router `uri` lacks the prefix.
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |OriginalUri(uri)| uri)
        .path()
        .to_string();
    let has_scope = claims
        .scope
        .as_deref()
        .is_some_and(|scope| scope.split(' ').any(|s| s == ADMIN_SCOPE));
    // Registration refuses the scope to self-registered clients; this
    // holds even for one that got it some other way (an older version).
    let self_registered = match state.store.registration_token_hash(&claims.client_id).await {
        Ok(hash) => hash.is_some(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let response = if has_scope && !self_registered {
        let mut forwarded = Request::from_parts(parts, body);
        forwarded.extensions_mut().insert(caller.clone());
        next.run(forwarded).await
    } else if !has_scope {
        challenge(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("the access token lacks the {ADMIN_SCOPE} scope"),
            )
            .into_response(),
            Some("insufficient_scope"),
        )
    } else {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a client registered over /register cannot use the admin API",
        )
        .into_response()
    };
    let mut event = AuditEvent::new(AuditKind::AdminCall, &caller.actor, state.clock.now())
        .with_client(&claims.client_id)
        .with_detail("method", method)
        .with_detail("path", path)
        .with_detail("status", response.status().as_u16())
        .with_origin(&caller.origin);
    // A token issued for a person (authorization code) names them too.
    if claims.sub != claims.client_id {
        event = event.with_subject(&claims.sub);
    }
    state.audit.record(event).await;
    response
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such admin API resource",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not accept that method",
    )
}

/// A JSON request body; anything else is a JSON error, never axum's
/// plain-text rejection.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !super::form::has_media_type(request.headers(), "application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/json",
            ));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError::new(
                    rejection.status(),
                    "invalid_request",
                    "the request body could not be read",
                )
            })?;
        serde_json::from_slice(&body)
            .map(ApiJson)
            .map_err(|e| ApiError::invalid_request(format!("the JSON body is invalid: {e}")))
    }
}

/// Query parameters, unknown ones refused (a mistyped filter would
/// otherwise silently list everything).
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {e}")))
}

/// `?limit=&cursor=`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn request(self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(self.cursor, self.limit)?)
    }
}

/// `200` with `value` as JSON.
pub fn ok(value: impl serde::Serialize) -> Response {
    axum::Json(value).into_response()
}

/// `204 No Content`.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
