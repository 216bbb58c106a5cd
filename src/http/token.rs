//! POST /token (RFC 6749 §3.2).

use axum::extract::State;
use axum::response::Response;

use super::form::{OAuthForm, no_store_json};
use crate::error::AppError;
use crate::oauth::token;
use crate::state::AppState;

pub async fn token(State(state): State<AppState>, form: OAuthForm) -> Result<Response, AppError> {
    let response = token::exchange(
        &state.grant_context(),
        &state.clients,
        form.credentials,
        &form.params,
    )
    .await?;
    Ok(no_store_json(response))
}
