//! GET /.well-known/openid-configuration and
//! /.well-known/oauth-authorization-server.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Built once at start-up (`AppState::discovery`): it changes only with
/// the configuration.
pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.discovery.clone())
}
