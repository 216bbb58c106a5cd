//! `none` (RFC 7591 §2): a public client identifies itself by `client_id`
//! alone; PKCE protects its codes instead of a secret.

use async_trait::async_trait;

use super::{ClientAuthContext, ClientAuthMethod, CredentialSource, PresentedCredentials};
use crate::domain::Client;
use crate::domain::client::AUTH_METHOD_NONE;
use crate::error::{AppError, OAuthError};

pub struct NoAuthentication;

#[async_trait]
impl ClientAuthMethod for NoAuthentication {
    fn name(&self) -> &'static str {
        AUTH_METHOD_NONE
    }

    fn issues_secret(&self) -> bool {
        false
    }

    fn is_fallback(&self) -> bool {
        true
    }

    fn extract(
        &self,
        source: &CredentialSource<'_>,
    ) -> Option<Result<PresentedCredentials, OAuthError>> {
        let id = source.params.get("client_id")?;
        Some(Ok(PresentedCredentials {
            method: AUTH_METHOD_NONE,
            client_id: id.to_string(),
            secret: None,
            assertion: None,
        }))
    }

    async fn verify(
        &self,
        _ctx: &ClientAuthContext<'_>,
        client: &Client,
        _presented: &PresentedCredentials,
    ) -> Result<bool, AppError> {
        Ok(client.is_public())
    }
}
