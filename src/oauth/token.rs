//! The token endpoint (RFC 6749 §3.2): authenticate the client, find the
//! grant in the registry, and let it parse and answer the request.

use super::client_auth::{self, PresentedCredentials};
use super::client_cache::ClientCache;
use super::grants::{self, GrantContext, TokenResponse};
use super::request::FormParams;
use crate::error::AppError;

pub async fn exchange(
    ctx: &GrantContext<'_>,
    clients: &ClientCache,
    credentials: Option<PresentedCredentials>,
    params: &FormParams,
) -> Result<TokenResponse, AppError> {
    let client = client_auth::authenticate(clients, credentials).await?;
    let grant = grants::find(params.require("grant_type")?)?;
    grant.exchange(ctx, &client, params).await
}
