//! POST /token (RFC 6749 §3.2).

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::form::{OAuthForm, no_store_json};
use super::metrics;
use super::origin::Origin;
use crate::error::{AppError, ErrorCode};
use crate::oauth::access_token::AccessTokenClaims;
use crate::oauth::grants::TokenResponse;
use crate::oauth::grants::refresh_token::{self, REUSED_DESCRIPTION};
use crate::oauth::token;
use crate::service::audit::{
    Actor, AuditEvent, AuditKind, AuditSink, OriginAuditSink, RequestOrigin,
};
use crate::state::AppState;

pub async fn token(
    State(state): State<AppState>,
    Origin(origin): Origin,
    form: OAuthForm,
) -> Response {
    let audit_sink = OriginAuditSink {
        inner: &state.audit,
        origin: &origin,
    };
    let mut ctx = state.grant_context();
    ctx.audit = &audit_sink;
    let auth = state.client_auth(&state.endpoints.token);
    let result = token::exchange(&ctx, &auth, form.credentials.clone(), &form.params).await;
    if let Ok(issued) = &result {
        metrics::tokens_issued(
            form.params.get("grant_type").unwrap_or_default(),
            &issued.access_token,
            issued.id_token.as_deref(),
        );
    }
    audit(&state, &origin, &form, &result).await;
    form.answer(result.map(no_store_json))
}

/// Records a token issued (grant type, client, scope, the person it is
/// for and the API key it was exchanged for; never a token) or a reused
/// refresh token.
async fn audit(
    state: &AppState,
    origin: &RequestOrigin,
    form: &OAuthForm,
    result: &Result<TokenResponse, AppError>,
) {
    // A request that got this far authenticated the client it names; an
    // API key exchange may have named none (the key was the credential).
    let authenticated = form.credentials.as_ref().map(|c| c.client_id.as_str());
    let actor = authenticated.map_or(Actor::Anonymous, |id| Actor::Client(id.to_string()));
    let grant_type = form.params.get("grant_type").unwrap_or_default();
    let now = state.clock.now();
    let (event, client_id) = match result {
        Ok(issued) => {
            let Some(claims) = claims_of(&issued.access_token) else {
                return;
            };
            let mut event = AuditEvent::new(AuditKind::TokenIssued, &actor, now)
                .with_detail("grant_type", grant_type)
                .with_detail("refresh_token", issued.refresh_token.is_some())
                .with_detail("id_token", issued.id_token.is_some());
            if let Some(scope) = &issued.scope {
                event = event.with_detail("scope", scope.as_str());
            }
            if let Some(key_id) = &claims.api_key_id {
                event = event.with_detail("api_key_id", key_id.as_str());
            }
            // RFC 8707: which APIs the token is for (identifiers, no secret).
            let resources: Vec<&str> = form.params.all("resource").collect();
            if !resources.is_empty() {
                event = event.with_detail("resources", resources);
            }
            if claims.sub != claims.client_id {
                event = event.with_subject(&claims.sub);
            }
            (event, claims.client_id)
        }
        Err(AppError::OAuth(e))
            if grant_type == refresh_token::GRANT_TYPE
                && e.code == ErrorCode::InvalidGrant
                && e.description == REUSED_DESCRIPTION =>
        {
            let Some(client_id) = authenticated else {
                return;
            };
            (
                AuditEvent::new(AuditKind::RefreshTokenReused, &actor, now),
                client_id.to_string(),
            )
        }
        Err(_) => return,
    };
    state
        .audit
        .record(event.with_client(&client_id).with_origin(origin))
        .await;
}

/// The claims of an access token this request was just issued: its
/// payload is read without checking the signature we just made.
fn claims_of(access_token: &str) -> Option<AccessTokenClaims> {
    let payload = access_token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<AccessTokenClaims>(&json).ok()
}
