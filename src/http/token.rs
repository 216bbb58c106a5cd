//! POST /token (RFC 6749 §3.2).

use axum::extract::State;
use axum::response::Response;

use super::form::{OAuthForm, no_store_json};
use super::metrics;
use crate::oauth::token;
use crate::state::AppState;

pub async fn token(State(state): State<AppState>, form: OAuthForm) -> Response {
    let result = token::exchange(
        &state.grant_context(),
        &state.clients,
        form.credentials.clone(),
        &form.params,
    )
    .await
    .inspect(|issued| {
        metrics::tokens_issued(
            form.params.get("grant_type").unwrap_or_default(),
            &issued.access_token,
            issued.id_token.as_deref(),
        );
    })
    .map(no_store_json);
    form.answer(result)
}
