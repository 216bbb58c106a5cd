//! POST /apikeys/verify (issue 12): a resource server asks whether an API
//! key is good. It authenticates with HTTP Basic, as a registered resource
//! (its identifier and secret, as at `/introspect`) or as a confidential
//! client (`client_secret_basic`, or a `client_secret_post` client's same
//! secret: the body is JSON, so there is nowhere else to put it); without
//! that, 401 like the token endpoint.
//!
//! The answer is always 200 with `valid` and `code`; the key's facts only
//! when it exists. It is never cached.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::with_basic_challenge;
use super::form::{has_media_type, no_store_json};
use super::origin::Origin;
use crate::error::{AppError, OAuthError};
use crate::oauth::client_auth::{self, CredentialSource};
use crate::oauth::request::FormParams;
use crate::oauth::resource;
use crate::service::api_keys;
use crate::service::audit::{Actor, OriginAuditSink};
use crate::state::AppState;

/// More required scopes than any API defines is a malformed request.
const MAX_REQUIRED_SCOPES: usize = 64;

#[derive(Deserialize)]
struct VerifyRequest {
    key: String,
    #[serde(default)]
    scopes: Vec<String>,
}

pub async fn verify(
    State(state): State<AppState>,
    Origin(origin): Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let result = async {
        // A registered resource server with its own credentials, or a
        // confidential client.
        let actor = match resource::authenticate(&state.resources, authorization).await? {
            Some(resource) => Actor::Resource(resource.identifier.clone()),
            None => {
                let presented = client_auth::extract(&CredentialSource {
                    authorization,
                    params: &FormParams::default(),
                })?;
                // The body is JSON: only HTTP Basic credentials reach here, so
                // no assertion names this endpoint as its audience.
                let auth = state.client_auth(&state.endpoints.token);
                let client = client_auth::authenticate(&auth, presented).await?;
                if client.is_public() {
                    return Err(AppError::from(OAuthError::invalid_client(
                        "verifying API keys requires a confidential client",
                    )));
                }
                Actor::Client(client.client_id.clone())
            }
        };
        let request = parse(&headers, &body)?;
        let verification = api_keys::verify(
            &*state.store,
            &*state.clock,
            &OriginAuditSink {
                inner: &state.audit,
                origin: &origin,
            },
            &actor,
            &request.key,
            &request.scopes,
        )
        .await?;
        Ok(no_store_json(verification.to_json()))
    }
    .await;
    match result {
        Ok(response) => response,
        Err(e) => with_basic_challenge(e.into_response(), authorization.is_some()),
    }
}

fn parse(headers: &HeaderMap, body: &[u8]) -> Result<VerifyRequest, OAuthError> {
    if !has_media_type(headers, "application/json") {
        return Err(OAuthError::invalid_request(
            "send a JSON object {\"key\": \"…\"} as application/json",
        ));
    }
    let request: VerifyRequest = serde_json::from_slice(body).map_err(|_| {
        OAuthError::invalid_request(
            "the body must be a JSON object with a string \"key\" and optionally \"scopes\", \
             an array of strings",
        )
    })?;
    if request.key.is_empty() {
        return Err(OAuthError::invalid_request("\"key\" is empty"));
    }
    if request.scopes.len() > MAX_REQUIRED_SCOPES {
        return Err(OAuthError::invalid_request(format!(
            "at most {MAX_REQUIRED_SCOPES} scopes may be required"
        )));
    }
    Ok(request)
}
