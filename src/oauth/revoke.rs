//! Token revocation (RFC 7009).

use super::access_token;
use super::tokens::Tokens;
use crate::crypto;
use crate::domain::Client;
use crate::error::{AppError, OAuthError};
use crate::store::{GrantStore, RevocationStore};

/// Revokes `token` if it is one of ours issued to `client`. An unknown or
/// already invalid token is not an error (RFC 7009 §2.2).
pub async fn revoke(
    tokens: &Tokens<'_>,
    revocations: &dyn RevocationStore,
    grants: &dyn GrantStore,
    client: &Client,
    token: &str,
) -> Result<(), AppError> {
    let now = tokens.now();
    if let Some(claims) = access_token::verify_signature(tokens, token) {
        // RFC 7009 §2.1: the token must have been issued to the client
        // making the request.
        if claims.client_id != client.client_id {
            return Err(
                OAuthError::unauthorized_client("the token was not issued to this client").into(),
            );
        }
        revocations
            .revoke_access_token(&claims.jti, claims.exp)
            .await?;
    } else if let Some(refresh) = grants.refresh_token(&crypto::hash_secret(token)).await?
        && let Some(grant) = grants.grant(&refresh.grant_id).await?
    {
        // Any refresh token of the family, even one already rotated (it may
        // still be inside the grace window), revokes the family.
        if grant.client_id != client.client_id {
            return Err(
                OAuthError::unauthorized_client("the token was not issued to this client").into(),
            );
        }
        // RFC 7009 §2.1: revoking a refresh token also invalidates the
        // access tokens of the same grant.
        grants.revoke_grant(&grant.grant_id, now).await?;
    }
    Ok(())
}
