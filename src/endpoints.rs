//! Where every endpoint and page lives: the route paths that `http/` mounts
//! and the absolute URLs, derived from the issuer, that protocol code
//! publishes (discovery, the `htu`/`aud` values clients use). One list, so a
//! path is never spelled twice.

/// Route paths, relative to the issuer.
pub mod path {
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
    pub const AUTHORIZATION: &str = "/authorize";
    pub const LOGIN: &str = "/login";
    pub const TOKEN: &str = "/token";
    pub const INTROSPECTION: &str = "/introspect";
    pub const REVOCATION: &str = "/revoke";
    pub const USERINFO: &str = "/userinfo";
    pub const JWKS: &str = "/jwks";
    pub const END_SESSION: &str = "/logout";
    /// RFC 7591 §3: the client registration endpoint.
    pub const REGISTRATION: &str = "/register";
    /// RFC 7592 §2: the client configuration endpoint of one client
    /// (`registration_client_uri`).
    pub const REGISTRATION_CLIENT: &str = "/register/{client_id}";
    /// RFC 9126 §2: the pushed authorization request endpoint.
    pub const PUSHED_AUTHORIZATION_REQUEST: &str = "/par";
    /// Issue 12: resource servers check an API key.
    pub const API_KEY_VERIFY: &str = "/apikeys/verify";
    /// RFC 8628 §3.1: the device authorization endpoint.
    pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
    /// RFC 8628 §3.3: the page where the person enters the user code.
    pub const DEVICE_VERIFICATION: &str = "/device";
    pub const STYLESHEET: &str = "/static/tessera.css";
    pub const FORM_POST_SCRIPT: &str = "/static/form_post.js";
}

/// The absolute URL of each endpoint for one issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub issuer: String,
    pub authorization: String,
    pub token: String,
    pub introspection: String,
    pub revocation: String,
    pub userinfo: String,
    pub jwks: String,
    pub end_session: String,
    pub registration: String,
    pub pushed_authorization_request: String,
    pub device_authorization: String,
    /// RFC 8628 §3.2 `verification_uri`.
    pub device_verification: String,
}

impl Endpoints {
    /// `issuer` has no trailing slash (the config validates that).
    pub fn for_issuer(issuer: &str) -> Self {
        let url = |p: &str| format!("{issuer}{p}");
        Self {
            issuer: issuer.to_string(),
            authorization: url(path::AUTHORIZATION),
            token: url(path::TOKEN),
            introspection: url(path::INTROSPECTION),
            revocation: url(path::REVOCATION),
            userinfo: url(path::USERINFO),
            jwks: url(path::JWKS),
            end_session: url(path::END_SESSION),
            registration: url(path::REGISTRATION),
            pushed_authorization_request: url(path::PUSHED_AUTHORIZATION_REQUEST),
            device_authorization: url(path::DEVICE_AUTHORIZATION),
            device_verification: url(path::DEVICE_VERIFICATION),
        }
    }

    /// RFC 7592 §3 `registration_client_uri`: where the client reads,
    /// updates and deletes its registration. Client ids are hex, so the id
    /// needs no escaping.
    pub fn registration_client_uri(&self, client_id: &str) -> String {
        format!("{}/{client_id}", self.registration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_issuer() {
        let e = Endpoints::for_issuer("https://id.example.com");
        assert_eq!(e.token, "https://id.example.com/token");
        assert_eq!(e.jwks, "https://id.example.com/jwks");
        assert_eq!(
            e.registration_client_uri("c1"),
            "https://id.example.com/register/c1"
        );
        assert_eq!(
            path::REGISTRATION_CLIENT.replace("{client_id}", "c1"),
            "/register/c1"
        );
    }
}
