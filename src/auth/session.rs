//! What a login session remembers about the person signed in. The HTTP
//! layer keeps it in the server-side session (`http::session`).

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginSession {
    pub sub: String,
    /// When the person last entered their password (OIDC `auth_time`).
    pub auth_time: UnixTime,
    /// The OIDC session id (`sid` claim), fixed for the session's life.
    pub sid: String,
}
