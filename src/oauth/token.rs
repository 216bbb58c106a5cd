//! The token endpoint (RFC 6749 §3.2): authenticate the client, parse the
//! grant, check the client may use it, and dispatch to its grant file.

use super::client_auth::{self, PresentedCredentials};
use super::grants::{self, TokenResponse};
use super::request::{FormParams, TokenRequest};
use crate::error::{AppError, OAuthError};
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    credentials: Option<PresentedCredentials>,
    params: &FormParams,
) -> Result<TokenResponse, AppError> {
    let client = client_auth::authenticate(state, credentials).await?;
    let request = TokenRequest::from_params(params)?;
    if !client.allows_grant(request.grant_type()) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client is not registered for the {} grant",
            request.grant_type()
        ))
        .into());
    }
    match request {
        TokenRequest::ClientCredentials { scope } => {
            grants::client_credentials::grant(state, &client, scope)
        }
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            grants::authorization_code::grant(
                state,
                &client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => grants::refresh_token::grant(state, &client, &refresh_token, scope).await,
    }
}
