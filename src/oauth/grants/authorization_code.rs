//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3,
//! RFC 7636 §4.5, OIDC Core §3.1.3).

use super::{Grant, GrantContext, TokenResponse};
use crate::crypto;
use crate::domain::{Client, CodeRedemption};
use crate::error::{AppError, OAuthError};
use crate::oauth::pkce;
use crate::oauth::request::FormParams;
use crate::oauth::resource;

pub const GRANT_TYPE: &str = "authorization_code";

pub struct AuthorizationCodeGrant;

pub struct AuthorizationCodeRequest {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    /// RFC 8707 §2.2: the resources the access token is for.
    pub resources: Vec<String>,
}

impl Grant for AuthorizationCodeGrant {
    const GRANT_TYPE: &'static str = GRANT_TYPE;
    type Request = AuthorizationCodeRequest;

    fn parse(params: &FormParams) -> Result<Self::Request, OAuthError> {
        Ok(AuthorizationCodeRequest {
            code: params.require("code")?.to_string(),
            redirect_uri: params.get("redirect_uri").map(str::to_string),
            code_verifier: params.get("code_verifier").map(str::to_string),
            resources: resource::requested(params)?,
        })
    }

    async fn handle(
        ctx: &GrantContext<'_>,
        client: &Client,
        request: Self::Request,
    ) -> Result<TokenResponse, AppError> {
        let now = ctx.tokens.now();
        let invalid = |d: &'static str| AppError::from(OAuthError::invalid_grant(d));
        // RFC 8707 §2.2: what the requested resources make of the token
        // (resources the code's grant does not hold, unknown ones, scopes
        // they do not define, algorithms that cannot share a token) is
        // refused before the code is used up, so the client may retry with
        // the same code.
        if let Some(grant) = ctx
            .grants
            .pending_code_grant(&crypto::hash_secret(&request.code), &client.client_id, now)
            .await?
        {
            super::refresh_token::access_for(ctx, &grant, None, request.resources.clone()).await?;
        }
        let code = match ctx
            .grants
            .consume_code(&crypto::hash_secret(&request.code), &client.client_id, now)
            .await?
        {
            CodeRedemption::Redeemed(code) => code,
            CodeRedemption::Replayed { grant_id } => {
                // RFC 6749 §4.1.2 / RFC 9700 §4.5: a code used twice revokes
                // every token issued from it.
                ctx.grants.revoke_grant(&grant_id, now).await?;
                tracing::warn!(client_id = %client.client_id, "authorization code replayed; grant revoked");
                return Err(invalid("the authorization code was already used"));
            }
            CodeRedemption::Unknown => return Err(invalid("the authorization code is invalid")),
        };
        if code.expires_at <= now {
            return Err(invalid("the authorization code has expired"));
        }
        // RFC 6749 §4.1.3: the same redirect_uri as in the authorization request.
        if !code.redirect_uri.is_empty()
            && request.redirect_uri.as_deref() != Some(code.redirect_uri.as_str())
        {
            return Err(invalid(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&code.code_challenge, request.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => {}
            (Some(_), _) => return Err(invalid("PKCE verification failed")),
            // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
            (None, Some(_)) => {
                return Err(invalid("code_verifier sent but no code_challenge was"));
            }
            (None, None) => {}
        }
        let grant = ctx
            .grants
            .grant(&code.grant_id)
            .await?
            .filter(|g| g.is_live(now))
            .ok_or_else(|| invalid("the authorization was revoked"))?;
        let access = super::refresh_token::access_for(ctx, &grant, None, request.resources).await?;
        super::refresh_token::respond(ctx, client, &grant, access, code.nonce.as_deref(), true)
            .await
    }
}
