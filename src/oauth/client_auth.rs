//! Client authentication at the token, introspection and revocation
//! endpoints (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`,
//! or `none` for public clients. A client must use the method it registered.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::request::FormParams;
use crate::crypto;
use crate::domain::{Client, TokenEndpointAuthMethod};
use crate::error::{AppError, OAuthError};
use crate::state::AppState;

/// The credentials a request carried, before they are checked.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedCredentials {
    pub method: TokenEndpointAuthMethod,
    pub client_id: String,
    pub secret: Option<String>,
}

/// Reads the credentials from the `Authorization` header and the body.
/// Using more than one method is an error (RFC 6749 §2.3).
pub fn extract(
    authorization: Option<&str>,
    params: &FormParams,
) -> Result<Option<PresentedCredentials>, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    if let Some(header) = authorization {
        let (scheme, value) = header.trim().split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_client(
                "unsupported authorization scheme; use HTTP Basic",
            ));
        }
        let (id, secret) = decode_basic(value.trim())
            .ok_or_else(|| OAuthError::invalid_client("malformed HTTP Basic credentials"))?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use only one client authentication method",
            ));
        }
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the authenticated client",
            ));
        }
        return Ok(Some(PresentedCredentials {
            method: TokenEndpointAuthMethod::ClientSecretBasic,
            client_id: id,
            secret: Some(secret),
        }));
    }
    Ok(body_id.map(|id| PresentedCredentials {
        method: if body_secret.is_some() {
            TokenEndpointAuthMethod::ClientSecretPost
        } else {
            TokenEndpointAuthMethod::None
        },
        client_id: id.to_string(),
        secret: body_secret.map(str::to_string),
    }))
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded before they are
/// joined with ':' and base64-encoded.
fn decode_basic(value: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(value).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&format!("v={}", s.replace('&', "%26").replace('=', "%3D")))
                .ok()?;
        pairs.into_iter().next().map(|(_, v)| v)
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() || id.contains('\0') || secret.contains('\0') {
        return None;
    }
    Some((id, secret))
}

/// Checks presented credentials; the error is always `invalid_client`
/// with a description that does not reveal whether the client exists.
pub async fn authenticate(
    state: &AppState,
    presented: Option<PresentedCredentials>,
) -> Result<Arc<Client>, AppError> {
    let presented =
        presented.ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    // One description for every failure, so it reveals neither whether the
    // client exists nor how it authenticates; it names what to check.
    let failed = || {
        OAuthError::invalid_client(
            "client authentication failed: check the client id and secret, and use the \
             authentication method the client was registered with",
        )
    };
    let client = state
        .client(&presented.client_id)
        .await?
        .ok_or_else(failed)?;
    let registered = client.metadata.token_endpoint_auth_method;
    if presented.method != registered {
        return Err(failed().into());
    }
    if registered != TokenEndpointAuthMethod::None {
        let ok = match (&presented.secret, &client.secret_hash) {
            (Some(secret), Some(hash)) => crypto::secret_matches(secret, hash),
            _ => false,
        };
        if !ok {
            return Err(failed().into());
        }
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let params = FormParams::default();
        let got = extract(Some(&basic("my%20client", "s%3Acret+x")), &params)
            .unwrap()
            .unwrap();
        assert_eq!(got.client_id, "my client");
        assert_eq!(got.secret.as_deref(), Some("s:cret x"));
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let params = FormParams::parse(b"client_id=a&client_secret=b").unwrap();
        assert!(extract(Some(&basic("a", "b")), &params).is_err());
        assert!(extract(Some("Bearer x"), &FormParams::default()).is_err());
        assert!(extract(Some("Basic !!!"), &FormParams::default()).is_err());
    }

    #[test]
    fn body_credentials() {
        let post = FormParams::parse(b"client_id=a&client_secret=b").unwrap();
        assert_eq!(
            extract(None, &post).unwrap().unwrap().method,
            TokenEndpointAuthMethod::ClientSecretPost
        );
        let public = FormParams::parse(b"client_id=a").unwrap();
        assert_eq!(
            extract(None, &public).unwrap().unwrap().method,
            TokenEndpointAuthMethod::None
        );
        assert_eq!(extract(None, &FormParams::default()).unwrap(), None);
    }
}
