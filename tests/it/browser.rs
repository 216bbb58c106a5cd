//! The browser sign-in flow (issue 3): a cookie-keeping reqwest client as
//! the browser, reading and submitting the login and consent forms, and
//! the `openidconnect` crate as a strict relying party.

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderMap, LOCATION, REFERRER_POLICY,
    SET_COOKIE, WWW_AUTHENTICATE, X_FRAME_OPTIONS,
};
use serde_json::Value;
use tessera::clock::Clock;
use tessera::domain::User;
use tessera::jose::SigningAlg;
use tessera::oauth::client::ClientRegistration;

use crate::harness::{Backend, TestServer, http, random_id};
use crate::introspection::{is_active, payload_of, post_form};

pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const REDIRECT: &str = "https://rp.example.com/callback";
const OTHER_REDIRECT: &str = "https://rp.example.com/other";
const LOGOUT_REDIRECT: &str = "https://rp.example.com/signed-out";
pub(crate) const ALL_SCOPES: &str = "openid profile email offline_access";

// ---------------------------------------------------------------------------
// Server, users and clients.

pub(crate) async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.login.failure_delay_ms = 0).await
}

/// Creates a user with PASSWORD, `USERNAME@example.com` and a name; its sub.
pub(crate) async fn add_user(server: &TestServer, username: &str) -> String {
    let now = server.clock.now();
    let user = User {
        sub: random_id(),
        username: username.into(),
        password_hash: tessera::auth::password::hash_password(PASSWORD.into())
            .await
            .unwrap(),
        email: Some(format!("{username}@example.com")),
        name: Some(format!("{username} Example")),
        created_at: now,
        updated_at: now,
    };
    server.state.store.insert_user(&user).await.unwrap();
    user.sub
}

pub(crate) struct Rp {
    pub(crate) id: String,
    pub(crate) secret: Option<String>,
}

pub(crate) fn web_app() -> ClientRegistration {
    ClientRegistration {
        client_name: "Web App".into(),
        redirect_uris: vec![REDIRECT.into(), OTHER_REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: Some(ALL_SCOPES.into()),
        post_logout_redirect_uris: vec![LOGOUT_REDIRECT.into()],
        ..Default::default()
    }
}

pub(crate) async fn rp(server: &TestServer, registration: ClientRegistration) -> Rp {
    let (client, secret) = server.register(registration).await;
    Rp {
        id: client.client_id,
        secret,
    }
}

// ---------------------------------------------------------------------------
// Authorization requests.

pub(crate) struct AuthRequest {
    params: Vec<(String, String)>,
    pub(crate) verifier: String,
}

impl AuthRequest {
    /// code + PKCE S256, all scopes, state and nonce.
    pub(crate) fn new(rp: &Rp) -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let params = [
            ("response_type", "code"),
            ("client_id", rp.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", ALL_SCOPES),
            ("state", "st-123"),
            ("nonce", "n-123"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Self {
            params,
            verifier: verifier.secret().to_string(),
        }
    }

    pub(crate) fn set(mut self, key: &str, value: &str) -> Self {
        match self.params.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.into(),
            None => self.params.push((key.into(), value.into())),
        }
        self
    }

    /// Adds one more `key=value`, keeping any already there (a repeatable
    /// parameter such as RFC 8707 `resource`).
    pub(crate) fn add(mut self, key: &str, value: &str) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    pub(crate) fn unset(mut self, key: &str) -> Self {
        self.params.retain(|(k, _)| k != key);
        self
    }

    pub(crate) fn query(&self) -> String {
        serde_urlencoded::to_string(&self.params).unwrap()
    }

    /// The parameters, as a client pushes them to `/par` (RFC 9126).
    pub(crate) fn pairs(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The browser.

pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

/// Decodes the character references askama writes (`&#38;`, `&amp;`, …).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => match entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                    None => entity
                        .strip_prefix('#')
                        .and_then(|d| d.parse().ok())
                        .and_then(char::from_u32),
                },
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of the first `marker"…"` in `html`, unescaped.
pub(crate) fn attr_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

impl Resp {
    pub(crate) fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap())
    }

    pub(crate) fn header(&self, name: impl reqwest::header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub(crate) fn is_login(&self) -> bool {
        self.body.contains("name=\"password\"")
    }

    pub(crate) fn is_consent(&self) -> bool {
        self.body.contains("name=\"decision\" value=\"allow\"")
    }

    pub(crate) fn csrf(&self) -> String {
        attr_after(&self.body, "name=\"csrf_token\" value=\"").expect("a csrf_token field")
    }

    pub(crate) fn action(&self) -> String {
        let form = &self.body[self.body.find("<form").expect("a form")..];
        attr_after(form, "action=\"").expect("a form action")
    }

    /// The text of the login page's alert.
    pub(crate) fn alert(&self) -> String {
        let start = self.body.find("role=\"alert\">").expect("an alert") + "role=\"alert\">".len();
        let end = self.body[start..].find('<').unwrap() + start;
        unescape(&self.body[start..end])
    }

    /// The parameters of a 303 to the client's redirect URI.
    pub(crate) fn callback(&self) -> HashMap<String, String> {
        self.callback_to(REDIRECT)
    }

    pub(crate) fn callback_to(&self, redirect_uri: &str) -> HashMap<String, String> {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect to the client, got: {}",
            self.body
        );
        let location = self.location().expect("a Location");
        assert!(
            location.starts_with(&format!("{redirect_uri}?")),
            "redirect to {location}, expected {redirect_uri}"
        );
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    pub(crate) fn assert_security_headers(&self) {
        let csp = self.header(CONTENT_SECURITY_POLICY);
        assert!(csp.contains("frame-ancestors 'none'"), "CSP: {csp:?}");
        assert!(!csp.contains("unsafe-inline"), "CSP: {csp:?}");
        assert!(csp.contains("script-src"), "CSP: {csp:?}");
        assert_eq!(self.header(X_FRAME_OPTIONS), "DENY");
        assert_eq!(self.header(REFERRER_POLICY), "no-referrer");
        assert_eq!(self.header(CACHE_CONTROL), "no-store");
    }
}

pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
}

impl Browser {
    pub(crate) fn new(server: &TestServer) -> Self {
        Self::at(&server.base)
    }

    /// A browser for a server at `base` (one not started by the harness).
    pub(crate) fn at(base: &str) -> Self {
        Self::with_headers(base, HeaderMap::new())
    }

    /// A browser for the server at `base` that sends `headers` with every
    /// request (a proxy's `X-Forwarded-For`, say).
    pub(crate) fn with_headers(base: &str, headers: HeaderMap) -> Self {
        // reqwest has rustls without a provider of its own (Cargo.toml).
        tessera::outbound::install_crypto_provider();
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap(),
            base: base.to_string(),
        }
    }

    pub(crate) fn abs(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        }
    }

    pub(crate) async fn read(response: reqwest::Response) -> Resp {
        Resp {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&self, url: &str) -> Resp {
        Self::read(self.client.get(self.abs(url)).send().await.unwrap()).await
    }

    pub(crate) async fn post(&self, url: &str, form: &[(&str, &str)]) -> Resp {
        Self::read(
            self.client
                .post(self.abs(url))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Follows redirects that stay on the server.
    pub(crate) async fn follow(&self, mut r: Resp) -> Resp {
        for _ in 0..10 {
            if !r.status.is_redirection() {
                return r;
            }
            let location = r.location().expect("a redirect has a Location").to_string();
            if !(location.starts_with('/') || location.starts_with(&self.base)) {
                return r;
            }
            r = self.get(&location).await;
        }
        panic!("redirect loop");
    }

    pub(crate) async fn authorize(&self, req: &AuthRequest) -> Resp {
        let r = self.get(&format!("/authorize?{}", req.query())).await;
        self.follow(r).await
    }

    /// Submits the login form on `page`; the response before following.
    pub(crate) async fn submit_login(&self, page: &Resp, username: &str, password: &str) -> Resp {
        assert!(page.is_login(), "not a login page: {}", page.body);
        let csrf = page.csrf();
        self.post(
            &page.action(),
            &[
                ("csrf_token", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    pub(crate) async fn login(&self, page: &Resp, username: &str, password: &str) -> Resp {
        let r = self.submit_login(page, username, password).await;
        self.follow(r).await
    }

    pub(crate) async fn decide(&self, page: &Resp, decision: &str) -> Resp {
        assert!(page.is_consent(), "not a consent page: {}", page.body);
        let csrf = page.csrf();
        let r = self
            .post(
                &page.action(),
                &[("csrf_token", &csrf), ("decision", decision)],
            )
            .await;
        self.follow(r).await
    }

    /// The whole flow: signs in as `username` if asked, answers consent
    /// with `decision` if asked; the final response.
    pub(crate) async fn run(&self, req: &AuthRequest, username: &str, decision: &str) -> Resp {
        let mut r = self.authorize(req).await;
        if r.is_login() {
            r = self.login(&r, username, PASSWORD).await;
        }
        if r.is_consent() {
            r = self.decide(&r, decision).await;
        }
        r
    }

    /// A code for `req`, signing in and consenting as needed.
    pub(crate) async fn code(&self, req: &AuthRequest, username: &str) -> String {
        let params = self.run(req, username, "allow").await.callback();
        params
            .get("code")
            .unwrap_or_else(|| panic!("no code: {params:?}"))
            .clone()
    }
}

// ---------------------------------------------------------------------------
// The token endpoint, by hand.

pub(crate) async fn token_request(
    server: &TestServer,
    rp: &Rp,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = post_form(
        server,
        "/token",
        Some((&rp.id, rp.secret.as_deref().unwrap())),
        form,
    )
    .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

pub(crate) async fn exchange(
    server: &TestServer,
    rp: &Rp,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> (StatusCode, Value) {
    token_request(
        server,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Exchanges a code that must work; the token response.
pub(crate) async fn tokens(server: &TestServer, rp: &Rp, req: &AuthRequest, code: &str) -> Value {
    let (status, body) = exchange(server, rp, code, &req.verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "code exchange failed: {body}");
    body
}

pub(crate) async fn refresh(
    server: &TestServer,
    rp: &Rp,
    refresh_token: &str,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    token_request(server, rp, &form).await
}

fn assert_invalid_grant((status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

async fn active(server: &TestServer, rp: &Rp, token: &str) -> bool {
    is_active(server, &rp.id, rp.secret.as_deref().unwrap(), token).await
}

// ---------------------------------------------------------------------------
// Happy paths with the openidconnect crate.

async fn oidc_client(
    server: &TestServer,
    rp: &Rp,
) -> CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
> {
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http())
            .await
            .unwrap();
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.id.clone()),
        rp.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

async fn openidconnect_crate_completes_the_flow(backend: Backend) {
    let server = start(backend).await;
    let sub = add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let client = oidc_client(&server, &app).await;

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        url.as_str().starts_with(&server.url("/authorize?")),
        "{url}"
    );

    let browser = Browser::new(&server);
    let login = browser.follow(browser.get(url.as_str()).await).await;
    assert!(login.is_login(), "{}", login.body);
    let consent = browser.login(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent(), "{}", consent.body);
    assert!(consent.body.contains("Web App"));
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(consent.body.contains(scope), "consent lists {scope}");
    }
    let params = browser.decide(&consent, "allow").await.callback();
    assert_eq!(params["state"], *csrf_state.secret());
    assert_eq!(params["iss"], server.base);

    let response = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap();
    let id_token = response.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), sub);
    assert_eq!(
        claims.access_token_hash().expect("at_hash"),
        &AccessTokenHash::from_token(
            response.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap()
    );
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!((auth_time - server.clock.now()).abs() <= 1);
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).unwrap().as_str(),
        "alice Example"
    );
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    assert_eq!(claims.email().unwrap().as_str(), "alice@example.com");
    let raw = raw_jwt(id_token);
    let payload = payload_of(&raw);
    assert!(
        payload["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "{payload}"
    );
    assert_eq!(payload["azp"], app.id.as_str());

    // The access token is an RFC 9068 JWT about the user.
    let at = payload_of(response.access_token().secret());
    assert_eq!(at["sub"], sub.as_str());

    let refresh_token = response.refresh_token().expect("a refresh token");
    let refreshed = client
        .exchange_refresh_token(refresh_token)
        .unwrap()
        .request_async(&http())
        .await
        .unwrap();
    let rotated = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(rotated.secret(), refresh_token.secret());
    assert_ne!(
        refreshed.access_token().secret(),
        response.access_token().secret()
    );
    server.stop().await;
}

fn raw_jwt(id_token: &CoreIdToken) -> String {
    serde_json::to_value(id_token)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

async fn es256_id_token_is_verified_by_the_crate(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(
        &server,
        ClientRegistration {
            id_token_signed_response_alg: Some(SigningAlg::ES256),
            skip_consent: true,
            ..web_app()
        },
    )
    .await;
    let client = oidc_client(&server, &app).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new(&server);
    let login = browser.follow(browser.get(url.as_str()).await).await;
    let params = browser.login(&login, "alice", PASSWORD).await.callback();
    let response = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap();
    let id_token = response.id_token().expect("an ID token");
    assert_eq!(
        id_token.signing_alg().unwrap(),
        &CoreJwsSigningAlgorithm::EcdsaP256Sha256
    );
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert!(claims.auth_time().is_some());
    assert_eq!(
        claims.access_token_hash().expect("at_hash"),
        &AccessTokenHash::from_token(
            response.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap()
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Authorization endpoint errors.

pub(crate) fn assert_error_page(r: &Resp, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.location().is_none(), "an error page never redirects");
    assert!(
        r.header(CONTENT_TYPE).starts_with("text/html"),
        "HTML error page"
    );
}

/// An error redirect carrying `code`, the request's state and iss.
pub(crate) fn assert_redirect_error(server: &TestServer, r: &Resp, code: &str) {
    let params = r.callback();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(code),
        "{params:?}"
    );
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], server.base);
    assert!(!params.contains_key("code"));
}

async fn unknown_client_or_redirect_uri_is_a_page_not_a_redirect(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let unknown = Rp {
        id: "no-such-client".into(),
        secret: None,
    };
    let r = browser.authorize(&AuthRequest::new(&unknown)).await;
    assert_error_page(&r, StatusCode::BAD_REQUEST);
    r.assert_security_headers();
    let r = browser
        .authorize(&AuthRequest::new(&app).set("redirect_uri", "https://evil.example/cb"))
        .await;
    assert_error_page(&r, StatusCode::BAD_REQUEST);
    // Even with another error in the request, nothing goes to the bad URI.
    let r = browser
        .authorize(
            &AuthRequest::new(&app)
                .set("redirect_uri", "https://evil.example/cb")
                .set("response_type", "token"),
        )
        .await;
    assert_error_page(&r, StatusCode::BAD_REQUEST);
    server.stop().await;
}

async fn response_type_token_is_unsupported(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let r = browser
        .authorize(&AuthRequest::new(&app).set("response_type", "token"))
        .await;
    assert_redirect_error(&server, &r, "unsupported_response_type");
    server.stop().await;
}

async fn public_client_without_pkce_is_invalid_request(backend: Backend) {
    let server = start(backend).await;
    let app = rp(
        &server,
        ClientRegistration {
            public: true,
            ..web_app()
        },
    )
    .await;
    let browser = Browser::new(&server);
    let r = browser
        .authorize(
            &AuthRequest::new(&app)
                .unset("code_challenge")
                .unset("code_challenge_method"),
        )
        .await;
    assert_redirect_error(&server, &r, "invalid_request");
    server.stop().await;
}

async fn plain_pkce_is_invalid_request(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let verifier = req.verifier.clone();
    let r = browser
        .authorize(
            &req.set("code_challenge", &verifier)
                .set("code_challenge_method", "plain"),
        )
        .await;
    assert_redirect_error(&server, &r, "invalid_request");
    let r = browser
        .authorize(&AuthRequest::new(&app).set("code_challenge", "too-short"))
        .await;
    assert_redirect_error(&server, &r, "invalid_request");
    server.stop().await;
}

async fn prompt_none_signed_out_is_login_required(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert_redirect_error(&server, &r, "login_required");
    server.stop().await;
}

async fn prompt_none_without_consent_is_consent_required(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let login = browser.authorize(&AuthRequest::new(&app)).await;
    let consent = browser.login(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent());
    // Walk away from the consent page; a silent request cannot proceed.
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert_redirect_error(&server, &r, "consent_required");
    server.stop().await;
}

async fn deny_is_access_denied(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let r = browser.run(&AuthRequest::new(&app), "alice", "deny").await;
    assert_redirect_error(&server, &r, "access_denied");
    // Nothing was remembered: the next request asks again.
    let again = browser.authorize(&AuthRequest::new(&app)).await;
    assert!(again.is_consent(), "{}", again.body);
    server.stop().await;
}

async fn consent_is_remembered_unless_prompt_consent(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    browser.code(&AuthRequest::new(&app), "alice").await;
    // Within the granted scopes: straight back with a code.
    let r = browser
        .authorize(&AuthRequest::new(&app).set("scope", "openid email"))
        .await;
    assert!(r.callback().contains_key("code"));
    let r = browser.authorize(&AuthRequest::new(&app)).await;
    assert!(r.callback().contains_key("code"));
    // prompt=consent asks again.
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "consent"))
        .await;
    assert!(r.is_consent(), "{}", r.body);
    let params = browser.decide(&r, "allow").await.callback();
    assert!(params.contains_key("code"));
    server.stop().await;
}

async fn skip_consent_client_never_shows_consent(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(
        &server,
        ClientRegistration {
            skip_consent: true,
            ..web_app()
        },
    )
    .await;
    let browser = Browser::new(&server);
    let login = browser.authorize(&AuthRequest::new(&app)).await;
    let r = browser.login(&login, "alice", PASSWORD).await;
    assert!(r.callback().contains_key("code"));
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "consent"))
        .await;
    assert!(r.callback().contains_key("code"), "{}", r.body);
    server.stop().await;
}

async fn prompt_login_shows_the_login_form_when_signed_in(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    browser.code(&AuthRequest::new(&app), "alice").await;
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "login"))
        .await;
    assert!(r.is_login(), "{}", r.body);
    let r = browser.login(&r, "alice", PASSWORD).await;
    assert!(r.callback().contains_key("code"), "{}", r.body);
    server.stop().await;
}

async fn max_age_forces_reauthentication(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let first_login = server.clock.now();
    browser.code(&AuthRequest::new(&app), "alice").await;
    server.clock.advance(30);
    // Recent enough: no login form.
    let req = AuthRequest::new(&app).set("max_age", "3600");
    let code = browser.authorize(&req).await.callback()["code"].clone();
    let body = tokens(&server, &app, &req, &code).await;
    let id = payload_of(s(&body["id_token"]));
    assert_eq!(id["auth_time"].as_i64(), Some(first_login));
    // max_age=0 after time has passed: sign in again.
    let req = AuthRequest::new(&app).set("max_age", "0");
    let r = browser.authorize(&req).await;
    assert!(r.is_login(), "{}", r.body);
    let params = browser.login(&r, "alice", PASSWORD).await.callback();
    let body = tokens(&server, &app, &req, &params["code"]).await;
    let id = payload_of(s(&body["id_token"]));
    let auth_time = id["auth_time"].as_i64().expect("auth_time in the ID token");
    assert!(
        auth_time >= first_login + 30,
        "auth_time {auth_time} is the new login"
    );
    server.stop().await;
}

/// A person who has just signed in satisfies `max_age`, even when the
/// clock ticks between the login POST and the redirect back to /authorize.
async fn max_age_zero_does_not_loop_when_the_clock_ticks(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(
        &server,
        ClientRegistration {
            skip_consent: true,
            ..web_app()
        },
    )
    .await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app).set("max_age", "0");
    let page = browser.authorize(&req).await;
    assert!(page.is_login());
    let r = browser.submit_login(&page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    server.clock.advance(1);
    let r = browser.follow(r).await;
    assert!(
        !r.is_login(),
        "sent back to the login form right after signing in"
    );
    assert!(r.callback().contains_key("code"));
    server.stop().await;
}

async fn login_hint_prefills_the_username(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let r = browser
        .authorize(&AuthRequest::new(&app).set("login_hint", "bob&co\"x"))
        .await;
    assert!(r.is_login());
    assert_eq!(
        attr_after(&r.body, "name=\"username\" type=\"text\" value=\"").as_deref(),
        Some("bob&co\"x"),
        "{}",
        r.body
    );
    server.stop().await;
}

async fn wrong_password_and_unknown_user_look_the_same(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&AuthRequest::new(&app)).await;
    let wrong = browser.login(&page, "alice", "wrong password").await;
    let unknown = browser.login(&page, "mallory", "wrong password").await;
    assert_eq!(wrong.status, unknown.status);
    assert!(wrong.status.is_client_error(), "{}", wrong.status);
    assert!(wrong.is_login() && unknown.is_login());
    assert_eq!(wrong.alert(), unknown.alert());
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert_redirect_error(&server, &r, "login_required");
    server.stop().await;
}

async fn repeated_failures_lock_out_then_unlock(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.login.max_failures = 3;
        c.login.lockout_secs = 300;
    })
    .await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&AuthRequest::new(&app)).await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(browser.login(&page, "alice", "wrong password").await);
    }
    let last = last.unwrap();
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS, "{}", last.body);
    // Locked: even the right password is refused, and the page says why.
    let r = browser.login(&page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.alert().contains("Too many failed sign-in attempts"),
        "{}",
        r.alert()
    );
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert_redirect_error(&server, &r, "login_required");
    server.clock.advance(301);
    let r = browser.login(&page, "alice", PASSWORD).await;
    assert!(r.is_consent(), "unlocked after the lockout: {}", r.body);
    server.stop().await;
}

async fn login_without_valid_csrf_token_is_forbidden(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&AuthRequest::new(&app)).await;
    let action = page.action();
    let r = browser
        .post(&action, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = browser
        .post(
            &action,
            &[
                ("csrf_token", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Another browser's token does not work either.
    let other = Browser::new(&server);
    let other_page = other.authorize(&AuthRequest::new(&app)).await;
    let r = browser
        .post(
            &action,
            &[
                ("csrf_token", &other_page.csrf()),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert_redirect_error(&server, &r, "login_required");
    server.stop().await;
}

fn session_cookies(r: &Resp) -> Vec<String> {
    r.headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|c| c.starts_with("tessera_session="))
        .collect()
}

fn assert_cookie_flags(cookie: &str) {
    let lower = cookie.to_ascii_lowercase();
    assert!(lower.contains("; httponly"), "{cookie}");
    assert!(lower.contains("; samesite=lax"), "{cookie}");
    assert!(
        !lower.contains("; secure"),
        "not Secure on an http issuer: {cookie}"
    );
}

async fn session_cookie_is_httponly_and_samesite_lax(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let page = browser
        .get(&format!("/authorize?{}", AuthRequest::new(&app).query()))
        .await;
    // An anonymous visitor gets no session, only the browser-binding
    // cookie of the stored interaction.
    assert!(
        session_cookies(&page).is_empty(),
        "no session before signing in"
    );
    let binding: Vec<String> = page
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|c| c.starts_with("tessera_browser="))
        .collect();
    assert_eq!(binding.len(), 1, "the login page binds the browser");
    assert_cookie_flags(&binding[0]);
    let r = browser.submit_login(&page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let after = session_cookies(&r);
    assert_eq!(after.len(), 1, "signing in starts the session");
    assert_cookie_flags(&after[0]);
    server.stop().await;
}

async fn html_pages_carry_security_headers(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let login = browser.authorize(&AuthRequest::new(&app)).await;
    assert!(login.is_login());
    login.assert_security_headers();
    let failed = browser.login(&login, "alice", "nope").await;
    failed.assert_security_headers();
    let consent = browser.login(&login, "alice", PASSWORD).await;
    assert!(consent.is_consent());
    consent.assert_security_headers();
    let error = browser
        .authorize(&AuthRequest::new(&app).set("redirect_uri", "https://evil.example/"))
        .await;
    error.assert_security_headers();
    let logout = browser.get("/logout").await;
    assert!(logout.body.contains("value=\"logout\""), "{}", logout.body);
    logout.assert_security_headers();
    let css = browser.get("/static/tessera.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header(CONTENT_TYPE).starts_with("text/css"));
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Codes at the token endpoint.

async fn replayed_code_is_invalid_grant_and_revokes_its_tokens(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let first = tokens(&server, &app, &req, &code).await;
    let access = s(&first["access_token"]);
    let refresh_token = s(&first["refresh_token"]);
    assert!(active(&server, &app, access).await);
    assert_invalid_grant(exchange(&server, &app, &code, &req.verifier, REDIRECT).await);
    assert!(!active(&server, &app, access).await, "access token revoked");
    assert_invalid_grant(refresh(&server, &app, refresh_token, None).await);
    server.stop().await;
}

async fn expired_code_is_invalid_grant(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    server.clock.advance(61);
    assert_invalid_grant(exchange(&server, &app, &code, &req.verifier, REDIRECT).await);
    server.stop().await;
}

async fn code_bound_to_verifier_redirect_uri_and_client(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let other = rp(&server, web_app()).await;
    let browser = Browser::new(&server);

    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let wrong = AuthRequest::new(&app).verifier;
    assert_invalid_grant(exchange(&server, &app, &code, &wrong, REDIRECT).await);

    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    assert_invalid_grant(exchange(&server, &app, &code, &req.verifier, OTHER_REDIRECT).await);

    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    assert_invalid_grant(exchange(&server, &other, &code, &req.verifier, REDIRECT).await);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Refresh tokens.

async fn reused_refresh_token_revokes_the_family(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let first = tokens(&server, &app, &req, &code).await;
    let rt1 = s(&first["refresh_token"]).to_string();
    let (status, second) = refresh(&server, &app, &rt1, None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rt2 = s(&second["refresh_token"]).to_string();
    assert_ne!(rt1, rt2, "rotated");
    let (status, third) = refresh(&server, &app, &rt2, None).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let rt3 = s(&third["refresh_token"]).to_string();
    let at3 = s(&third["access_token"]).to_string();
    assert!(active(&server, &app, &at3).await);

    assert_invalid_grant(refresh(&server, &app, &rt1, None).await);
    assert!(
        !active(&server, &app, &at3).await,
        "newest access token revoked"
    );
    assert_invalid_grant(refresh(&server, &app, &rt3, None).await);
    server.stop().await;
}

async fn refresh_may_narrow_but_not_widen_scope(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app).set("scope", "openid email offline_access");
    let code = browser.code(&req, "alice").await;
    let first = tokens(&server, &app, &req, &code).await;
    let (status, narrow) = refresh(&server, &app, s(&first["refresh_token"]), Some("openid")).await;
    assert_eq!(status, StatusCode::OK, "{narrow}");
    assert_eq!(narrow["scope"], "openid");
    let (status, wide) = refresh(
        &server,
        &app,
        s(&narrow["refresh_token"]),
        Some("openid email profile"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wide}");
    assert_eq!(wide["error"], "invalid_scope");
    server.stop().await;
}

async fn no_refresh_token_without_offline_access(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app).set("scope", "openid profile");
    let code = browser.code(&req, "alice").await;
    let body = tokens(&server, &app, &req, &code).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["id_token"].is_string());
    server.stop().await;
}

// ---------------------------------------------------------------------------
// UserInfo.

async fn userinfo_returns_only_granted_claims(backend: Backend) {
    let server = start(backend).await;
    let sub = add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app).set("scope", "openid email");
    let code = browser.code(&req, "alice").await;
    let body = tokens(&server, &app, &req, &code).await;
    let at = s(&body["access_token"]);

    let get = http()
        .get(server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let get: Value = get.json().await.unwrap();
    let post = post_form(&server, "/userinfo", None, &[("access_token", at)]).await;
    assert_eq!(post.status(), StatusCode::OK);
    let post: Value = post.json().await.unwrap();
    assert_eq!(get, post);
    assert_eq!(get["sub"], sub.as_str());
    assert_eq!(get["email"], "alice@example.com");
    assert!(get.get("email_verified").is_some(), "{get}");
    for absent in ["name", "preferred_username", "updated_at"] {
        assert!(get.get(absent).is_none(), "{absent} not granted: {get}");
    }
    server.stop().await;
}

async fn userinfo_with_a_bad_token_is_401_invalid_token(backend: Backend) {
    let server = start(backend).await;
    let get = http()
        .get(server.url("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::UNAUTHORIZED);
    let challenge = get.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    let post = post_form(
        &server,
        "/userinfo",
        None,
        &[("access_token", "not-a-token")],
    )
    .await;
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    let challenge = post.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Logout.

async fn logout_with_hint_redirects_with_state_and_ends_the_session(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let body = tokens(&server, &app, &req, &code).await;
    let query = serde_urlencoded::to_string([
        ("id_token_hint", s(&body["id_token"])),
        ("post_logout_redirect_uri", LOGOUT_REDIRECT),
        ("state", "bye-1"),
    ])
    .unwrap();
    let r = browser.get(&format!("/logout?{query}")).await;
    let params = r.callback_to(LOGOUT_REDIRECT);
    assert_eq!(params["state"], "bye-1");
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert_redirect_error(&server, &r, "login_required");
    server.stop().await;
}

async fn logout_to_an_unregistered_uri_is_a_page(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let body = tokens(&server, &app, &req, &code).await;
    let query = serde_urlencoded::to_string([
        ("id_token_hint", s(&body["id_token"])),
        ("post_logout_redirect_uri", "https://evil.example/"),
        ("state", "bye-1"),
    ])
    .unwrap();
    let r = browser.get(&format!("/logout?{query}")).await;
    assert_error_page(&r, StatusCode::BAD_REQUEST);
    // Still signed in.
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert!(r.callback().contains_key("code"));
    server.stop().await;
}

async fn logout_without_hint_asks_for_confirmation(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    browser.code(&AuthRequest::new(&app), "alice").await;
    let page = browser.get("/logout").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("value=\"logout\""), "{}", page.body);
    // Only asked, not done.
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert!(r.callback().contains_key("code"));
    let csrf = page.csrf();
    let done = browser
        .post(
            &page.action(),
            &[("csrf_token", &csrf), ("decision", "logout")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let r = browser
        .authorize(&AuthRequest::new(&app).set("prompt", "none"))
        .await;
    assert_redirect_error(&server, &r, "login_required");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// form_post.

async fn form_post_response_mode_posts_code_state_and_iss(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app).set("response_mode", "form_post");
    let r = browser.run(&req, "alice", "allow").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.location().is_none());
    assert!(r.body.contains("method=\"post\""), "{}", r.body);
    assert_eq!(r.action(), REDIRECT);
    let field = |name: &str| attr_after(&r.body, &format!("name=\"{name}\" value=\""));
    let code = field("code").expect("code field");
    assert_eq!(field("state").as_deref(), Some("st-123"));
    assert_eq!(field("iss").as_deref(), Some(server.base.as_str()));
    let csp = r.header(CONTENT_SECURITY_POLICY);
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    tokens(&server, &app, &req, &code).await;
    server.stop().await;
}

crate::both_backends!(
    openidconnect_crate_completes_the_flow,
    es256_id_token_is_verified_by_the_crate,
    unknown_client_or_redirect_uri_is_a_page_not_a_redirect,
    max_age_zero_does_not_loop_when_the_clock_ticks,
    response_type_token_is_unsupported,
    public_client_without_pkce_is_invalid_request,
    plain_pkce_is_invalid_request,
    prompt_none_signed_out_is_login_required,
    prompt_none_without_consent_is_consent_required,
    deny_is_access_denied,
    consent_is_remembered_unless_prompt_consent,
    skip_consent_client_never_shows_consent,
    prompt_login_shows_the_login_form_when_signed_in,
    max_age_forces_reauthentication,
    login_hint_prefills_the_username,
    wrong_password_and_unknown_user_look_the_same,
    repeated_failures_lock_out_then_unlock,
    login_without_valid_csrf_token_is_forbidden,
    session_cookie_is_httponly_and_samesite_lax,
    html_pages_carry_security_headers,
    replayed_code_is_invalid_grant_and_revokes_its_tokens,
    expired_code_is_invalid_grant,
    code_bound_to_verifier_redirect_uri_and_client,
    reused_refresh_token_revokes_the_family,
    refresh_may_narrow_but_not_widen_scope,
    no_refresh_token_without_offline_access,
    userinfo_returns_only_granted_claims,
    userinfo_with_a_bad_token_is_401_invalid_token,
    logout_with_hint_redirects_with_state_and_ends_the_session,
    logout_to_an_unregistered_uri_is_a_page,
    logout_without_hint_asks_for_confirmation,
    form_post_response_mode_posts_code_state_and_iss,
);
