//! Pushed authorization requests (RFC 9126). A client POSTs its
//! authorization parameters to `/par`, authenticated as at the token
//! endpoint; they are validated exactly as `/authorize` validates them and
//! stored, and the client gets a `request_uri` to send the browser to
//! `/authorize` with. The request's content never travels through the
//! browser, and cannot be changed there.

use super::authorize::{self, AuthorizeContext, AuthorizeError, Pending, RequestSource};
use super::request::FormParams;
use crate::crypto;
use crate::domain::{Client, PushedRequest};
use crate::error::{AppError, OAuthError};

/// RFC 9126 §2.2: the URN prefix of the request URIs `/par` hands out.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// RFC 9126 §2.2: how long a request URI may be used. Short: the client
/// redirects the browser right after pushing.
pub const REQUEST_URI_TTL_SECS: i64 = 60;

/// Parameters that authenticate the client at `/par` and are not part of
/// the authorization request (RFC 9126 §2.1, RFC 7521 §4.2).
const CREDENTIAL_PARAMS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

/// The `/par` answer (RFC 9126 §2.2).
#[derive(Debug, serde::Serialize)]
pub struct PushedResponse {
    pub request_uri: String,
    pub expires_in: i64,
}

/// Validates `params` pushed by the authenticated `client` and stores them.
pub async fn push(
    ctx: &AuthorizeContext<'_>,
    client: &Client,
    params: &FormParams,
) -> Result<PushedResponse, AppError> {
    // RFC 9126 §2.1: a request_uri cannot itself be pushed.
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri must not be pushed").into());
    }
    // The client_id, when sent, must be the client that authenticated; the
    // stored request names that client in any case.
    if params
        .get("client_id")
        .is_some_and(|id| id != client.client_id)
    {
        return Err(OAuthError::invalid_request(
            "client_id does not match the authenticated client",
        )
        .into());
    }
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| !CREDENTIAL_PARAMS.contains(name) && *name != "client_id")
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    pairs.push(("client_id".into(), client.client_id.clone()));
    let request = FormParams::from_pairs(pairs.clone())?;
    // RFC 9126 §2.1: validated as at the authorization endpoint; an error
    // the browser would have carried to the redirect URI is answered here.
    match authorize::parse_from(ctx, &request, RequestSource::Pushed).await {
        Ok(_) => {}
        Err(AuthorizeError::Page(message)) => {
            return Err(OAuthError::invalid_request(message).into());
        }
        Err(AuthorizeError::Redirect(_, error)) => return Err(error.into()),
        Err(AuthorizeError::Internal(e)) => return Err(e),
    }
    let now = ctx.tokens.now();
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", crypto::random_token());
    let stored = serde_json::to_string(&pairs)
        .map_err(|e| AppError::internal(format!("serialising a pushed request: {e}")))?;
    ctx.pushed
        .insert_pushed_request(&PushedRequest {
            request_uri_hash: crypto::hash_secret(&request_uri),
            client_id: client.client_id.clone(),
            params: stored,
            created_at: now,
            expires_at: now + REQUEST_URI_TTL_SECS,
        })
        .await?;
    Ok(PushedResponse {
        request_uri,
        expires_in: REQUEST_URI_TTL_SECS,
    })
}

/// Whether `/authorize` was sent a request URI from `/par`.
pub fn is_pushed(params: &FormParams) -> bool {
    params
        .get("request_uri")
        .is_some_and(|uri| uri.starts_with(REQUEST_URI_PREFIX))
}

/// At `/authorize`: the pushed request a `request_uri` names, used up, and
/// validated again. RFC 9126 §4: `client_id` must name the client that
/// pushed it; every other query parameter is ignored. An unknown, expired,
/// used or another client's request URI is an error page: the redirect URI
/// inside it cannot be trusted before it is found.
pub async fn redeem(
    ctx: &AuthorizeContext<'_>,
    params: &FormParams,
) -> Result<Pending, AuthorizeError> {
    let gone = || {
        AuthorizeError::Page(
            "This sign-in link has expired or was already used. Go back to the application \
             and start again."
                .into(),
        )
    };
    let (Some(client_id), Some(request_uri)) = (params.get("client_id"), params.get("request_uri"))
    else {
        return Err(AuthorizeError::Page(
            "The request has a request_uri but no client_id.".into(),
        ));
    };
    let hash = crypto::hash_secret(request_uri);
    let Some(pushed) = ctx
        .pushed
        .take_pushed_request(&hash, client_id, ctx.tokens.now())
        .await?
    else {
        return Err(gone());
    };
    let pairs: Vec<(String, String)> = serde_json::from_str(&pushed.params)
        .map_err(|e| AppError::internal(format!("a stored pushed request is corrupt: {e}")))?;
    let stored = FormParams::from_pairs(pairs).map_err(|_| gone())?;
    authorize::parse_from(ctx, &stored, RequestSource::Pushed).await
}
