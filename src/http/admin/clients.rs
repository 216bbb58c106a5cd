//! `/admin/api/v1/clients`: list, register, show, replace, delete, and
//! rotate a client's secret. Clients are shown as the RFC 7591 §3.2.1
//! client information response; a secret appears only in the answer that
//! made it (registration, a replacement that made the client confidential,
//! a rotation).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiJson, ApiResult, Caller, PREFIX, PageParams, no_content, ok, query};
use crate::jose::SigningAlg;
use crate::oauth::client::ClientRegistration;
use crate::service::clients;
use crate::state::AppState;

/// A client's metadata as JSON (RFC 7591 §2 names, plus `skip_consent`).
/// Unknown members are ignored (RFC 7591 §2), so a client as `GET` shows
/// it can be edited and `PUT` back.
#[derive(Debug, Deserialize)]
pub struct ClientBody {
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    response_types: Vec<String>,
    scope: Option<String>,
    token_endpoint_auth_method: Option<String>,
    id_token_signed_response_alg: Option<String>,
    access_token_signed_response_alg: Option<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    skip_consent: bool,
}

impl ClientBody {
    /// The registration the metadata rules (`oauth::client::register`)
    /// check; a malformed algorithm is refused here, naming its field.
    fn registration(self) -> Result<ClientRegistration, super::ApiError> {
        let alg = |field: &str, value: Option<String>| {
            value
                .map(|v| {
                    v.parse::<SigningAlg>()
                        .map_err(|e| super::ApiError::invalid_request(format!("{field}: {e}")))
                })
                .transpose()
        };
        let public = self.token_endpoint_auth_method.as_deref() == Some("none");
        Ok(ClientRegistration {
            client_name: self.client_name.unwrap_or_default(),
            redirect_uris: self.redirect_uris,
            grant_types: self.grant_types,
            response_types: self.response_types,
            scope: self.scope,
            public,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            id_token_signed_response_alg: alg(
                "id_token_signed_response_alg",
                self.id_token_signed_response_alg,
            )?,
            access_token_signed_response_alg: alg(
                "access_token_signed_response_alg",
                self.access_token_signed_response_alg,
            )?,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            skip_consent: self.skip_consent,
        })
    }
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let request = query::<PageParams>(raw.as_deref())?.request()?;
    let page = clients::page(&*state.store, &request).await?;
    Ok(ok(page.map(|c| c.information_response(None))))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ClientBody>,
) -> ApiResult {
    let registration = body.registration()?;
    let registered = clients::register(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        registration,
    )
    .await?;
    let mut response = (
        StatusCode::CREATED,
        axum::Json(registered.information_response()),
    )
        .into_response();
    let location = format!("{PREFIX}/clients/{}", registered.client.client_id);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn show(State(state): State<AppState>, Path(client_id): Path<String>) -> ApiResult {
    let client = clients::show(&*state.store, &client_id).await?;
    Ok(ok(client.information_response(None)))
}

/// Full replacement of the metadata (like RFC 7592 §2.2): what the body
/// leaves out takes its default.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<ClientBody>,
) -> ApiResult {
    let registration = body.registration()?;
    let updated = clients::update(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &client_id,
        registration,
    )
    .await?;
    // This instance sees the change at once; others at their next poll of
    // the change counters.
    state.clients.invalidate();
    Ok(ok(updated.information_response()))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> Result<Response, super::ApiError> {
    clients::delete(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &client_id,
    )
    .await?;
    state.clients.invalidate();
    Ok(no_content())
}

/// A new secret, shown once in the answer; the old one stops working.
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> ApiResult {
    let rotated = clients::rotate_secret(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &client_id,
    )
    .await?;
    state.clients.invalidate();
    Ok(ok(serde_json::json!({
        "client_id": rotated.client.client_id,
        "client_secret": rotated.secret,
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        "client_secret_expires_at": 0,
    })))
}
