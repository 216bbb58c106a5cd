//! Pushed authorization requests (RFC 9126, issue 10.2): the client posts
//! its parameters to `/par`, the browser brings only the `request_uri` to
//! `/authorize`; the URI is single use, bound to its client and short
//! lived, and a client (or the server) may require pushed requests.

use reqwest::StatusCode;
use reqwest::header::CACHE_CONTROL;
use serde_json::{Value, json};
use tessera::oauth::client::ClientRegistration;

use crate::browser::{
    self, AuthRequest, Browser, PASSWORD, Rp, add_user, assert_error_page, assert_redirect_error,
    rp, web_app,
};
use crate::harness::{Backend, TestServer, http};
use crate::introspection::post_form;
use crate::resources::count;

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// POSTs `form` to /par as `client` (HTTP Basic for a confidential one,
/// `client_id` alone for a public one).
async fn push(server: &TestServer, client: &Rp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    let auth = match client.secret.as_deref() {
        Some(secret) => Some((client.id.as_str(), secret)),
        None => {
            if !form.iter().any(|(name, _)| *name == "client_id") {
                form.push(("client_id", client.id.as_str()));
            }
            None
        }
    };
    let response = post_form(server, "/par", auth, &form).await;
    let status = response.status();
    if status == StatusCode::CREATED {
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }
    (status, response.json().await.unwrap())
}

/// Pushes `req`, which must be accepted; the request_uri.
async fn pushed(server: &TestServer, client: &Rp, req: &AuthRequest) -> String {
    let (status, body) = push(server, client, &req.pairs()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with(PREFIX), "{uri}");
    uri
}

fn authorize_url(client: &Rp, request_uri: &str) -> String {
    format!(
        "/authorize?{}",
        serde_urlencoded::to_string([
            ("client_id", client.id.as_str()),
            ("request_uri", request_uri)
        ])
        .unwrap()
    )
}

/// The whole code flow through /par: sign-in, consent, code, tokens.
async fn a_pushed_request_signs_in_like_any_other(backend: Backend) {
    let server = browser::start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let req = AuthRequest::new(&app);
    let request_uri = pushed(&server, &app, &req).await;

    let browser = Browser::new(&server);
    let page = browser.get(&authorize_url(&app, &request_uri)).await;
    let page = browser.login(&page, "alice", PASSWORD).await;
    let done = browser.decide(&page, "allow").await;
    // The response goes to the redirect URI that was pushed, with the
    // pushed state and the issuer (RFC 9207).
    let params = done.callback();
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], server.base);
    let tokens = browser::tokens(&server, &app, &req, &params["code"]).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");

    // Used once: the same URI again is an error page, never a redirect.
    let again = Browser::new(&server)
        .get(&authorize_url(&app, &request_uri))
        .await;
    assert_error_page(&again, StatusCode::BAD_REQUEST);

    // Query parameters beside the request_uri are ignored (RFC 9126 §4):
    // the pushed state wins over one added in the browser.
    let request_uri = pushed(&server, &app, &req).await;
    let tampered = format!(
        "{}&state=evil&scope=openid",
        authorize_url(&app, &request_uri)
    );
    let done = browser.get(&tampered).await;
    let done = if done.is_consent() {
        browser.decide(&done, "allow").await
    } else {
        done
    };
    assert_eq!(done.callback()["state"], "st-123");

    // A public client pushes with its client_id alone.
    let spa = rp(
        &server,
        ClientRegistration {
            public: true,
            ..web_app()
        },
    )
    .await;
    let req = AuthRequest::new(&spa);
    let request_uri = pushed(&server, &spa, &req).await;
    let page = browser.get(&authorize_url(&spa, &request_uri)).await;
    assert!(page.is_consent(), "{}", page.body);
    server.stop().await;
}

/// Another client's, an expired and a racing request_uri.
async fn request_uris_are_bound_single_use_and_short_lived(backend: Backend) {
    let server = browser::start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let other = rp(&server, web_app()).await;
    let req = AuthRequest::new(&app);

    // Another client cannot use it, and trying does not use it up.
    let request_uri = pushed(&server, &app, &req).await;
    let browser = Browser::new(&server);
    let stolen = browser.get(&authorize_url(&other, &request_uri)).await;
    assert_error_page(&stolen, StatusCode::BAD_REQUEST);
    let page = browser.get(&authorize_url(&app, &request_uri)).await;
    assert!(page.is_login(), "{}", page.body);

    // 60 seconds, by the server's clock.
    let request_uri = pushed(&server, &app, &req).await;
    server.clock.advance(61);
    let late = browser.get(&authorize_url(&app, &request_uri)).await;
    assert_error_page(&late, StatusCode::BAD_REQUEST);

    // Twenty browsers race with one URI: exactly one gets on.
    let request_uri = pushed(&server, &app, &req).await;
    let url = server.url(&authorize_url(&app, &request_uri));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            http().get(url).send().await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );

    // A request_uri that is not /par's is refused (no fetching of URLs).
    let foreign = req
        .set("request_uri", "https://attacker.example.com/request.jwt")
        .set("redirect_uri", browser::REDIRECT);
    let refused = browser.authorize(&foreign).await;
    assert_redirect_error(&server, &refused, "request_uri_not_supported");
    server.stop().await;
}

/// /par validates exactly as /authorize does, but answers JSON.
async fn par_refuses_what_authorize_refuses(backend: Backend) {
    let server = browser::start(backend).await;
    let app = rp(&server, web_app()).await;
    let req = AuthRequest::new(&app);
    let cases: Vec<(AuthRequest, StatusCode, &str)> = vec![
        (
            AuthRequest::new(&app).set("redirect_uri", "https://evil.example.com/cb"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            AuthRequest::new(&app).set("scope", "openid admin"),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            AuthRequest::new(&app).set("response_type", "token"),
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
        ),
        (
            AuthRequest::new(&app).set("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            AuthRequest::new(&app).set("client_id", "someone-else"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            AuthRequest::new(&app).set("code_challenge_method", "plain"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (bad, status, code) in cases {
        let (got, body) = push(&server, &app, &bad.pairs()).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    // A confidential client must authenticate; a wrong secret is 401.
    let response = post_form(&server, "/par", None, &req.pairs()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post_form(&server, "/par", Some((&app.id, "wrong")), &req.pairs()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // A public client without PKCE.
    let spa = rp(
        &server,
        ClientRegistration {
            public: true,
            ..web_app()
        },
    )
    .await;
    let no_pkce = AuthRequest::new(&spa)
        .unset("code_challenge")
        .unset("code_challenge_method");
    let (status, body) = push(&server, &spa, &no_pkce.pairs()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    // Nothing was stored for any of them.
    let stored = count(
        &server,
        "SELECT COUNT(*) FROM pushed_authorization_requests",
    )
    .await;
    assert_eq!(stored, 0);
    server.stop().await;
}

/// A client registered with `require_pushed_authorization_requests`, or
/// every client under `par.required`, must push.
async fn pushed_requests_can_be_required(backend: Backend) {
    let server = browser::start(backend).await;
    add_user(&server, "alice").await;
    let strict = rp(
        &server,
        ClientRegistration {
            require_pushed_authorization_requests: true,
            ..web_app()
        },
    )
    .await;
    let relaxed = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let front = browser.authorize(&AuthRequest::new(&strict)).await;
    assert_redirect_error(&server, &front, "invalid_request");
    let request_uri = pushed(&server, &strict, &AuthRequest::new(&strict)).await;
    let page = browser.get(&authorize_url(&strict, &request_uri)).await;
    assert!(page.is_login(), "{}", page.body);
    let page = browser.authorize(&AuthRequest::new(&relaxed)).await;
    assert!(page.is_login(), "{}", page.body);

    // The CLI and /register set it; the client information shows it.
    let out = server.cli(&[
        "client",
        "add",
        "--name",
        "bank",
        "--redirect-uri",
        browser::REDIRECT,
        "--require-par",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["require_pushed_authorization_requests"], true);

    // Discovery advertises the endpoint, and the server-wide switch.
    let metadata: Value =
        crate::harness::get_json(&server, "/.well-known/openid-configuration").await;
    assert_eq!(
        metadata["pushed_authorization_request_endpoint"],
        json!(server.url("/par"))
    );
    assert_eq!(metadata["require_pushed_authorization_requests"], false);
    assert_eq!(metadata["request_uri_parameter_supported"], false);
    server.stop().await;

    let server = TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.par.required = true;
    })
    .await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let front = browser.authorize(&AuthRequest::new(&app)).await;
    assert_redirect_error(&server, &front, "invalid_request");
    let request_uri = pushed(&server, &app, &AuthRequest::new(&app)).await;
    let page = browser.get(&authorize_url(&app, &request_uri)).await;
    assert!(page.is_login(), "{}", page.body);
    let metadata: Value =
        crate::harness::get_json(&server, "/.well-known/openid-configuration").await;
    assert_eq!(metadata["require_pushed_authorization_requests"], true);
    server.stop().await;
}

crate::both_backends!(
    a_pushed_request_signs_in_like_any_other,
    request_uris_are_bound_single_use_and_short_lived,
    par_refuses_what_authorize_refuses,
    pushed_requests_can_be_required,
);
