//! POST /revoke (RFC 7009 §2).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::form::OAuthForm;
use crate::error::AppError;
use crate::oauth::{client_auth, revoke};
use crate::state::AppState;

pub async fn revoke(State(state): State<AppState>, form: OAuthForm) -> Response {
    let result = async {
        let client = client_auth::authenticate(&state.clients, form.credentials.clone()).await?;
        let token = form.params.require("token")?;
        revoke::revoke(
            &state.tokens(),
            &*state.store,
            &*state.store,
            &client,
            token,
        )
        .await?;
        // RFC 7009 §2.2: 200 whether or not the token was valid.
        Ok::<_, AppError>(StatusCode::OK.into_response())
    }
    .await;
    form.answer(result)
}
