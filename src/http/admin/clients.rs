//! `/admin/api/v1/clients`: list, register, show, replace, delete, and
//! rotate a client's secret. Clients are shown as the RFC 7591 §3.2.1
//! client information response; a secret appears only in the answer that
//! made it (registration, a replacement that made the client confidential,
//! a rotation).

use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, ApiJson, ApiResult, Caller, PREFIX, PageParams, no_content, ok, query};
use crate::oauth::client::ClientRegistration;
use crate::oauth::registration;
use crate::service::clients;
use crate::state::AppState;

/// The members only the admin API accepts, beside the RFC 7591 metadata.
#[derive(Debug, Default, Deserialize)]
struct AdminMembers {
    /// A first-party client: the consent page is never shown.
    #[serde(default)]
    skip_consent: bool,
}

/// A JSON body of client metadata: the RFC 7591 members, read by the same
/// code as `/register` (`oauth::registration`: unknown members ignored, so
/// a client as `GET` shows it can be edited and `PUT` back; a malformed
/// one named), plus `skip_consent`.
pub struct ClientBody(ClientRegistration);

impl<S: Send + Sync> FromRequest<S> for ClientBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let ApiJson(body) = ApiJson::<Value>::from_request(request, state).await?;
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ApiError::invalid_request(format!("the JSON body is invalid: {e}")))?;
        let mut registration = registration::parse_registration(&bytes)
            .map_err(|e| ApiError::invalid_request(e.description))?;
        let admin: AdminMembers = serde_json::from_value(body)
            .map_err(|e| ApiError::invalid_request(format!("skip_consent: {e}")))?;
        registration.skip_consent = admin.skip_consent;
        Ok(Self(registration))
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
    ClientBody(registration): ClientBody,
) -> ApiResult {
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
    ClientBody(registration): ClientBody,
) -> ApiResult {
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
) -> ApiResult {
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
