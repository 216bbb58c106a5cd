//! GET /.well-known/openid-configuration and
//! /.well-known/oauth-authorization-server.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;

use crate::oidc::discovery;
use crate::state::AppState;

pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    Json(discovery::metadata(&state.config))
}
