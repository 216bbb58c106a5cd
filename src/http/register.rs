//! POST /register: dynamic client registration (RFC 7591), and GET, PUT
//! and DELETE /register/{client_id}: its management with the registration
//! access token (RFC 7592). The routes exist only while registration is
//! enabled (`RegistrationConfig::enabled`); otherwise both paths are
//! unknown, 404 like any other.
//!
//! An update or deletion is seen by this instance at once; other instances
//! drop the client from their cache within `cache.refresh_interval_ms`,
//! when they see the change counter the store bumped in the same
//! transaction.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::error::oauth_error_response;
use super::form::{has_media_type, no_store_json};
use super::origin::Origin;
use crate::config::RegistrationConfig;
use crate::endpoints::path;
use crate::error::{AppError, ErrorCode, OAuthError};
use crate::oauth::client::DynamicRegistrationPolicy;
use crate::oauth::registration::{self, RegistrationError, RegistrationErrorCode};
use crate::service::ServiceError;
use crate::service::audit::OriginAuditSink;
use crate::service::clients::{self, RegistrationFailure};
use crate::state::AppState;
use crate::store::StoreError;

/// The registration routes, or none when registration is off.
pub fn routes(config: &RegistrationConfig) -> Router<AppState> {
    if !config.enabled() {
        return Router::new();
    }
    Router::new()
        .route(path::REGISTRATION, post(register))
        .route(
            path::REGISTRATION_CLIENT,
            get(read).put(update).delete(delete),
        )
}

/// RFC 7591 §3.1: with an initial access token (unless registration is
/// open), a JSON object of client metadata; 201 with the client
/// information response, secrets included, never cached.
async fn register(
    State(state): State<AppState>,
    Origin(origin): Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let presented = bearer_token(&headers);
    if !registration::initial_access_allowed(&state.config.registration, presented) {
        return invalid_token(presented.is_some(), "the initial access token is not valid");
    }
    if let Err(e) = require_json(&headers) {
        return refused(&e);
    }
    let request = match registration::parse_registration(&body) {
        Ok(request) => request,
        Err(e) => return refused(&e),
    };
    let done = clients::register_dynamic(
        &*state.store,
        &*state.clock,
        &OriginAuditSink {
            inner: &state.audit,
            origin: &origin,
        },
        request,
        &policy(&state),
    )
    .await;
    match done {
        Ok(done) => {
            let client = &done.registered.client;
            let uri = state.endpoints.registration_client_uri(&client.client_id);
            let body = registration::information_response(
                client,
                done.registered.secret.as_deref(),
                &done.registration_access_token,
                &uri,
            );
            (StatusCode::CREATED, no_store_json(body)).into_response()
        }
        Err(e) => failure(e),
    }
}

/// RFC 7592 §2.1: the client information response, without the secret
/// (only its hash is kept), with the presented token echoed back.
async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return invalid_token(false, "a registration access token is required");
    };
    match clients::read_registration(&*state.store, &client_id, token).await {
        Ok(client) => no_store_json(registration::information_response(
            &client,
            None,
            token,
            &state.endpoints.registration_client_uri(&client.client_id),
        )),
        Err(e) => failure(e),
    }
}

/// RFC 7592 §2.2: replaces the registration as a whole; the response is
/// the new client information (with a secret only if this update created
/// one).
async fn update(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return invalid_token(false, "a registration access token is required");
    };
    if let Err(e) = require_json(&headers) {
        return refused(&e);
    }
    let request = match registration::parse_update(&body) {
        Ok(request) => request,
        Err(e) => return refused(&e),
    };
    let done = clients::update_registration(
        &*state.store,
        &*state.clock,
        &OriginAuditSink {
            inner: &state.audit,
            origin: &origin,
        },
        &client_id,
        token,
        request,
        &policy(&state),
    )
    .await;
    match done {
        Ok(updated) => {
            state.clients.invalidate();
            no_store_json(registration::information_response(
                &updated.client,
                updated.secret.as_deref(),
                token,
                &state
                    .endpoints
                    .registration_client_uri(&updated.client.client_id),
            ))
        }
        Err(e) => failure(e),
    }
}

/// RFC 7592 §2.3: 204, and the client is unknown from then on.
async fn delete(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return invalid_token(false, "a registration access token is required");
    };
    let done = clients::delete_registration(
        &*state.store,
        &*state.clock,
        &OriginAuditSink {
            inner: &state.audit,
            origin: &origin,
        },
        &client_id,
        token,
    )
    .await;
    match done {
        Ok(()) => {
            state.clients.invalidate();
            let mut response = StatusCode::NO_CONTENT.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => failure(e),
    }
}

fn policy(state: &AppState) -> DynamicRegistrationPolicy {
    DynamicRegistrationPolicy {
        allowed_scopes: state.config.registration.allowed_scopes.clone(),
    }
}

/// RFC 6750 §2.1: `Authorization: Bearer TOKEN` (the scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// RFC 7591 §3.1: the request is `application/json`.
fn require_json(headers: &HeaderMap) -> Result<(), RegistrationError> {
    if has_media_type(headers, "application/json") {
        Ok(())
    } else {
        Err(RegistrationError::new(
            RegistrationErrorCode::InvalidClientMetadata,
            "the request body must be client metadata as application/json".into(),
        ))
    }
}

/// 401 `invalid_token` (RFC 6750 §3.1) with a Bearer challenge; the
/// challenge names the error only when a token was sent.
fn invalid_token(token_sent: bool, description: &'static str) -> Response {
    let mut response = oauth_error_response(&OAuthError::new(ErrorCode::InvalidToken, description));
    let challenge = if token_sent {
        HeaderValue::from_static("Bearer error=\"invalid_token\"")
    } else {
        HeaderValue::from_static("Bearer")
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// 400 with the RFC 7591 §3.2.2 JSON body, never cached.
fn refused(e: &RegistrationError) -> Response {
    let mut response = no_store_json(e.to_json());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

fn failure(e: RegistrationFailure) -> Response {
    match e {
        RegistrationFailure::InvalidToken => invalid_token(
            true,
            "the registration access token is not valid for this client",
        ),
        RegistrationFailure::Refused(e) => refused(&e),
        RegistrationFailure::Store(e) => AppError::Store(e).into_response(),
        RegistrationFailure::Service(e) => match e {
            ServiceError::NotFound(_) => invalid_token(
                true,
                "the registration access token is not valid for this client",
            ),
            ServiceError::Invalid(reason) | ServiceError::Conflict(reason) => refused(
                &RegistrationError::new(RegistrationErrorCode::InvalidClientMetadata, reason),
            ),
            // A database outage stays a 503.
            ServiceError::Internal(source) => match source.downcast::<StoreError>() {
                Ok(e) => AppError::Store(*e).into_response(),
                Err(other) => AppError::internal(other.to_string()).into_response(),
            },
        },
    }
}
