//! `client_secret_basic` (RFC 6749 §2.3.1): the client id and secret in an
//! HTTP Basic `Authorization` header.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{ClientAuthContext, ClientAuthMethod, CredentialSource, PresentedCredentials};
use crate::crypto;
use crate::domain::Client;
use crate::error::{AppError, OAuthError};

pub const NAME: &str = "client_secret_basic";

pub struct ClientSecretBasic;

#[async_trait]
impl ClientAuthMethod for ClientSecretBasic {
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
        let header = source.authorization?;
        Some(parse_header(header, source))
    }

    /// A secret is a secret wherever it is sent: libraries differ in which
    /// of the two they default to (openid-client posts, requests-oauthlib
    /// uses Basic), so either is accepted. Only the stricter methods
    /// (`private_key_jwt`, `client_secret_jwt`, `none`) stay exact.
    fn accepts(&self, presented: &str) -> bool {
        presented == NAME || presented == super::client_secret_post::NAME
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

fn parse_header(
    header: &str,
    source: &CredentialSource<'_>,
) -> Result<PresentedCredentials, OAuthError> {
    let (scheme, value) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "unsupported authorization scheme; use HTTP Basic",
        ));
    }
    let (id, secret) = decode_basic(value.trim())
        .ok_or_else(|| OAuthError::invalid_client("malformed HTTP Basic credentials"))?;
    if source
        .params
        .get("client_id")
        .is_some_and(|body_id| body_id != id)
    {
        return Err(OAuthError::invalid_request(
            "client_id in the body differs from the authenticated client",
        ));
    }
    Ok(PresentedCredentials {
        method: NAME,
        client_id: id,
        secret: Some(secret),
        assertion: None,
    })
}

/// The presented secret against the stored SHA-256, in constant time.
pub(super) fn secret_matches(client: &Client, presented: &PresentedCredentials) -> bool {
    match (&presented.secret, &client.secret_hash) {
        (Some(secret), Some(hash)) => crypto::secret_matches(secret, hash),
        _ => false,
    }
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded before they are
/// joined with ':' and base64-encoded.
fn decode_basic(value: &str) -> Option<(String, String)> {
    let text = decode_basic_text(value)?;
    let (id, secret) = text.split_once(':')?;
    let (id, secret) = (form_unescape(id)?, form_unescape(secret)?);
    if id.is_empty() || id.contains('\0') || secret.contains('\0') {
        return None;
    }
    Some((id, secret))
}

/// The `user:password` text of a Basic credential (the part after the
/// scheme): base64, then UTF-8.
pub(crate) fn decode_basic_text(value: &str) -> Option<String> {
    String::from_utf8(STANDARD.decode(value).ok()?).ok()
}

/// RFC 6749 §2.3.1: each half of a Basic credential is form-encoded
/// before base64; this undoes it (`+` is a space, `%XX` a byte).
pub(crate) fn form_unescape(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&format!("v={}", s.replace('&', "%26").replace('=', "%3D")))
            .ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}
