//! `/admin/api/v1/apikeys`: list, create, show, revoke and rotate API
//! keys, as `tessera apikey …` does. A key itself appears only in the
//! answer that made it (creation, rotation).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ApiError, ApiJson, ApiResult, Caller, PREFIX, PageParams, ok, query};
use crate::service::api_keys::{self, NewApiKey};
use crate::state::AppState;

/// The body of a creation: the CLI's flags as JSON members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// Space-separated, like `--scope`.
    scope: String,
    owner: Option<String>,
    prefix: Option<String>,
    expires_in: Option<i64>,
    /// `COUNT/SECS`.
    rate_limit: Option<String>,
    meta: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    overlap_secs: i64,
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let request = query::<PageParams>(raw.as_deref())?.request()?;
    let page = api_keys::page(&*state.store, &request).await?;
    Ok(ok(page.map(|k| api_keys::view(&k))))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    let body: CreateBody = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid_request(format!("the API key is invalid: {e}")))?;
    let new = NewApiKey {
        name: body.name,
        scope: body.scope,
        owner: body.owner,
        prefix: body.prefix,
        expires_in_secs: body.expires_in,
        rate_limit: body.rate_limit,
        meta: body.meta.map(|m| Value::Object(m).to_string()),
    };
    let store = &*state.store;
    let created = api_keys::create(
        store,
        store,
        store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        new,
    )
    .await?;
    let mut response = (StatusCode::CREATED, axum::Json(created.to_json())).into_response();
    let location = format!("{PREFIX}/apikeys/{}", created.record.id);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let key = api_keys::show(&*state.store, &id).await?;
    Ok(ok(api_keys::view(&key)))
}

/// Revokes the key at once, on every instance; answers it as it is now.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let key = api_keys::revoke(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &id,
    )
    .await?;
    Ok(ok(api_keys::view(&key)))
}

/// A new key with the same settings (shown once); the old one works for
/// `overlap_secs` (default 0), then expires. The body may be omitted.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body: RotateBody = if body.is_empty() {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid_request(format!("the rotation is invalid: {e}")))?
    };
    let created = api_keys::rotate(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &id,
        body.overlap_secs,
    )
    .await?;
    Ok(ok(created.to_json()))
}
