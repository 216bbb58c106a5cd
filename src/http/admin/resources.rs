//! `/admin/api/v1/resources`: list, register, show, delete resources
//! (APIs, RFC 8707). The identifier in a path is percent-encoded
//! (`/resources/https%3A%2F%2Fapi.example.com`). A secret appears only in
//! the answer that made it.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiJson, ApiResult, Caller, PREFIX, PageParams, no_content, ok, query};
use crate::jose::SigningAlg;
use crate::service::resources::{self, NewResource};
use crate::state::AppState;

/// The JSON body of a registration; the members are the CLI's options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    identifier: String,
    name: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    access_token_ttl_secs: Option<i64>,
    #[serde(default)]
    signing_alg: Option<SigningAlg>,
    #[serde(default)]
    with_secret: bool,
    #[serde(default)]
    owner_client_id: Option<String>,
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let request = query::<PageParams>(raw.as_deref())?.request()?;
    let page = resources::page(&*state.store, &request).await?;
    Ok(ok(page.map(|r| r.to_json(None))))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ResourceBody>,
) -> ApiResult {
    let added = resources::add(
        &*state.store,
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        NewResource {
            identifier: body.identifier,
            name: body.name,
            scope: body.scope,
            access_token_ttl_secs: body.access_token_ttl_secs,
            signing_alg: body.signing_alg,
            with_secret: body.with_secret,
            owner_client_id: body.owner_client_id,
        },
    )
    .await?;
    // This instance sees it at once; others at their next poll of the
    // change counters.
    state.resources.invalidate();
    let mut response = (StatusCode::CREATED, axum::Json(added.to_json())).into_response();
    let encoded: String =
        url::form_urlencoded::byte_serialize(added.resource.identifier.as_bytes()).collect();
    if let Ok(location) = HeaderValue::from_str(&format!("{PREFIX}/resources/{encoded}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn show(State(state): State<AppState>, Path(identifier): Path<String>) -> ApiResult {
    let resource = resources::show(&*state.store, &identifier).await?;
    Ok(ok(resource.to_json(None)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(identifier): Path<String>,
) -> ApiResult {
    resources::delete(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &identifier,
    )
    .await?;
    state.resources.invalidate();
    Ok(no_content())
}
