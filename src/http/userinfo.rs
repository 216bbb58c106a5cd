//! GET and POST /userinfo (OIDC Core §5.3), a bearer-protected resource
//! (RFC 6750: token in the Authorization header or the form body).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::form::no_store_json;
use crate::oauth::request::FormParams;
use crate::oidc::userinfo::{self, BearerError};
use crate::state::AppState;

fn challenge(status: StatusCode, value: String) -> Response {
    let mut response = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn bearer_error(e: BearerError) -> Response {
    match e {
        // RFC 6750 §3.1: no error code when no credentials were sent.
        BearerError::Missing => challenge(StatusCode::UNAUTHORIZED, "Bearer".into()),
        BearerError::InvalidToken(d) => challenge(
            StatusCode::UNAUTHORIZED,
            format!("Bearer error=\"invalid_token\", error_description=\"{d}\""),
        ),
        BearerError::InsufficientScope(d) => challenge(
            StatusCode::FORBIDDEN,
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"openid\", error_description=\"{d}\""
            ),
        ),
    }
}

fn invalid_request(d: &str) -> Response {
    challenge(
        StatusCode::BAD_REQUEST,
        format!("Bearer error=\"invalid_request\", error_description=\"{d}\""),
    )
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    handle(&state, &headers, None).await
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        match FormParams::parse(&body) {
            Ok(p) => p.get("access_token").map(str::to_string),
            Err(_) => return invalid_request("malformed form body"),
        }
    } else {
        None
    };
    handle(&state, &headers, form).await
}

async fn handle(state: &AppState, headers: &HeaderMap, form_token: Option<String>) -> Response {
    let header_token = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match v.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Some(t.trim().to_string())
            }
            // RFC 6750 §3.1: an unsupported scheme gets a bare challenge.
            _ => return bearer_error(BearerError::Missing),
        },
        Some(Err(_)) => return invalid_request("malformed Authorization header"),
    };
    // RFC 6750 §2: a client MUST NOT use more than one method.
    let token = match (header_token, form_token) {
        (Some(_), Some(_)) => return invalid_request("send the token in one place only"),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return bearer_error(BearerError::Missing),
    };
    let found = userinfo::userinfo(
        &state.tokens(),
        &state.revocation_check(),
        &*state.store,
        &token,
    )
    .await;
    match found {
        Ok(Ok(claims)) => no_store_json(claims),
        Ok(Err(e)) => bearer_error(e),
        Err(e) => e.into_response(),
    }
}
