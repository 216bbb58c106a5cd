//! What a login session remembers about the person signed in.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::clock::UnixTime;
use crate::error::AppError;

const KEY: &str = "login";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginSession {
    pub sub: String,
    /// When the person last entered their password (OIDC `auth_time`).
    pub auth_time: UnixTime,
    /// The OIDC session id (`sid` claim), fixed for the session's life.
    pub sid: String,
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::internal(format!("session: {e}"))
}

pub async fn current(session: &Session) -> Result<Option<LoginSession>, AppError> {
    session.get(KEY).await.map_err(session_error)
}

/// Records a successful sign-in under a new session id (against session
/// fixation) while keeping the CSRF token the open forms carry.
pub async fn sign_in(session: &Session, login: &LoginSession) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_error)?;
    session.insert(KEY, login).await.map_err(session_error)
}

/// Ends the session: its row is deleted and the cookie cleared.
pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    // A browser without a stored session has nothing to end.
    if session.id().is_none() {
        return Ok(());
    }
    session.flush().await.map_err(session_error)
}
