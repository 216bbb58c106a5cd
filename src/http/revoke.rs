//! POST /revoke (RFC 7009 §2).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::form::OAuthForm;
use super::origin::Origin;
use crate::error::AppError;
use crate::oauth::{client_auth, revoke};
use crate::service::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use crate::state::AppState;

pub async fn revoke(
    State(state): State<AppState>,
    Origin(origin): Origin,
    form: OAuthForm,
) -> Response {
    let result = async {
        let client = client_auth::authenticate(
            &state.client_auth(&state.endpoints.revocation),
            form.credentials.clone(),
        )
        .await?;
        let token = form.params.require("token")?;
        revoke::revoke(
            &state.tokens(),
            &*state.store,
            &*state.store,
            &client,
            token,
        )
        .await?;
        // The client asked and was allowed; whether the token was one of
        // ours RFC 7009 §2.2 keeps to itself, and so does the log.
        let mut event = AuditEvent::client(
            AuditKind::TokenRevoked,
            &Actor::Client(client.client_id.clone()),
            &client.client_id,
            state.clock.now(),
        )
        .with_origin(&origin);
        if let Some(hint @ ("access_token" | "refresh_token")) = form.params.get("token_type_hint")
        {
            event = event.with_detail("token_type_hint", hint);
        }
        state.audit.record(event).await;
        // RFC 7009 §2.2: 200 whether or not the token was valid.
        Ok::<_, AppError>(StatusCode::OK.into_response())
    }
    .await;
    form.answer(result)
}
