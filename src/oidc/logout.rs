//! RP-Initiated Logout 1.0: validate the logout request.

use std::sync::Arc;

use serde::Deserialize;

use crate::domain::Client;
use crate::error::AppError;
use crate::oauth::client_cache::ClientCache;
use crate::oauth::request::FormParams;
use crate::oauth::tokens::Tokens;

#[derive(Debug, Deserialize)]
pub struct IdTokenHint {
    pub sub: String,
    pub aud: serde_json::Value,
    #[serde(default)]
    pub sid: Option<String>,
}

#[derive(Debug)]
pub struct LogoutRequest {
    /// A valid ID token we issued: the RP vouches for the logout, so no
    /// confirmation is needed (§2, "the OP SHOULD ask" only without one).
    pub hint: Option<IdTokenHint>,
    pub client: Option<Arc<Client>>,
    /// Registered `post_logout_redirect_uri` with `state` appended.
    pub redirect: Option<String>,
}

/// Checks the request; `Err` is a message for an error page (we never
/// redirect to an unregistered URI).
pub async fn validate(
    tokens: &Tokens<'_>,
    clients: &ClientCache,
    params: &FormParams,
) -> Result<Result<LogoutRequest, String>, AppError> {
    let hint = match params.get("id_token_hint") {
        // §2: an expired ID token is still a good hint.
        Some(t) => match tokens
            .keys
            .verify::<IdTokenHint>(t, "JWT", tokens.issuer, None)
        {
            Some(h) => Some(h),
            None => {
                return Ok(Err(
                    "The id_token_hint is not a valid ID token from this server.".into(),
                ));
            }
        },
        None => None,
    };
    let hint_client = hint.as_ref().and_then(|h| match &h.aud {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_string),
        _ => None,
    });
    let client_id = match (params.get("client_id"), hint_client) {
        (Some(a), Some(b)) if a != b => {
            return Ok(Err("client_id does not match the id_token_hint.".into()));
        }
        (Some(a), _) => Some(a.to_string()),
        (None, b) => b,
    };
    let client = match &client_id {
        Some(id) => match clients.get(id).await? {
            Some(c) => Some(c),
            None => return Ok(Err("The application is not registered here.".into())),
        },
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client.as_ref().is_some_and(|c| {
                c.metadata
                    .post_logout_redirect_uris
                    .iter()
                    .any(|r| r == uri)
            });
            if !registered {
                return Ok(Err(
                    "The post-logout redirect URI is not registered for this application.".into(),
                ));
            }
            let mut url = url::Url::parse(uri)
                .map_err(|_| AppError::internal("registered post-logout URI does not parse"))?;
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(url.to_string())
        }
    };
    Ok(Ok(LogoutRequest {
        hint,
        client,
        redirect,
    }))
}
