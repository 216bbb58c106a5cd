//! The login session in the browser's server-side session (tower-sessions
//! over `http::session_store`). A session row exists only once someone has
//! signed in: anonymous visitors write nothing.

use tower_sessions::Session;

use crate::auth::session::LoginSession;
use crate::error::AppError;
use crate::oidc::backchannel;
use crate::state::AppState;
use crate::store::EndingSessions;

/// The session field holding the `LoginSession`; `session_store` reads its
/// `sub` to record whose session a row is.
pub(super) const KEY: &str = "login";

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::internal(format!("session: {e}"))
}

pub async fn current(session: &Session) -> Result<Option<LoginSession>, AppError> {
    session.get(KEY).await.map_err(session_error)
}

/// Records a successful sign-in under a new session id (against session
/// fixation).
pub async fn sign_in(session: &Session, login: &LoginSession) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_error)?;
    session.insert(KEY, login).await.map_err(session_error)
}

/// Ends the session: its row is deleted and the cookie cleared. A
/// signed-in session ends through `oidc::backchannel::end_sessions` (one
/// transaction: the row, the grants that end with it, the Logout Tokens
/// owed to clients), and the Back-Channel Logout worker is woken.
pub async fn sign_out(state: &AppState, session: &Session) -> Result<(), AppError> {
    // A browser without a stored session has nothing to end.
    let Some(id) = session.id() else {
        return Ok(());
    };
    if let Some(login) = current(session).await? {
        let id = id.to_string();
        let which = EndingSessions::One {
            id: &id,
            sub: &login.sub,
            sid: &login.sid,
        };
        let ended = backchannel::end_sessions(&*state.store, which, state.clock.now()).await?;
        if ended.deliveries > 0 {
            state.wake_backchannel_worker();
        }
    }
    session.flush().await.map_err(session_error)
}
