//! `/admin/api/v1/keys`: list the signing keys (never a private part) and
//! rotate them now, as `tessera keys rotate` does.

use axum::extract::State;

use super::{ApiResult, Caller, ok};
use crate::jose::rotation::Trigger;
use crate::service::keys;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> ApiResult {
    let items = keys::list(&*state.store).await?;
    Ok(ok(
        serde_json::json!({ "items": items, "next_cursor": null }),
    ))
}

/// Promotes each `next` key at once and makes new `next` keys (the
/// operator's choice, as after a compromise); this instance signs with the
/// new keys at once, others after their next poll. Answers the keys as
/// they are now and any warnings (a `next` key younger than the JWKS
/// max-age, which resource servers may not have cached yet).
pub async fn rotate(State(state): State<AppState>, caller: Caller) -> ApiResult {
    let changes = state.rotate_keys(Trigger::Manual).await?;
    keys::audit_rotation(
        &caller.audit(&state),
        &caller.actor,
        &changes,
        state.clock.now(),
    )
    .await;
    for warning in &changes.warnings {
        tracing::warn!("{warning}");
    }
    let items = keys::list(&*state.store).await?;
    Ok(ok(serde_json::json!({
        "items": items,
        "warnings": changes.warnings,
    })))
}
