//! `/admin/api/v1/users`: list, create, show, update (email and name),
//! delete, set a password, and a user's grants and consents. A user is
//! named by `sub` in every path; nothing shown ever holds a password hash.

use std::fmt;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer};

use super::{ApiJson, ApiResult, Caller, PREFIX, PageParams, no_content, ok, query};
use crate::service::users::{self, NewUser, ProfileUpdate};
use crate::state::AppState;

/// `POST /users`. `Debug` never shows the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    username: String,
    password: String,
    email: Option<String>,
    name: Option<String>,
}

impl fmt::Debug for CreateBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateBody")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A member that may be absent (`None`: unchanged), `null` (`Some(None)`:
/// cleared) or a value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PUT /users/{sub}`: the members given are set (`null` clears one), the
/// others stay. The username and the password are not changed here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
}

/// `PUT /users/{sub}/password`. `Debug` never shows the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: String,
}

impl fmt::Debug for PasswordBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordBody { password: <redacted> }")
    }
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let request = query::<PageParams>(raw.as_deref())?.request()?;
    Ok(ok(users::page(&*state.store, &request).await?))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult {
    let new = NewUser {
        username: body.username,
        password: body.password,
        email: body.email,
        name: body.name,
    };
    let user = users::add(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        new,
    )
    .await?;
    let location = format!("{PREFIX}/users/{}", user.sub);
    let mut response = (StatusCode::CREATED, axum::Json(user)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn show(State(state): State<AppState>, Path(sub): Path<String>) -> ApiResult {
    Ok(ok(users::show(&*state.store, &sub).await?))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(sub): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult {
    let user = users::show(&*state.store, &sub).await?;
    let updated = users::update(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &user,
        ProfileUpdate {
            email: body.email,
            name: body.name,
        },
    )
    .await?;
    Ok(ok(updated))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(sub): Path<String>,
) -> ApiResult {
    let user = users::show(&*state.store, &sub).await?;
    users::delete(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &user,
    )
    .await?;
    // Logout Tokens may have been queued for the user's sessions.
    state.wake_backchannel_worker();
    Ok(no_content())
}

pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(sub): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult {
    let user = users::show(&*state.store, &sub).await?;
    users::set_password(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &user,
        body.password,
    )
    .await?;
    // Logout Tokens may have been queued for the sessions that ended.
    state.wake_backchannel_worker();
    Ok(no_content())
}

pub async fn grants(
    State(state): State<AppState>,
    Path(sub): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let request = query::<PageParams>(raw.as_deref())?.request()?;
    let user = users::show(&*state.store, &sub).await?;
    Ok(ok(users::grants(
        &*state.store,
        &*state.clock,
        &user,
        &request,
    )
    .await?))
}

/// Revokes the grant and every refresh and access token issued under it.
pub async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((sub, grant_id)): Path<(String, String)>,
) -> ApiResult {
    let user = users::show(&*state.store, &sub).await?;
    users::revoke_grant(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &user,
        &grant_id,
    )
    .await?;
    Ok(no_content())
}

/// Every consent of the user (one per client, so never more than a page).
pub async fn consents(State(state): State<AppState>, Path(sub): Path<String>) -> ApiResult {
    let user = users::show(&*state.store, &sub).await?;
    let items = users::consents(&*state.store, &user).await?;
    Ok(ok(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

pub async fn consent(
    State(state): State<AppState>,
    Path((sub, client_id)): Path<(String, String)>,
) -> ApiResult {
    let user = users::show(&*state.store, &sub).await?;
    Ok(ok(users::consent(&*state.store, &user, &client_id).await?))
}

/// Withdraws every consent of the user, revoking the grants they gave.
pub async fn revoke_consents(
    State(state): State<AppState>,
    caller: Caller,
    Path(sub): Path<String>,
) -> ApiResult {
    revoke(&state, &caller, &sub, None).await
}

/// Withdraws the user's consent to one client, revoking their grants to it.
pub async fn revoke_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path((sub, client_id)): Path<(String, String)>,
) -> ApiResult {
    revoke(&state, &caller, &sub, Some(&client_id)).await
}

async fn revoke(
    state: &AppState,
    caller: &Caller,
    sub: &str,
    client_id: Option<&str>,
) -> ApiResult {
    let user = users::show(&*state.store, sub).await?;
    users::revoke_consents(
        &*state.store,
        &*state.clock,
        &caller.audit(state),
        &caller.actor,
        &user,
        client_id,
    )
    .await?;
    Ok(no_content())
}

/// Ends every browser session of the user: they must sign in again
/// wherever they were signed in. The grants given in those sessions end
/// too, except those with `offline_access`; clients with a
/// `backchannel_logout_uri` are sent Logout Tokens.
pub async fn end_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(sub): Path<String>,
) -> ApiResult {
    let user = users::show(&*state.store, &sub).await?;
    let ended = users::end_sessions(
        &*state.store,
        &*state.clock,
        &caller.audit(&state),
        &caller.actor,
        &user,
    )
    .await?;
    if ended.deliveries > 0 {
        state.wake_backchannel_worker();
    }
    Ok(no_content())
}
