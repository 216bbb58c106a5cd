//! The client credentials grant (RFC 6749 §4.4). It writes nothing: the
//! client comes from the cache and the token is a self-contained JWT.

use super::TokenResponse;
use crate::domain::Client;
use crate::domain::scope::ScopeSet;
use crate::error::{AppError, OAuthError};
use crate::oauth::access_token::{self, Subject};
use crate::state::AppState;

pub fn grant(
    state: &AppState,
    client: &Client,
    requested: Option<ScopeSet>,
) -> Result<TokenResponse, AppError> {
    let registered = client.scopes();
    // RFC 6749 §3.3: without a `scope` parameter the registered scopes apply.
    let scope = match requested {
        None => registered,
        Some(requested) => {
            if let Some(extra) = requested.missing_from(&registered).next() {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {extra:?} is not registered for this client"
                ))
                .into());
            }
            requested
        }
    };
    let issued = access_token::issue(
        state,
        client,
        Subject {
            sub: &client.client_id,
            auth_time: None,
            grant_id: None,
        },
        &scope,
    )?;
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.claims.exp - issued.claims.iat,
        scope: issued.claims.scope,
        refresh_token: None,
        id_token: None,
    })
}
