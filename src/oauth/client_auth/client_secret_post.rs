//! `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret`
//! in the form body.

use async_trait::async_trait;

use super::client_secret_basic::secret_matches;
use super::{ClientAuthContext, ClientAuthMethod, CredentialSource, PresentedCredentials};
use crate::domain::Client;
use crate::error::{AppError, OAuthError};

pub const NAME: &str = "client_secret_post";

pub struct ClientSecretPost;

#[async_trait]
impl ClientAuthMethod for ClientSecretPost {
    fn name(&self) -> &'static str {
        NAME
    }

    fn issues_secret(&self) -> bool {
        true
    }

    fn extract(
        &self,
        source: &CredentialSource<'_>,
    ) -> Option<Result<PresentedCredentials, OAuthError>> {
        let secret = source.params.get("client_secret")?;
        Some(match source.params.get("client_id") {
            Some(id) => Ok(PresentedCredentials {
                method: NAME,
                client_id: id.to_string(),
                secret: Some(secret.to_string()),
                assertion: None,
            }),
            None => Err(OAuthError::invalid_request(
                "client_secret was sent without client_id",
            )),
        })
    }

    /// A secret is a secret wherever it is sent: libraries differ in which
    /// of the two they default to (openid-client posts, requests-oauthlib
    /// uses Basic), so either is accepted. Only the stricter methods
    /// (`private_key_jwt`, `client_secret_jwt`, `none`) stay exact.
    fn accepts(&self, presented: &str) -> bool {
        presented == NAME || presented == super::client_secret_basic::NAME
    }

    async fn verify(
        &self,
        _ctx: &ClientAuthContext<'_>,
        client: &Client,
        presented: &PresentedCredentials,
    ) -> Result<bool, AppError> {
        Ok(secret_matches(client, presented))
    }
}
