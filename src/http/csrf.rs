//! CSRF tokens of the signed-in session's forms (logout today, the console
//! next): one random token per session, embedded in every form and compared
//! in constant time on every POST. The login and consent forms are bound to
//! their interaction instead (`oauth::interaction`), so anonymous visitors
//! get no session.

use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::crypto;
use crate::error::AppError;

const KEY: &str = "csrf";

/// The session's CSRF token, created on first use.
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(t) = session
        .get::<String>(KEY)
        .await
        .map_err(|e| AppError::internal(format!("session: {e}")))?
    {
        return Ok(t);
    }
    let t = crypto::random_token();
    session
        .insert(KEY, &t)
        .await
        .map_err(|e| AppError::internal(format!("session: {e}")))?;
    Ok(t)
}

/// Whether `presented` is this session's token.
pub async fn verify(session: &Session, presented: Option<&str>) -> Result<bool, AppError> {
    let Some(presented) = presented else {
        return Ok(false);
    };
    let expected = session
        .get::<String>(KEY)
        .await
        .map_err(|e| AppError::internal(format!("session: {e}")))?;
    Ok(expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(presented.as_bytes()))))
}
