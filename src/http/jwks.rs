//! GET /jwks: the published keys, cacheable, with a strong ETag.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn jwks(State(state): State<AppState>, request_headers: HeaderMap) -> Response {
    let keys = state.keys();
    let jwks = keys.jwks();
    let cache_control = format!("public, max-age={}", state.config.keys.jwks_max_age_secs);
    let not_modified = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == jwks.etag
        });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            jwks.body.clone(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&jwks.etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache_control) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    response
}
