//! The error model. Protocol failures are `OAuthError`s carrying an RFC 6749
//! §5.2 error code; everything else is internal, logged with the request id
//! (the tracing span of the request) and answered with a generic body.
//! These are plain types: only `http::error` maps them to status codes and
//! responses.

use std::borrow::Cow;
use std::fmt;

use crate::jose::KeyError;
use crate::store::StoreError;

/// Error codes of RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
/// OIDC Core §3.1.2.6, RFC 8707 §2 and RFC 8628 §3.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    UnsupportedTokenType,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    /// RFC 8707 §2: the requested resource is invalid, unknown, or not
    /// one the client may get a token for.
    InvalidTarget,
    /// RFC 8628 §3.5: the person has not answered the device's request yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: the device polls faster than its interval allows.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired before it was used.
    ExpiredToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidTarget => "invalid_target",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }

    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }

    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Key(#[from] KeyError),
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// Whether the failure is the database being unreachable, read-only or
    /// overloaded (anything but a bug in a query or corrupt data): the
    /// request may succeed later, so it is answered `temporarily_unavailable`
    /// (RFC 6749 §4.1.2.1) with 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AppError::Store(StoreError::Database(e)) if database_unavailable(e))
    }
}

fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            // SQLite: SQLITE_BUSY (5), SQLITE_READONLY (8) and its extended
            // codes, SQLITE_IOERR (10), SQLITE_FULL (13), SQLITE_CANTOPEN (14).
            // PostgreSQL: class 08 (connection), 53 (resources), 57 (operator
            // intervention, e.g. shutdown), 25006 (read-only transaction).
            matches!(code, "5" | "8" | "10" | "13" | "14")
                || code
                    .parse::<u32>()
                    .is_ok_and(|c| c < 4096 && (c & 0xff == 8 || c & 0xff == 10))
                || code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "25006"
        }
        _ => false,
    }
}
