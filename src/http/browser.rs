//! The browser-binding cookie: a random value a browser gets the first time
//! it starts an interaction (a login or consent page). Interactions store
//! only its SHA-256, so a login or consent form works only in the browser
//! that opened it. It is not a session: nothing is stored for it.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use crate::crypto;

pub const COOKIE: &str = "tessera_browser";

/// Longest cookie value we accept (ours are 43 characters).
const MAX_LEN: usize = 128;

/// The browser's binding secret, if it sent one.
pub fn secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty() && v.len() <= MAX_LEN && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// The browser's secret, or a new one that `set` must then put on the response.
pub struct Binding {
    pub secret: String,
    is_new: bool,
}

impl Binding {
    pub fn of(headers: &HeaderMap) -> Self {
        match secret(headers) {
            Some(secret) => Self {
                secret,
                is_new: false,
            },
            None => Self {
                secret: crypto::random_token(),
                is_new: true,
            },
        }
    }

    /// Sets the cookie on `response` when it is new: HttpOnly, SameSite=Lax,
    /// Secure on an https issuer, for the browser's life.
    pub fn set(&self, mut response: Response, secure: bool) -> Response {
        if !self.is_new {
            return response;
        }
        let cookie = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{}",
            self.secret,
            if secure { "; Secure" } else { "" }
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        response
    }
}
