//! Outbound HTTP: requests Tessera makes to other servers (Back-Channel
//! Logout deliveries; next, clients' `jwks_uri`). reqwest over rustls with
//! the aws-lc-rs provider (Tessera's one crypto library) and the operating
//! system's trust roots. Every request has a deadline, no redirect is
//! followed (a client's URL is where it registered, not wherever that
//! points), and at most `MAX_RESPONSE_BYTES` of an answer are read.
//!
//! Nothing here logs a request body: the bodies carry tokens.

use std::sync::Arc;
use std::time::Duration;

/// How much of a response body is read (and then dropped): enough to let
/// the connection be reused after a short answer, never a large one.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Why a request got no 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("could not connect")]
    Connect,
    #[error("answered HTTP {0}")]
    Status(u16),
    /// Anything else reqwest reports (TLS, a malformed answer, …); its
    /// text names the URL at most, never the body.
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up outbound HTTP: {0}")]
pub struct OutboundSetupError(String);

/// An HTTP client with the limits above. Cheap to clone (one connection
/// pool behind an `Arc`).
#[derive(Clone, Debug)]
pub struct OutboundClient {
    http: reqwest::Client,
    timeout: Duration,
}

/// Makes aws-lc-rs the process's default rustls provider, if none is set.
/// reqwest is built without a provider of its own (which would be `ring`),
/// and any reqwest client built the ordinary way in this process (the
/// integration tests' browsers) needs the default.
pub fn install_crypto_provider() {
    // An error means a provider is installed already: nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

impl OutboundClient {
    /// A client whose every request, connecting included, must be answered
    /// within `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, OutboundSetupError> {
        install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable certificates are skipped; an empty store only makes
        // https deliveries fail (and be reported), never start-up.
        let native = rustls_native_certs::load_native_certs();
        if !native.errors.is_empty() {
            tracing::warn!(
                errors = native.errors.len(),
                "some of the system's trust roots could not be read"
            );
        }
        let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OutboundSetupError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OutboundSetupError(e.to_string()))?;
        Ok(Self { http, timeout })
    }

    /// POSTs `form` as `application/x-www-form-urlencoded` to `url`; `Ok`
    /// on a 2xx answer. At most `MAX_RESPONSE_BYTES` of the answer are read.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<(), OutboundError> {
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| OutboundError::Other(format!("cannot encode the form: {e}")))?;
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        let status = response.status();
        self.drain(response).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(OutboundError::Status(status.as_u16()))
        }
    }

    /// Reads a short answer to its end (so the connection can be reused)
    /// and gives up on a longer one.
    async fn drain(&self, mut response: reqwest::Response) {
        let mut read = 0usize;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > MAX_RESPONSE_BYTES {
                break;
            }
        }
    }

    fn failure(&self, e: reqwest::Error) -> OutboundError {
        if e.is_timeout() {
            OutboundError::Timeout(self.timeout)
        } else if e.is_connect() {
            OutboundError::Connect
        } else {
            // Without the URL: it is the client's, and may carry a secret
            // of its own in the query.
            OutboundError::Other(e.without_url().to_string())
        }
    }
}
