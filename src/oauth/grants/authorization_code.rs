//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3,
//! RFC 7636 §4.5, OIDC Core §3.1.3).

use super::TokenResponse;
use crate::crypto;
use crate::domain::Client;
use crate::domain::CodeRedemption;
use crate::error::{AppError, OAuthError};
use crate::oauth::pkce;
use crate::state::AppState;

pub async fn grant(
    state: &AppState,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let now = state.clock.now();
    let invalid = |d: &'static str| AppError::from(OAuthError::invalid_grant(d));
    let code = match state
        .store
        .consume_code(&crypto::hash_secret(code), &client.client_id, now)
        .await?
    {
        CodeRedemption::Redeemed(code) => code,
        CodeRedemption::Replayed { grant_id } => {
            // RFC 6749 §4.1.2 / RFC 9700 §4.5: a code used twice revokes
            // every token issued from it.
            state.store.revoke_grant(&grant_id, now).await?;
            tracing::warn!(client_id = %client.client_id, "authorization code replayed; grant revoked");
            return Err(invalid("the authorization code was already used"));
        }
        CodeRedemption::Unknown => return Err(invalid("the authorization code is invalid")),
    };
    if code.expires_at <= now {
        return Err(invalid("the authorization code has expired"));
    }
    // RFC 6749 §4.1.3: the same redirect_uri as in the authorization request.
    if !code.redirect_uri.is_empty() && redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(invalid(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&code.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => {}
        (Some(_), _) => return Err(invalid("PKCE verification failed")),
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => {
            return Err(invalid("code_verifier sent but no code_challenge was"));
        }
        (None, None) => {}
    }
    let grant = state
        .store
        .grant(&code.grant_id)
        .await?
        .filter(|g| g.is_live(now))
        .ok_or_else(|| invalid("the authorization was revoked"))?;
    super::refresh_token::respond(state, client, &grant, None, code.nonce.as_deref(), true).await
}
