//! Review findings, each pinned by a test: bad input that must stay a 4xx
//! on PostgreSQL, hints and consent edge cases, refresh-token privacy,
//! revocation of a rotated refresh token, RFC 6750 challenges and CORS.

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;
use tessera::clock::Clock;
use tessera::oauth::client::ClientRegistration;

use crate::browser::{
    AuthRequest, Browser, PASSWORD, REDIRECT, Rp, add_user, exchange, rp, start, token_request,
    web_app,
};
use crate::harness::{Backend, TestServer, eventually, http};
use crate::introspection::{introspect, kid_of, post_form, token};

async fn start_with_grace(backend: Backend, grace: i64) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.tokens.refresh_grace_secs = grace;
    })
    .await
}

/// Alice signs in and consents in a fresh browser; the token response.
async fn alice_tokens(server: &TestServer, app: &Rp) -> Value {
    let browser = Browser::new(server);
    let req = AuthRequest::new(app);
    let code = browser.code(&req, "alice").await;
    let (status, tokens) = exchange(server, app, &code, &req.verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn refresh_grace_window_lets_racing_refreshes_both_succeed(backend: Backend) {
    let server = start_with_grace(backend, 30).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let first = alice_tokens(&server, &app).await;
    let old = first["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old.as_str()),
    ];
    let (a, b) = tokio::join!(
        token_request(&server, &app, &form),
        token_request(&server, &app, &form)
    );
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
    // Issue 7.9: both get the one successor, never two live branches.
    assert_eq!(a.1["refresh_token"], b.1["refresh_token"]);
    // Past the window the old token counts as reuse: the family is revoked.
    server.clock.advance(31);
    let (status, body) = token_request(&server, &app, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let newest = [
        ("grant_type", "refresh_token"),
        ("refresh_token", a.1["refresh_token"].as_str().unwrap()),
    ];
    assert_eq!(
        token_request(&server, &app, &newest).await.0,
        StatusCode::BAD_REQUEST
    );
}

async fn nul_bytes_and_junk_ids_are_client_errors(backend: Backend) {
    let server = start(backend).await;
    for (auth, body) in [
        (
            None,
            "grant_type=client_credentials&client_id=%00&client_secret=x",
        ),
        (None, "grant_type=client_credentials&client_id=a%00b"),
        (Some(("a\0b", "x")), "grant_type=client_credentials"),
    ] {
        let mut req = http()
            .post(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = auth {
            req = req.basic_auth(id, Some(secret));
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_client_error(), "{body}: {status}");
    }
    let long_id = "x".repeat(20_000);
    let r = post_form(
        &server,
        "/token",
        Some((&long_id, "s")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for query in [
        "client_id=%00",
        "client_id=abc&nonce=%00",
        "response_type=code&client_id=a%00",
    ] {
        let r = http()
            .get(server.url(&format!("/authorize?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(r.headers().get("location").is_none());
    }
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let r = browser
        .authorize(&AuthRequest::new(&app).set("nonce", &"n".repeat(600)))
        .await;
    assert_eq!(r.callback()["error"], "invalid_request");
}

async fn id_token_hint_for_another_user_is_not_answered_silently(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    add_user(&server, "bob").await;
    let app = rp(&server, web_app()).await;
    // Alice signs in and gets an ID token.
    let alice = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = alice.code(&req, "alice").await;
    let (_, tokens) = exchange(
        &server,
        &app,
        &code,
        &req.verifier,
        crate::browser::REDIRECT,
    )
    .await;
    let alice_hint = tokens["id_token"].as_str().unwrap().to_string();
    // Bob is signed in on another browser that carries Alice's hint.
    let bob = Browser::new(&server);
    bob.code(&AuthRequest::new(&app), "bob").await;
    let r = bob
        .authorize(
            &AuthRequest::new(&app)
                .set("prompt", "none")
                .set("id_token_hint", &alice_hint),
        )
        .await;
    assert_eq!(r.callback()["error"], "login_required");
    // Without prompt=none Bob's browser is asked to sign in (as Alice).
    let r = bob
        .authorize(&AuthRequest::new(&app).set("id_token_hint", &alice_hint))
        .await;
    assert!(r.is_login());
    // The matching hint is answered silently; a forged one is refused.
    let r = alice
        .authorize(
            &AuthRequest::new(&app)
                .set("prompt", "none")
                .set("id_token_hint", &alice_hint),
        )
        .await;
    assert!(r.callback().contains_key("code"));
    let r = alice
        .authorize(&AuthRequest::new(&app).set("id_token_hint", "e30.e30.x"))
        .await;
    assert_eq!(r.callback()["error"], "invalid_request");
}

async fn empty_scope_still_needs_consent(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(
        &server,
        ClientRegistration {
            scope: Some(String::new()),
            ..web_app()
        },
    )
    .await;
    let browser = Browser::new(&server);
    let r = browser
        .authorize(&AuthRequest::new(&app).unset("scope"))
        .await;
    let r = browser.login(&r, "alice", PASSWORD).await;
    assert!(
        r.is_consent(),
        "a new client is approved by the person: {}",
        r.body
    );
    let r = browser.decide(&r, "allow").await;
    assert!(r.callback().contains_key("code"));
    // Remembered now.
    let r = browser
        .authorize(&AuthRequest::new(&app).unset("scope"))
        .await;
    assert!(r.callback().contains_key("code"));
}

async fn refresh_tokens_are_private_to_their_client(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let other = rp(&server, web_app()).await;
    let tokens = alice_tokens(&server, &app).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let own = introspect(&server, &app.id, app.secret.as_deref().unwrap(), refresh).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["token_type"], "refresh_token");
    let foreign = introspect(
        &server,
        &other.id,
        other.secret.as_deref().unwrap(),
        refresh,
    )
    .await;
    assert_eq!(foreign, serde_json::json!({"active": false}));
}

async fn revoking_a_rotated_refresh_token_revokes_the_family(backend: Backend) {
    let server = start_with_grace(backend, 60).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let first = alice_tokens(&server, &app).await;
    let old = first["refresh_token"].as_str().unwrap().to_string();
    let (status, second) = token_request(
        &server,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &old)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The old token is inside the grace window; revoking it ends everything.
    let r = post_form(
        &server,
        "/revoke",
        Some((&app.id, app.secret.as_deref().unwrap())),
        &[("token", &old)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let newest = second["refresh_token"].as_str().unwrap();
    let (status, body) = token_request(
        &server,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", newest)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let access = second["access_token"].as_str().unwrap();
    let info = introspect(&server, &app.id, app.secret.as_deref().unwrap(), access).await;
    assert_eq!(info["active"], false);
}

async fn userinfo_with_another_scheme_gets_a_bare_challenge(backend: Backend) {
    let server = start(backend).await;
    let r = http()
        .get(server.url("/userinfo"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer", "RFC 6750 §3.1");
}

async fn browser_clients_may_call_the_api_cross_origin(backend: Backend) {
    let server = start(backend).await;
    let r = http()
        .request(reqwest::Method::OPTIONS, server.url("/token"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = http()
        .get(server.url("/.well-known/openid-configuration"))
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let _: Value = r.json().await.unwrap();
}

async fn ended_grants_and_login_counters_are_pruned(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.tokens.refresh_token_absolute_ttl_secs = 1000;
    })
    .await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let tokens = alice_tokens(&server, &app).await;
    let refresh_hash = tessera::crypto::hash_secret(tokens["refresh_token"].as_str().unwrap());
    let store = &server.state.store;
    let keep = server.state.config.longest_token_lifetime();
    let now = server.clock.now();
    assert_eq!(store.prune_grants(now, keep).await.unwrap(), 0);
    // The grant ends at +1000 s; its access tokens may live an hour longer.
    assert_eq!(
        store
            .prune_grants(now + 1000 + keep - 1, keep)
            .await
            .unwrap(),
        0
    );
    assert!(
        store.refresh_token(&refresh_hash).await.unwrap().is_none(),
        "expired"
    );
    assert_eq!(
        store.prune_grants(now + 1000 + keep, keep).await.unwrap(),
        1
    );

    let key = "user:pruned";
    store.count_login_attempt(key, now, 900).await.unwrap();
    assert_eq!(store.prune_login_failures(now + 899, 900).await.unwrap(), 0);
    // Alice's sign-in counted nothing; it left only the record that her
    // address is known, which lives on (login.known_address_secs).
    assert_eq!(store.prune_login_failures(now + 900, 900).await.unwrap(), 1);
    assert!(store.login_failures(key).await.unwrap().is_none());
}

async fn racing_code_exchanges_never_leave_usable_tokens(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let exchanges = (0..6).map(|_| exchange(&server, &app, &code, &req.verifier, REDIRECT));
    let results = futures_join_all(exchanges).await;
    // At most one exchange may be answered with tokens; every other one is a
    // replay (RFC 6749 §4.1.2), which also revokes what the winner got, so
    // nothing issued from the raced code stays usable.
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, body)| body)
        .collect();
    assert!(winners.len() <= 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }
    for tokens in winners {
        let access = tokens["access_token"].as_str().unwrap();
        let info = introspect(&server, &app.id, app.secret.as_deref().unwrap(), access).await;
        assert_eq!(info["active"], false);
    }
}

/// Runs the futures concurrently on the test runtime.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<T>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

async fn session_cookie_is_secure_for_an_https_issuer(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.issuer = "https://login.example.com".into();
    })
    .await;
    let app = rp(&server, web_app()).await;
    let r = Browser::new(&server)
        .authorize(&AuthRequest::new(&app))
        .await;
    assert!(r.is_login());
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
}

/// RFC 6797: an https issuer sends Strict-Transport-Security on every
/// response (pages, JSON endpoints, errors); a plain-http one does not.
async fn an_https_issuer_sends_strict_transport_security(backend: Backend) {
    let https = TestServer::start_with(backend, |c| {
        c.issuer = "https://login.example.com".into();
    })
    .await;
    for path in [
        "/jwks",
        "/healthz",
        "/no-such-page",
        "/.well-known/openid-configuration",
    ] {
        let response = http().get(https.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    let plain = TestServer::start(backend).await;
    let response = http().get(plain.url("/jwks")).send().await.unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

async fn refresh_tokens_expire_when_idle_and_at_the_grant_end(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.tokens.refresh_token_idle_ttl_secs = 100;
        c.tokens.refresh_token_absolute_ttl_secs = 250;
    })
    .await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let refresh = |token: String| {
        let (server, app) = (&server, &app);
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            token_request(server, app, &form).await
        }
    };
    // Idle: unused for longer than the idle lifetime.
    let idle = alice_tokens(&server, &app).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Active: used every 90 s, it still ends with the grant at 250 s.
    let mut active = alice_tokens(&server, &app).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        server.clock.advance(90);
        let (status, body) = refresh(active).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        active = body["refresh_token"].as_str().unwrap().to_string();
    }
    let (status, body) = refresh(idle).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    server.clock.advance(71);
    let (status, body) = refresh(active).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

async fn code_verifier_without_a_challenge_is_a_downgrade(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app)
        .unset("code_challenge")
        .unset("code_challenge_method");
    // A confidential client may skip PKCE, but a verifier at the token
    // endpoint for a code issued without a challenge is refused (RFC 9700).
    let code = browser.code(&req, "alice").await;
    let (status, body) = exchange(&server, &app, &code, &req.verifier, REDIRECT).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

async fn consent_page_describes_configured_scopes(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.scopes
            .insert("billing:write".into(), "Change your billing details".into());
    })
    .await;
    add_user(&server, "alice").await;
    let app = rp(
        &server,
        ClientRegistration {
            scope: Some("openid billing:write reports:read".into()),
            ..web_app()
        },
    )
    .await;
    let browser = Browser::new(&server);
    let r = browser
        .authorize(&AuthRequest::new(&app).set("scope", "openid billing:write reports:read"))
        .await;
    let r = browser.login(&r, "alice", PASSWORD).await;
    assert!(r.is_consent());
    assert!(r.body.contains("Change your billing details"), "{}", r.body);
    // An undescribed scope is shown by its name.
    assert!(r.body.contains("reports:read"));
    assert!(
        r.body.contains("Confirm who you are"),
        "openid has a built-in description"
    );
    // Configured scopes are advertised in discovery too.
    let doc: Value = crate::harness::get_json(&server, "/.well-known/openid-configuration").await;
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"billing:write".into())
    );
}

async fn the_server_rotates_keys_on_its_own_schedule(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.keys.check_interval_secs = 1).await;
    let (id, secret) = server.machine_client("read").await;
    let before = kid_of(&token(&server, &id, &secret).await);
    let next = server
        .state
        .store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| {
            k.alg == tessera::jose::SigningAlg::RS256 && k.state == tessera::jose::KeyState::Next
        })
        .unwrap()
        .kid;
    // Nobody calls rotate_keys: the background schedule must notice.
    server.clock.advance(31 * 86_400);
    eventually("the schedule rotates the keys", || {
        let (server, id, secret, before) = (&server, &id, &secret, &before);
        async move { kid_of(&token(server, id, secret).await) != *before }
    })
    .await;
    assert_eq!(kid_of(&token(&server, &id, &secret).await), next);
}

crate::both_backends!(
    session_cookie_is_secure_for_an_https_issuer,
    an_https_issuer_sends_strict_transport_security,
    refresh_tokens_expire_when_idle_and_at_the_grant_end,
    code_verifier_without_a_challenge_is_a_downgrade,
    consent_page_describes_configured_scopes,
    the_server_rotates_keys_on_its_own_schedule,
    racing_code_exchanges_never_leave_usable_tokens,
    ended_grants_and_login_counters_are_pruned,
    refresh_grace_window_lets_racing_refreshes_both_succeed,
    nul_bytes_and_junk_ids_are_client_errors,
    id_token_hint_for_another_user_is_not_answered_silently,
    empty_scope_still_needs_consent,
    refresh_tokens_are_private_to_their_client,
    revoking_a_rotated_refresh_token_revokes_the_family,
    userinfo_with_another_scheme_gets_a_bare_challenge,
    browser_clients_may_call_the_api_cross_origin,
);
