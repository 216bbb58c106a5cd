//! Thin axum handlers, one file per endpoint: parse the HTTP shape into a
//! typed request, call `crate::oauth` / `crate::oidc`, render the result.

pub mod discovery;
pub mod form;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod token;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{OAuthError, oauth_error_response};
use crate::state::AppState;

/// Request bodies above this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const JWKS_PATH: &str = "/jwks";
pub const TOKEN_PATH: &str = "/token";
pub const INTROSPECTION_PATH: &str = "/introspect";
pub const REVOCATION_PATH: &str = "/revoke";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(JWKS_PATH, get(jwks::jwks))
        .route(TOKEN_PATH, post(token::token))
        .route(INTROSPECTION_PATH, post(introspect::introspect))
        .route(REVOCATION_PATH, post(revoke::revoke))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // The path only: queries can carry codes and tokens.
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", id, method = %req.method(), path = req.uri().path())
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn not_found() -> impl IntoResponse {
    let mut response = oauth_error_response(&OAuthError::invalid_request("no such endpoint"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
