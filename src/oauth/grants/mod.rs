//! The grant registry (RFC 6749 §4): one file per grant type, each
//! implementing [`Grant`], and one line per grant in [`REGISTRY`]. The token
//! endpoint dispatches through it; discovery's `grant_types_supported`,
//! client registration's accepted `grant_types` and the CLI's accepted
//! values all derive from it.
//!
//! Adding a grant: write `grants/NAME.rs` with a type implementing `Grant`,
//! add `pub mod NAME;` below and one `&Registered::<NAME::Type>::NEW` line to
//! `REGISTRY`. Nothing else changes.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use std::marker::PhantomData;

use async_trait::async_trait;
use serde::Serialize;

use super::access_token::RevocationCheck;
use super::request::FormParams;
use super::resource_cache::ResourceCache;
use super::tokens::Tokens;
use crate::domain::Client;
use crate::error::{AppError, ErrorCode, OAuthError};
use crate::service::audit::AuditSink;
use crate::store::{ApiKeyStore, DeviceCodeStore, GrantStore, UserStore};

/// Every grant the token endpoint implements, in discovery order.
pub static REGISTRY: &[&dyn GrantHandler] = &[
    &Registered::<authorization_code::AuthorizationCodeGrant>::NEW,
    &Registered::<refresh_token::RefreshTokenGrant>::NEW,
    &Registered::<client_credentials::ClientCredentialsGrant>::NEW,
    &Registered::<token_exchange::TokenExchangeGrant>::NEW,
    &Registered::<device_code::DeviceCodeGrant>::NEW,
];

/// What a grant may use: token signing, the stores of user grants, of
/// device codes (RFC 8628) and of API keys, the registered resources
/// (RFC 8707), the audit log (refused uses of an API key, token
/// exchanges), and where revocations of access tokens are looked up (a
/// token exchange's subject and actor tokens).
pub struct GrantContext<'a> {
    pub tokens: Tokens<'a>,
    pub grants: &'a dyn GrantStore,
    pub device_codes: &'a dyn DeviceCodeStore,
    pub users: &'a dyn UserStore,
    pub api_keys: &'a dyn ApiKeyStore,
    pub audit: &'a dyn AuditSink,
    pub resources: &'a ResourceCache,
    pub revoked: RevocationCheck<'a>,
}

/// One grant type: how it reads its parameters, and how it answers an
/// authenticated client that is registered for it.
pub trait Grant: Send + Sync + 'static {
    /// The `grant_type` value (RFC 6749 §4, or an extension URI, §4.5).
    const GRANT_TYPE: &'static str;
    /// Whether a public client (`token_endpoint_auth_method=none`) may be
    /// registered for this grant.
    const PUBLIC_CLIENTS: bool = true;
    type Request: Send;

    /// Reads the grant's parameters; a missing or malformed one is
    /// `invalid_request` (or `invalid_scope`).
    fn parse(params: &FormParams) -> Result<Self::Request, OAuthError>;

    fn handle(
        ctx: &GrantContext<'_>,
        client: &Client,
        request: Self::Request,
    ) -> impl Future<Output = Result<TokenResponse, AppError>> + Send;

    /// Whether this request carries its own credential (an API key
    /// exchanged for a token), so that no client needs to authenticate.
    fn authenticates_itself(_params: &FormParams) -> bool {
        false
    }

    /// Answers a request that [`Grant::authenticates_itself`] said carries
    /// its own credential. Only such grants override it.
    fn handle_self_authenticated(
        _ctx: &GrantContext<'_>,
        _request: Self::Request,
    ) -> impl Future<Output = Result<TokenResponse, AppError>> + Send {
        async { Err(OAuthError::invalid_client("client authentication is required").into()) }
    }
}

/// The object-safe face of a [`Grant`], as the registry holds it.
#[async_trait]
pub trait GrantHandler: Send + Sync {
    fn grant_type(&self) -> &'static str;
    fn allows_public_clients(&self) -> bool;
    fn authenticates_itself(&self, params: &FormParams) -> bool;
    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &FormParams,
    ) -> Result<TokenResponse, AppError>;
    /// For a request that carries its own credential; no client.
    async fn exchange_self_authenticated(
        &self,
        ctx: &GrantContext<'_>,
        params: &FormParams,
    ) -> Result<TokenResponse, AppError>;
}

/// Registers a [`Grant`] type in [`REGISTRY`].
pub struct Registered<G>(PhantomData<fn() -> G>);

impl<G> Registered<G> {
    pub const NEW: Self = Self(PhantomData);
}

#[async_trait]
impl<G: Grant> GrantHandler for Registered<G> {
    fn grant_type(&self) -> &'static str {
        G::GRANT_TYPE
    }

    fn allows_public_clients(&self) -> bool {
        G::PUBLIC_CLIENTS
    }

    fn authenticates_itself(&self, params: &FormParams) -> bool {
        G::authenticates_itself(params)
    }

    async fn exchange_self_authenticated(
        &self,
        ctx: &GrantContext<'_>,
        params: &FormParams,
    ) -> Result<TokenResponse, AppError> {
        if !G::authenticates_itself(params) {
            return Err(OAuthError::invalid_client("client authentication is required").into());
        }
        let request = G::parse(params)?;
        G::handle_self_authenticated(ctx, request).await
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &FormParams,
    ) -> Result<TokenResponse, AppError> {
        let request = G::parse(params)?;
        if !client.allows_grant(G::GRANT_TYPE) {
            return Err(OAuthError::unauthorized_client(format!(
                "this client is not registered for the {} grant",
                G::GRANT_TYPE
            ))
            .into());
        }
        G::handle(ctx, client, request).await
    }
}

/// The registered grant for a `grant_type` value.
pub fn find(grant_type: &str) -> Result<&'static dyn GrantHandler, OAuthError> {
    REGISTRY
        .iter()
        .copied()
        .find(|g| g.grant_type() == grant_type)
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant type {grant_type:?} is not supported"),
            )
        })
}

/// Every supported `grant_type` value, for discovery, registration and the CLI.
pub fn grant_types() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|g| g.grant_type())
}

/// RFC 6749 §5.1 successful token response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// RFC 8693 §2.2.1: the type of the token issued by a token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_type_is_registered_once() {
        let types: Vec<&str> = grant_types().collect();
        assert_eq!(
            types,
            [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:device_code"
            ]
        );
        assert!(find("password").is_err());
        assert!(!find("client_credentials").unwrap().allows_public_clients());
        // RFC 8628 §3.4: devices are often public clients.
        assert!(
            find(device_code::GRANT_TYPE)
                .unwrap()
                .allows_public_clients()
        );
    }
}
