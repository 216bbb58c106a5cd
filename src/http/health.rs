//! Probes for orchestrators and load balancers. `/healthz` answers while
//! the process serves (liveness); `/readyz` answers 200 only while the
//! database answers and the signing keys are loaded and readable
//! (readiness), else 503 with a short reason. Neither is ever cached.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";

pub async fn healthz() -> Response {
    probe(StatusCode::OK, serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.readiness().await {
        Ok(()) => probe(StatusCode::OK, serde_json::json!({ "status": "ready" })),
        Err(reason) => probe(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "not_ready", "reason": reason.to_string() }),
        ),
    }
}

fn probe(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
