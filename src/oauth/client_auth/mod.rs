//! Client authentication at the token, introspection and revocation
//! endpoints (RFC 6749 §2.3). Each method is one file implementing
//! [`ClientAuthMethod`], registered by one line in [`REGISTRY`]; discovery's
//! `token_endpoint_auth_methods_supported` and client registration's
//! accepted `token_endpoint_auth_method` values derive from it. A client
//! must use the method it registered.

pub mod client_secret_basic;
pub mod client_secret_post;
pub mod none;
pub mod private_key_jwt;

use std::sync::Arc;

use async_trait::async_trait;

use super::client_cache::ClientCache;
use super::request::FormParams;
use crate::clock::Clock;
use crate::domain::Client;
use crate::error::{AppError, OAuthError};
use crate::store::ClientAssertionStore;

/// Every client authentication method, in discovery order.
pub static REGISTRY: &[&dyn ClientAuthMethod] = &[
    &client_secret_basic::ClientSecretBasic,
    &client_secret_post::ClientSecretPost,
    &none::NoAuthentication,
    &private_key_jwt::PrivateKeyJwt,
];

/// What checking client credentials needs beyond the request: the
/// clients, and for signed assertions the time, who may be their audience
/// and the record of assertions already used. `AppState::client_auth`
/// builds it.
pub struct ClientAuthContext<'a> {
    pub clients: &'a ClientCache,
    pub clock: &'a dyn Clock,
    pub issuer: &'a str,
    pub token_endpoint: &'a str,
    /// The URL of the endpoint the credentials were sent to (token,
    /// introspection, revocation): an assertion may name it as `aud`.
    pub endpoint: &'a str,
    pub assertions: &'a dyn ClientAssertionStore,
}

/// Where a request may carry client credentials.
pub struct CredentialSource<'a> {
    /// The raw `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    pub params: &'a FormParams,
}

/// The credentials a request carried, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCredentials {
    /// The registered name of the method they were presented with.
    pub method: &'static str,
    pub client_id: String,
    pub secret: Option<String>,
    /// A signed client assertion (RFC 7521 §4.2 `client_assertion`).
    pub assertion: Option<String>,
}

#[async_trait]
pub trait ClientAuthMethod: Send + Sync {
    /// The `token_endpoint_auth_method` value (RFC 7591 §2).
    fn name(&self) -> &'static str;
    /// Whether a client registered with this method is given a secret.
    fn issues_secret(&self) -> bool;
    /// Whether the method proves who the client is (RFC 6749 §2.1: a
    /// confidential client). Every method that uses a secret does.
    fn is_confidential(&self) -> bool {
        self.issues_secret()
    }
    /// Only considered when no other method's credentials are present
    /// (`none`: a bare `client_id`).
    fn is_fallback(&self) -> bool {
        false
    }
    /// This method's credentials, when the request carries them; an
    /// `Err` when they are there but malformed.
    fn extract(
        &self,
        source: &CredentialSource<'_>,
    ) -> Option<Result<PresentedCredentials, OAuthError>>;
    /// Whether a client registered with this method may present
    /// credentials of the `presented` method. Strict by default.
    fn accepts(&self, presented: &str) -> bool {
        presented == self.name()
    }
    /// Whether `presented` proves the request comes from `client`; an
    /// `Err` only when that cannot be decided (the database is down).
    async fn verify(
        &self,
        ctx: &ClientAuthContext<'_>,
        client: &Client,
        presented: &PresentedCredentials,
    ) -> Result<bool, AppError>;
}

/// The registered method called `name`.
pub fn find(name: &str) -> Option<&'static dyn ClientAuthMethod> {
    REGISTRY.iter().copied().find(|m| m.name() == name)
}

/// Every supported method name, for discovery, registration and the CLI.
pub fn method_names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|m| m.name())
}

/// Reads the credentials from the `Authorization` header and the body.
/// Using more than one method is an error (RFC 6749 §2.3).
pub fn extract(source: &CredentialSource<'_>) -> Result<Option<PresentedCredentials>, OAuthError> {
    let mut found = REGISTRY
        .iter()
        .filter(|m| !m.is_fallback())
        .filter_map(|m| m.extract(source));
    let first = found.next();
    if found.next().is_some() {
        return Err(OAuthError::invalid_request(
            "use only one client authentication method",
        ));
    }
    if let Some(presented) = first {
        return presented.map(Some);
    }
    REGISTRY
        .iter()
        .filter(|m| m.is_fallback())
        .find_map(|m| m.extract(source))
        .transpose()
}

/// Checks presented credentials; the error is always `invalid_client`
/// with a description that does not reveal whether the client exists.
pub async fn authenticate(
    ctx: &ClientAuthContext<'_>,
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
    let client = ctx
        .clients
        .get(&presented.client_id)
        .await?
        .ok_or_else(failed)?;
    let registered = find(&client.metadata.token_endpoint_auth_method).ok_or_else(failed)?;
    if !registered.accepts(presented.method) {
        return Err(failed().into());
    }
    let method = find(presented.method).ok_or_else(failed)?;
    if !method.verify(ctx, &client, &presented).await? {
        return Err(failed().into());
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    fn extract_from(
        authorization: Option<&str>,
        params: &FormParams,
    ) -> Result<Option<PresentedCredentials>, OAuthError> {
        extract(&CredentialSource {
            authorization,
            params,
        })
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let params = FormParams::default();
        let got = extract_from(Some(&basic("my%20client", "s%3Acret+x")), &params)
            .unwrap()
            .unwrap();
        assert_eq!(got.client_id, "my client");
        assert_eq!(got.secret.as_deref(), Some("s:cret x"));
        assert_eq!(got.method, "client_secret_basic");
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let params = FormParams::parse(b"client_id=a&client_secret=b").unwrap();
        assert!(extract_from(Some(&basic("a", "b")), &params).is_err());
        assert!(extract_from(Some("Bearer x"), &FormParams::default()).is_err());
        assert!(extract_from(Some("Basic !!!"), &FormParams::default()).is_err());
    }

    #[test]
    fn body_credentials() {
        let post = FormParams::parse(b"client_id=a&client_secret=b").unwrap();
        assert_eq!(
            extract_from(None, &post).unwrap().unwrap().method,
            "client_secret_post"
        );
        let public = FormParams::parse(b"client_id=a").unwrap();
        assert_eq!(extract_from(None, &public).unwrap().unwrap().method, "none");
        assert_eq!(extract_from(None, &FormParams::default()).unwrap(), None);
    }

    #[test]
    fn registry_names() {
        let names: Vec<&str> = method_names().collect();
        assert_eq!(
            names,
            [
                "client_secret_basic",
                "client_secret_post",
                "none",
                "private_key_jwt"
            ]
        );
    }
}
