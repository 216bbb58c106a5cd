//! The device authorization grant (RFC 8628): the device's requests over
//! HTTP, the person on the `/device` page with a cookie-keeping browser
//! (the ordinary login and consent pages after it), and the `oauth2`
//! crate as a real device-flow client.

use std::sync::Arc;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, RETRY_AFTER};
use serde_json::Value;
use tessera::clock::Clock;
use tessera::oauth::client::ClientRegistration;

use crate::browser::{ALL_SCOPES, Browser, PASSWORD, Resp, Rp, add_user, attr_after, rp, start};
use crate::harness::{Backend, TestServer, http, verify_with_jwks};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const USER_CODE_LETTERS: &str = "BCDFGHJKLMNPQRSTVWXZ";

fn device_app(public: bool) -> ClientRegistration {
    ClientRegistration {
        client_name: "Living Room TV".into(),
        grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
        scope: Some(ALL_SCOPES.into()),
        public,
        ..Default::default()
    }
}

/// POSTs `form` to `path` as `rp`: HTTP Basic with a secret, else
/// `client_id` in the body (a public client).
async fn client_post(
    server: &TestServer,
    path: &str,
    rp: &Rp,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = http().post(server.url(path));
    match &rp.secret {
        Some(secret) => request = request.basic_auth(&rp.id, Some(secret)),
        None => form.push(("client_id", &rp.id)),
    }
    request.form(&form).send().await.unwrap()
}

/// A device authorization that must succeed; its JSON.
async fn start_device(server: &TestServer, rp: &Rp, scope: &str) -> Value {
    let response = client_post(server, "/device_authorization", rp, &[("scope", scope)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    response.json().await.unwrap()
}

async fn poll(server: &TestServer, rp: &Rp, device_code: &str) -> (StatusCode, Value) {
    let response = client_post(
        server,
        "/token",
        rp,
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
    .await;
    (response.status(), response.json().await.unwrap())
}

/// Polls and expects the RFC 8628 §3.5 (or RFC 6749 §5.2) error `error`.
async fn poll_fails(server: &TestServer, rp: &Rp, device_code: &str, error: &str) {
    let (status, body) = poll(server, rp, device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], error, "{body}");
}

fn device_code(started: &Value) -> &str {
    started["device_code"].as_str().unwrap()
}

fn user_code(started: &Value) -> &str {
    started["user_code"].as_str().unwrap()
}

/// Submits the code-entry form on `page` with `code` typed in.
async fn submit_code(browser: &Browser, page: &Resp, code: &str) -> Resp {
    assert!(page.body.contains("name=\"user_code\""), "{}", page.body);
    let csrf = page.csrf();
    browser
        .post(
            &page.action(),
            &[("csrf_token", &csrf), ("user_code", code)],
        )
        .await
}

/// Opens `url` (a verification URI), confirms `code`, signs in as
/// `username` when asked: the consent page.
async fn confirm(browser: &Browser, url: &str, code: &str, username: &str) -> Resp {
    let page = browser.get(url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let mut r = browser
        .follow(submit_code(browser, &page, code).await)
        .await;
    if r.is_login() {
        r = browser.login(&r, username, PASSWORD).await;
    }
    assert!(r.is_consent(), "expected the consent page: {}", r.body);
    r
}

async fn whole_flow_over_http(backend: Backend) {
    let server = start(backend).await;
    let sub = add_user(&server, "alice").await;
    let app = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, ALL_SCOPES).await;

    // RFC 8628 §3.2.
    let code = user_code(&started);
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-");
    assert!(
        code.chars()
            .filter(|c| *c != '-')
            .all(|c| USER_CODE_LETTERS.contains(c)),
        "{code}"
    );
    assert_eq!(started["verification_uri"], server.url("/device"));
    assert_eq!(
        started["verification_uri_complete"],
        server.url(&format!("/device?user_code={code}"))
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    assert!(device_code(&started).len() >= 43, "256 bits");

    // RFC 8628 §3.5: pending; polled too fast, slow_down, and the interval
    // grows: 5 s after a slow_down is still too fast.
    poll_fails(
        &server,
        &app,
        device_code(&started),
        "authorization_pending",
    )
    .await;
    poll_fails(&server, &app, device_code(&started), "slow_down").await;
    server.clock.advance(5);
    poll_fails(&server, &app, device_code(&started), "slow_down").await;
    server.clock.advance(15);
    poll_fails(
        &server,
        &app,
        device_code(&started),
        "authorization_pending",
    )
    .await;

    // The person: the complete URI fills the code in; they still confirm it.
    let browser = Browser::new(&server);
    let page = browser
        .get(started["verification_uri_complete"].as_str().unwrap())
        .await;
    page.assert_security_headers();
    assert!(
        page.body.contains("<label for=\"user_code\""),
        "{}",
        page.body
    );
    assert_eq!(
        attr_after(&page.body, "name=\"user_code\" type=\"text\" value=\"").as_deref(),
        Some(code)
    );
    let consent = confirm(
        &browser,
        started["verification_uri_complete"].as_str().unwrap(),
        code,
        "alice",
    )
    .await;
    // RFC 8628 §5.4: the consent page names the client, says that a device
    // signs in, and shows the code to compare.
    assert!(consent.body.contains("Living Room TV"), "{}", consent.body);
    assert!(consent.body.contains("device"), "{}", consent.body);
    assert!(consent.body.contains(code), "{}", consent.body);
    let done = browser.decide(&consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("return to your device"), "{}", done.body);

    // Tokens, exactly once.
    server.clock.advance(30);
    let (status, tokens) = poll(&server, &app, device_code(&started)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = verify_with_jwks(
        &server,
        tokens["access_token"].as_str().unwrap(),
        &server.base,
    )
    .await;
    assert_eq!(access["sub"], sub.as_str());
    assert_eq!(access["client_id"], app.id.as_str());
    assert!(access["grant_id"].is_string());
    let id_token = verify_with_jwks(&server, tokens["id_token"].as_str().unwrap(), &app.id).await;
    assert_eq!(id_token["aud"], app.id.as_str());
    assert_eq!(id_token["sub"], sub.as_str());
    assert!(id_token["sid"].is_string(), "{id_token}");
    assert!(id_token["auth_time"].is_i64(), "{id_token}");
    let scope = tokens["scope"].as_str().unwrap();
    assert!(scope.contains("openid") && scope.contains("offline_access"));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    poll_fails(&server, &app, device_code(&started), "invalid_grant").await;

    // The refresh token works like the code flow's.
    let refreshed = client_post(
        &server,
        "/token",
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert!(refreshed["access_token"].is_string());
    assert_ne!(refreshed["refresh_token"], refresh);

    // The approval is audited; no code is in it.
    server.state.audit.flush().await;
    let events = server
        .state
        .store
        .audit_records(&tessera::store::AuditQuery {
            kinds: Some(vec!["device.approved".into()]),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let approved = events
        .iter()
        .find(|e| e.kind == "device.approved")
        .expect("a device.approved event");
    assert_eq!(approved.client_id.as_deref(), Some(app.id.as_str()));
    assert_eq!(approved.subject.as_deref(), Some(sub.as_str()));
    assert!(!format!("{approved:?}").contains(&code.replace('-', "")));
}

async fn denial_is_access_denied(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, "openid").await;
    let browser = Browser::new(&server);
    let consent = confirm(
        &browser,
        &server.url("/device"),
        user_code(&started),
        "alice",
    )
    .await;
    let done = browser.decide(&consent, "deny").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("denied"), "{}", done.body);
    poll_fails(&server, &app, device_code(&started), "access_denied").await;
    // The answered code is no longer accepted on the page.
    let page = browser.get("/device").await;
    let again = submit_code(&browser, &page, user_code(&started)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
}

async fn expired_codes_are_expired_token_and_pruned(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, "openid").await;
    server.clock.advance(600);
    poll_fails(&server, &app, device_code(&started), "expired_token").await;
    // The page says so clearly and starts nothing.
    let browser = Browser::new(&server);
    let page = browser.get("/device").await;
    let r = submit_code(&browser, &page, user_code(&started)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("not valid or has expired"), "{}", r.body);
    let now = server.clock.now();
    assert_eq!(server.state.store.prune_device_codes(now).await.unwrap(), 1);
    poll_fails(&server, &app, device_code(&started), "invalid_grant").await;
}

/// The code expires while the person is on the consent page: allowing
/// then says so and changes nothing.
async fn a_code_expiring_during_consent_is_refused(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, "openid").await;
    let browser = Browser::new(&server);
    let consent = confirm(
        &browser,
        &server.url("/device"),
        user_code(&started),
        "alice",
    )
    .await;
    server.clock.advance(600);
    let done = browser.decide(&consent, "allow").await;
    assert_eq!(done.status, StatusCode::BAD_REQUEST, "{}", done.body);
    assert!(done.body.contains("expired"), "{}", done.body);
    poll_fails(&server, &app, device_code(&started), "expired_token").await;
}

async fn only_the_issuing_client_may_poll(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, device_app(false)).await;
    let other = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, "openid").await;
    poll_fails(&server, &other, device_code(&started), "invalid_grant").await;
    // The other client's poll changed nothing: this first poll is not
    // too fast.
    poll_fails(
        &server,
        &app,
        device_code(&started),
        "authorization_pending",
    )
    .await;
    let browser = Browser::new(&server);
    let consent = confirm(
        &browser,
        &server.url("/device"),
        user_code(&started),
        "alice",
    )
    .await;
    browser.decide(&consent, "allow").await;
    poll_fails(&server, &other, device_code(&started), "invalid_grant").await;
    let (status, body) = poll(&server, &app, device_code(&started)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn wrong_codes_are_throttled(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, "openid").await;
    let browser = Browser::new(&server);
    let page = browser.get("/device").await;
    let oversized = "B".repeat(10_000);
    let wrong = ["BBBB-BBBB", "not a code", oversized.as_str(), "CCCCCCCC"];
    for typed in wrong {
        let r = submit_code(&browser, &page, typed).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{typed:.20}: {}", r.body);
        assert!(r.body.contains("not valid or has expired"), "{}", r.body);
    }
    // login.max_failures (5) wrong codes lock the address.
    let r = submit_code(&browser, &page, "DDDD-DDDD").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("Too many wrong codes"), "{}", r.body);
    assert!(!r.headers[RETRY_AFTER].is_empty());
    // The right code is refused as well, and nothing changed.
    let r = submit_code(&browser, &page, user_code(&started)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.location().is_none());
    poll_fails(
        &server,
        &app,
        device_code(&started),
        "authorization_pending",
    )
    .await;
    // Once the lock ends, the right code works.
    server.clock.advance(301);
    let r = submit_code(&browser, &page, user_code(&started)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

async fn codes_are_case_and_dash_tolerant(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, "openid").await;
    let typed = user_code(&started).replace('-', "").to_lowercase();
    let browser = Browser::new(&server);
    let consent = confirm(&browser, &server.url("/device"), &typed, "alice").await;
    let done = browser.decide(&consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let (status, body) = poll(&server, &app, device_code(&started)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access asked"
    );
}

async fn the_code_form_needs_its_csrf_token(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, device_app(false)).await;
    let started = start_device(&server, &app, "openid").await;
    let browser = Browser::new(&server);
    browser.get("/device").await;
    let r = browser
        .post(
            "/device",
            &[("user_code", user_code(&started)), ("csrf_token", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A fresh browser without the cookie: the same.
    let r = Browser::new(&server)
        .post("/device", &[("user_code", user_code(&started))])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

async fn twenty_parallel_polls_get_one_answer(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = Arc::new(rp(&server, device_app(false)).await);
    let started = start_device(&server, &app, ALL_SCOPES).await;
    let browser = Browser::new(&server);
    let consent = confirm(
        &browser,
        &server.url("/device"),
        user_code(&started),
        "alice",
    )
    .await;
    browser.decide(&consent, "allow").await;
    let server = Arc::new(server);
    let code = device_code(&started).to_string();
    let polls = (0..20).map(|_| {
        let (server, app, code) = (server.clone(), app.clone(), code.clone());
        tokio::spawn(async move { poll(&server, &app, &code).await })
    });
    let mut ok = 0;
    for handle in polls.collect::<Vec<_>>() {
        let (status, body) = handle.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            _ => assert_eq!(body["error"], "invalid_grant", "{body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one poll gets the tokens");
}

async fn the_endpoint_checks_the_client_and_the_scope(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let machine = Rp {
        id,
        secret: Some(secret),
    };
    let r = client_post(&server, "/device_authorization", &machine, &[]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");

    let app = rp(&server, device_app(false)).await;
    let r = client_post(
        &server,
        "/device_authorization",
        &app,
        &[("scope", "openid admin")],
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope", "{body}");

    let wrong = Rp {
        id: app.id.clone(),
        secret: Some("wrong".into()),
    };
    let r = client_post(&server, "/device_authorization", &wrong, &[]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
}

/// A public client registered with the CLI (no secret, no redirect URI),
/// driven by the `oauth2` crate's device flow.
async fn public_cli_client_with_the_oauth2_crate(backend: Backend) {
    let server = start(backend).await;
    let sub = add_user(&server, "alice").await;
    let out = server.cli(&[
        "client",
        "add",
        "--name",
        "Terminal",
        "--public",
        "--grant-type",
        DEVICE_GRANT,
        "--scope",
        "openid profile",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registered: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(registered.get("client_secret").is_none());
    assert_eq!(registered["grant_types"], serde_json::json!([DEVICE_GRANT]));
    let client_id = registered["client_id"].as_str().unwrap().to_string();

    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(server.url("/device_authorization")).unwrap(),
        )
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap());
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .request_async(&http())
        .await
        .unwrap();
    let browser = Browser::new(&server);
    let uri = details
        .verification_uri_complete()
        .unwrap()
        .secret()
        .clone();
    let consent = confirm(&browser, &uri, details.user_code().secret(), "alice").await;
    browser.decide(&consent, "allow").await;
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&http(), |_| async {}, None)
        .await
        .unwrap();
    let claims = verify_with_jwks(&server, token.access_token().secret(), &server.base).await;
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());
    assert!(token.refresh_token().is_none());
}

/// RFC 7591: a device-only client registers over HTTP without a redirect
/// URI, and then gets device codes.
async fn a_device_client_registers_at_the_registration_endpoint(backend: Backend) {
    const INITIAL: &str = "initial-access-token-for-device-tests";
    let server = TestServer::start_with(backend, |c| {
        c.registration.initial_access_tokens = vec![INITIAL.into()];
    })
    .await;
    let response = http()
        .post(server.url("/register"))
        .bearer_auth(INITIAL)
        .json(&serde_json::json!({
            "client_name": "Kiosk",
            "grant_types": [DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
            "scope": "openid",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: Value = response.json().await.unwrap();
    assert_eq!(registered["grant_types"], serde_json::json!([DEVICE_GRANT]));
    assert!(registered.get("client_secret").is_none(), "{registered}");
    let kiosk = Rp {
        id: registered["client_id"].as_str().unwrap().to_string(),
        secret: None,
    };
    let started = start_device(&server, &kiosk, "openid").await;
    poll_fails(
        &server,
        &kiosk,
        device_code(&started),
        "authorization_pending",
    )
    .await;
}

/// RFC 8628 §5.4: consent given before, or a client that skips consent,
/// does not skip confirming the device: the signed-in person still gets
/// the page with the code.
async fn the_person_always_confirms_a_device(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(
        &server,
        ClientRegistration {
            skip_consent: true,
            ..device_app(false)
        },
    )
    .await;
    let browser = Browser::new(&server);
    for round in 0..2 {
        let started = start_device(&server, &app, "openid profile").await;
        // Signed in after the first round: straight to the confirmation.
        let consent = confirm(
            &browser,
            &server.url("/device"),
            user_code(&started),
            "alice",
        )
        .await;
        assert!(consent.body.contains(user_code(&started)), "round {round}");
        browser.decide(&consent, "allow").await;
        let (status, body) = poll(&server, &app, device_code(&started)).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
    }
}

crate::both_backends!(
    a_device_client_registers_at_the_registration_endpoint,
    the_person_always_confirms_a_device,
    a_code_expiring_during_consent_is_refused,
    whole_flow_over_http,
    denial_is_access_denied,
    expired_codes_are_expired_token_and_pruned,
    only_the_issuing_client_may_poll,
    wrong_codes_are_throttled,
    codes_are_case_and_dash_tolerant,
    the_code_form_needs_its_csrf_token,
    twenty_parallel_polls_get_one_answer,
    the_endpoint_checks_the_client_and_the_scope,
    public_cli_client_with_the_oauth2_crate,
);
