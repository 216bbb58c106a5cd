//! POST /introspect (RFC 7662 §2).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;

use super::form::{OAuthForm, no_store_json};
use super::origin::Origin;
use crate::error::{AppError, OAuthError};
use crate::oauth::introspect::Introspector;
use crate::oauth::{client_auth, introspect, resource};
use crate::service::audit::OriginAuditSink;
use crate::state::AppState;

pub async fn introspect(
    State(state): State<AppState>,
    Origin(origin): Origin,
    headers: HeaderMap,
    form: OAuthForm,
) -> Response {
    let audit = OriginAuditSink {
        inner: &state.audit,
        origin: &origin,
    };
    let result = async {
        let tokens = state.tokens();
        let revoked = state.revocation_check();
        // RFC 7662 §2.1: the caller must be authorized: a registered
        // resource server with its own credentials (HTTP Basic, its
        // identifier as the user name), or a confidential client.
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Some(resource) = resource::authenticate(&state.resources, authorization).await? {
            let token = form.params.require("token")?;
            return Ok(no_store_json(
                introspect::introspect(
                    &tokens,
                    &revoked,
                    &audit,
                    Introspector::Resource(&resource),
                    token,
                )
                .await?,
            ));
        }
        let client = client_auth::authenticate(
            &state.client_auth(&state.endpoints.introspection),
            form.credentials.clone(),
        )
        .await?;
        if client.is_public() {
            return Err(AppError::from(OAuthError::invalid_client(
                "introspection requires a confidential client",
            )));
        }
        let token = form.params.require("token")?;
        Ok(no_store_json(
            introspect::introspect(
                &tokens,
                &revoked,
                &audit,
                Introspector::Client(&client),
                token,
            )
            .await?,
        ))
    }
    .await;
    form.answer(result)
}
