//! How an authorization response travels back to the client: the response
//! types (RFC 6749 §3.1.1) and response modes (OAuth 2.0 Multiple Response
//! Type Encoding Practices, Form Post Response Mode) Tessera implements.
//! Discovery's `response_types_supported` / `response_modes_supported` and
//! client registration derive from the `ALL` lists here.

use serde::{Deserialize, Serialize};

use crate::error::OAuthError;

/// `response_type` values (RFC 6749 §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseType {
    /// The authorization code flow (RFC 6749 §4.1).
    Code,
    /// An ID token alone, for sign-in only (OIDC Core §3.2, implicit flow
    /// without an access token), and only with `response_mode=form_post`
    /// so it never travels in a URL.
    IdToken,
}

impl ResponseType {
    pub const ALL: &[ResponseType] = &[ResponseType::Code, ResponseType::IdToken];

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::IdToken => "id_token",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

/// `response_mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    /// OAuth 2.0 Form Post Response Mode.
    FormPost,
}

impl ResponseMode {
    pub const ALL: &[ResponseMode] = &[ResponseMode::Query, ResponseMode::FormPost];

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::FormPost => "form_post",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.as_str() == s)
    }
}

/// Where and how a response goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectTarget {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
}

/// The parameters of an authorization response, `iss` included (RFC 9207).
#[derive(Debug)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

impl RedirectTarget {
    pub fn respond(
        &self,
        issuer: &str,
        mut params: Vec<(String, String)>,
    ) -> AuthorizationResponse {
        if let Some(state) = &self.state {
            params.push(("state".into(), state.clone()));
        }
        params.push(("iss".into(), issuer.to_string()));
        AuthorizationResponse {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.mode,
            params,
        }
    }

    pub fn error(&self, issuer: &str, err: &OAuthError) -> AuthorizationResponse {
        self.respond(
            issuer,
            vec![
                ("error".into(), err.code.as_str().into()),
                ("error_description".into(), err.description.to_string()),
            ],
        )
    }
}
