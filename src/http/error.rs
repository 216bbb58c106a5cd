//! How errors become HTTP responses: the RFC 6749 §5.2 status for each
//! error code, the JSON body, and the generic body for internal errors.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, ErrorCode, OAuthError};

/// RFC 6749 §5.2: 401 for a failed client authentication, 5xx for our own
/// failures, 400 for everything else (RFC 8628 §3.5's polling answers
/// `authorization_pending`, `slow_down`, `access_denied` and
/// `expired_token` included).
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A JSON error response per RFC 6749 §5.2, never cached.
pub fn oauth_error_response(err: &OAuthError) -> Response {
    let mut response = (status_of(err.code), axum::Json(err.to_json())).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// RFC 6749 §5.2: when the client authenticated through the `Authorization`
/// header, a 401 names the scheme it can use. Without the header there is
/// no challenge (strict clients such as oauth4webapi treat a challenge to a
/// body-authenticated request as a protocol error and hide the
/// `error_description`).
pub fn with_basic_challenge(mut response: Response, used_authorization_header: bool) -> Response {
    if used_authorization_header && response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tessera\""),
        );
    }
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::OAuth(err) => oauth_error_response(&err),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable");
                let mut response = oauth_error_response(&OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "The service is temporarily unavailable; try again shortly.",
                ));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            other => {
                // Runs inside the request's span, so the log line carries its id.
                tracing::error!(error = %other, "internal error");
                oauth_error_response(&OAuthError::new(
                    ErrorCode::ServerError,
                    "The server could not complete the request; the error was logged.",
                ))
            }
        }
    }
}
