//! POST /introspect (RFC 7662 §2).

use axum::extract::State;
use axum::response::Response;

use super::form::{OAuthForm, no_store_json};
use crate::error::{AppError, OAuthError};
use crate::oauth::{client_auth, introspect};
use crate::state::AppState;

pub async fn introspect(State(state): State<AppState>, form: OAuthForm) -> Response {
    let result = async {
        // RFC 7662 §2.1: the caller must be authorized; we require a
        // confidential client's credentials.
        let client = client_auth::authenticate(&state.clients, form.credentials.clone()).await?;
        if client.is_public() {
            return Err(AppError::from(OAuthError::invalid_client(
                "introspection requires a confidential client",
            )));
        }
        let token = form.params.require("token")?;
        Ok(no_store_json(
            introspect::introspect(&state.tokens(), &state.revocation_check(), &client, token)
                .await?,
        ))
    }
    .await;
    form.answer(result)
}
