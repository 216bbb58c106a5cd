//! `/admin/api/v1/audit`: the audit log, newest first, filtered by `type`
//! (a kind such as `signin.failed`, or a category such as `signin`),
//! `user` (a `sub`), `client` (a `client_id`), `since` and `until` (RFC
//! 3339), and paginated.

use axum::extract::{RawQuery, State};
use serde::Deserialize;

use super::{ApiResult, ok, query};
use crate::service::audit::{self, AuditFilter};
use crate::service::page::PageRequest;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    user: Option<String>,
    client: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let params: AuditParams = query(raw.as_deref())?;
    let page = PageRequest::new(params.cursor, params.limit)?;
    let time = |name: &str, value: Option<String>| {
        value.map(|v| audit::parse_rfc3339(name, &v)).transpose()
    };
    let filter = AuditFilter {
        kind: params.kind,
        user: params.user,
        client: params.client,
        since: time("since", params.since)?,
        until: time("until", params.until)?,
    };
    // What this instance has queued so far is written first, so a caller
    // reads its own changes.
    state.audit.flush().await;
    Ok(ok(audit::list(&*state.store, &filter, &page).await?))
}
