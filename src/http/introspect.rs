//! POST /introspect (RFC 7662 §2).

use axum::extract::State;
use axum::response::Response;

use super::form::{OAuthForm, no_store_json};
use super::origin::Origin;
use crate::error::{AppError, OAuthError};
use crate::oauth::{client_auth, introspect};
use crate::service::audit::OriginAuditSink;
use crate::state::AppState;

pub async fn introspect(
    State(state): State<AppState>,
    Origin(origin): Origin,
    form: OAuthForm,
) -> Response {
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
        let audit = OriginAuditSink {
            inner: &state.audit,
            origin: &origin,
        };
        let tokens = state.tokens();
        let revoked = state.revocation_check();
        Ok(no_store_json(
            introspect::introspect(&tokens, &revoked, &audit, &client, token).await?,
        ))
    }
    .await;
    form.answer(result)
}
