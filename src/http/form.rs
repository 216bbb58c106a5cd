//! The shared shape of the form-encoded POST endpoints (token,
//! introspection, revocation): a urlencoded body and maybe HTTP Basic.

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::{oauth_error_response, with_basic_challenge};
use crate::error::AppError;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::client_auth::{self, CredentialSource, PresentedCredentials};
use crate::oauth::request::FormParams;

/// A parsed `application/x-www-form-urlencoded` request with any client
/// credentials it carries. Every malformed shape becomes an RFC 6749 error.
pub struct OAuthForm {
    pub params: FormParams,
    pub credentials: Option<PresentedCredentials>,
    /// Whether the request carried an `Authorization` header (then a 401
    /// carries a Basic challenge).
    pub used_authorization_header: bool,
}

impl OAuthForm {
    /// The response for `result`: errors as RFC 6749 §5.2 JSON, with the
    /// Basic challenge when the client used the header.
    pub fn answer(&self, result: Result<Response, AppError>) -> Response {
        match result {
            Ok(response) => response,
            Err(e) => with_basic_challenge(e.into_response(), self.used_authorization_header),
        }
    }
}

pub struct FormRejection(Response);

impl IntoResponse for FormRejection {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = FormRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let used_authorization_header = req.headers().contains_key(header::AUTHORIZATION);
        let reject = |e: OAuthError| {
            FormRejection(with_basic_challenge(
                oauth_error_response(&e),
                used_authorization_header,
            ))
        };
        if !has_media_type(req.headers(), "application/x-www-form-urlencoded") {
            return Err(reject(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            )));
        }
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_string));
        let authorization = match authorization {
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                return Err(reject(OAuthError::new(
                    ErrorCode::InvalidClient,
                    "malformed Authorization header",
                )));
            }
            None => None,
        };
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let mut response = oauth_error_response(&OAuthError::invalid_request(
                if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    "the request body is too large"
                } else {
                    "the request body could not be read"
                },
            ));
            *response.status_mut() = status;
            FormRejection(response)
        })?;
        let params = FormParams::parse(&body).map_err(reject)?;
        let credentials = client_auth::extract(&CredentialSource {
            authorization: authorization.as_deref(),
            params: &params,
        })
        .map_err(reject)?;
        Ok(Self {
            params,
            credentials,
            used_authorization_header,
        })
    }
}

/// Whether the request's `Content-Type` is `media_type` (RFC 9110 §8.3.1:
/// compared without case, parameters such as `charset` ignored).
pub fn has_media_type(headers: &axum::http::HeaderMap, media_type: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(media_type))
}

/// JSON with the headers RFC 6749 §5.1 requires of token responses.
pub fn no_store_json(value: impl serde::Serialize) -> Response {
    let mut response = axum::Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}
