//! POST /par (RFC 9126 §2): pushed authorization requests.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::form::{OAuthForm, no_store_json};
use crate::error::AppError;
use crate::oauth::{client_auth, par};
use crate::state::AppState;

pub async fn push(State(state): State<AppState>, form: OAuthForm) -> Response {
    let result = async {
        // RFC 9126 §2: the client authenticates as at the token endpoint
        // (a public client by its client_id).
        let client = client_auth::authenticate(
            &state.client_auth(&state.endpoints.pushed_authorization_request),
            form.credentials.clone(),
        )
        .await?;
        let pushed = par::push(&state.authorize_context(), &client, &form.params).await?;
        // RFC 9126 §2.2: 201 Created, and not to be cached.
        let mut response = no_store_json(pushed);
        *response.status_mut() = StatusCode::CREATED;
        Ok::<_, AppError>(response)
    }
    .await;
    form.answer(result)
}
