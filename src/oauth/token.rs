//! The token endpoint (RFC 6749 §3.2): find the grant in the registry,
//! authenticate the client (unless the request carries its own credential,
//! an API key), and let the grant parse and answer the request.

use super::client_auth::{self, ClientAuthContext, PresentedCredentials};
use super::grants::{self, GrantContext, TokenResponse};
use super::request::FormParams;
use crate::error::AppError;

pub async fn exchange(
    ctx: &GrantContext<'_>,
    auth: &ClientAuthContext<'_>,
    credentials: Option<PresentedCredentials>,
    params: &FormParams,
) -> Result<TokenResponse, AppError> {
    let grant = match params.require("grant_type") {
        Ok(grant_type) => grants::find(grant_type),
        Err(e) => Err(e),
    };
    if let Ok(grant) = grant
        && grant.authenticates_itself(params)
    {
        // Issue 12.4: an API key is its own credential. Client credentials
        // sent along must still be right: a wrong secret is never ignored.
        if credentials.is_some() {
            client_auth::authenticate(auth, credentials).await?;
        }
        return grant.exchange_self_authenticated(ctx, params).await;
    }
    // The client is authenticated before the grant type is judged, so an
    // unauthenticated caller learns nothing about the request.
    let client = client_auth::authenticate(auth, credentials).await?;
    grant?.exchange(ctx, &client, params).await
}
