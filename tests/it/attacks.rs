//! Issue 7: each test is named after the attack (or the friction a real
//! client library met) it stops, and runs on both backends.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::browser::{
    AuthRequest, Browser, PASSWORD, REDIRECT, add_user, attr_after, rp, start, web_app,
};
use crate::harness::{Backend, TestServer, http, verify_with_jwks};
use crate::introspection::{post_form, token};

/// Rows of `table` in the server's database.
async fn count_rows(server: &TestServer, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if server.db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

/// 7.1: a sign-in flood is bounded: at most one hash per allowed place
/// runs, the rest wait in a short queue, and past it the answer is 503 with
/// Retry-After. Nothing else goes wrong.
async fn sign_in_flood_is_refused_with_503_past_the_hashing_queue(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.login.password_hash_concurrency = 1;
        c.login.password_hash_queue = 1;
    })
    .await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&AuthRequest::new(&app)).await;
    assert!(page.is_login());
    let (csrf, action) = (page.csrf(), browser.abs(&page.action()));
    let cookie = browser_cookie(&page);
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..24 {
        let (csrf, action, cookie) = (csrf.clone(), action.clone(), cookie.clone());
        flood.spawn(async move {
            let response = http()
                .post(&action)
                .header("cookie", cookie)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("username", format!("stranger{i}").as_str()),
                    ("password", "guess"),
                ])
                .send()
                .await
                .unwrap();
            Browser::read(response).await
        });
    }
    let answers: Vec<_> = flood.join_all().await;
    let busy: Vec<_> = answers
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(
        !busy.is_empty(),
        "24 parallel sign-ins, two places: some are refused"
    );
    for r in &answers {
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(&r.status),
            "{} {}",
            r.status,
            r.body
        );
    }
    for r in busy {
        assert_eq!(r.header("retry-after"), "1");
        assert!(
            r.is_login(),
            "the busy answer is the login page: {}",
            r.body
        );
    }
    // The queue drains: the real user still gets in afterwards.
    let r = browser.login(&page, "alice", PASSWORD).await;
    assert!(r.is_consent(), "{}", r.body);
    server.stop().await;
}

/// The `tessera_browser=…` cookie a page set, as a Cookie header value.
fn browser_cookie(page: &crate::browser::Resp) -> String {
    page.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("tessera_browser="))
        .and_then(|c| c.split(';').next())
        .expect("the page binds the browser")
        .to_string()
}

/// 7.3: a form of thousands of distinct names is refused before any work
/// (it used to cost ~200 ms of quadratic comparisons per request).
async fn form_with_thousands_of_parameter_names_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let names: Vec<String> = (0..12_000).map(|i| format!("{i:x}")).collect();
    let body = format!("grant_type=client_credentials&{}", names.join("&"));
    assert!(body.len() < 64 * 1024);
    let response = http()
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    server.stop().await;
}

/// Reads until the server closes the connection; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&received).into_owned()
}

/// 7.4: idle, half-sent-header and half-sent-body connections are closed
/// after the configured timeouts instead of being held for minutes.
async fn slow_and_idle_connections_are_closed(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.http.header_read_timeout_secs = 1;
        c.http.body_read_timeout_secs = 1;
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();

    let mut idle = TcpStream::connect(&addr).await.unwrap();
    read_until_closed(&mut idle).await;

    let mut half_header = TcpStream::connect(&addr).await.unwrap();
    half_header
        .write_all(b"GET /jwks HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    read_until_closed(&mut half_header).await;

    let mut half_body = TcpStream::connect(&addr).await.unwrap();
    half_body
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut half_body).await;
    assert!(
        answer.is_empty() || !answer.starts_with("HTTP/1.1 200"),
        "a half-sent body got: {answer}"
    );

    // An idle keep-alive connection is closed too, after its response.
    let mut keep_alive = TcpStream::connect(&addr).await.unwrap();
    keep_alive
        .write_all(b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut keep_alive).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
}

/// 7.5: anonymous visitors write no session row (a flood of GET /authorize
/// used to store one 24-hour session each).
async fn anonymous_visitors_create_no_sessions(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, web_app()).await;
    for _ in 0..5 {
        let r = Browser::new(&server)
            .authorize(&AuthRequest::new(&app))
            .await;
        assert!(r.is_login());
    }
    assert_eq!(count_rows(&server, "sessions").await, 0);
    server.stop().await;
}

/// 7.12: the request id is always the server's: a client-sent one is not
/// echoed into the logs or the response.
async fn client_sent_request_id_is_replaced(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = http()
        .get(server.url("/jwks"))
        .header("x-request-id", "forged-id")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "forged-id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    server.stop().await;
}

/// 7.8: RFC 7662 §4: a confidential client that is neither the token's
/// client nor in its audience learns nothing about it.
async fn unrelated_client_cannot_introspect_a_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (owner, owner_secret) = server.machine_client("read").await;
    let (other, other_secret) = server.machine_client("read").await;
    let jwt = token(&server, &owner, &owner_secret).await;
    let body: Value = post_form(
        &server,
        "/introspect",
        Some((&other, &other_secret)),
        &[("token", &jwt)],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body, serde_json::json!({ "active": false }));
    let body: Value = post_form(
        &server,
        "/introspect",
        Some((&owner, &owner_secret)),
        &[("token", &jwt)],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["active"], true, "{body}");
    server.stop().await;
}

/// 7.14: a client with a secret may send it by Basic or in the body,
/// whatever it registered (openid-client posts, requests-oauthlib uses
/// Basic); a 401 carries `WWW-Authenticate: Basic` only when the client
/// used the Authorization header.
async fn secret_clients_may_use_basic_or_post(backend: Backend) {
    let server = TestServer::start(backend).await;
    for registered in ["client_secret_basic", "client_secret_post"] {
        let (client, secret) = server
            .register(tessera::oauth::client::ClientRegistration {
                client_name: "either".into(),
                token_endpoint_auth_method: Some(registered.into()),
                scope: Some("read".into()),
                ..Default::default()
            })
            .await;
        let (id, secret) = (client.client_id, secret.unwrap());
        let basic = post_form(
            &server,
            "/token",
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(basic.status(), StatusCode::OK, "{registered} by Basic");
        let post = post_form(
            &server,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(post.status(), StatusCode::OK, "{registered} by post");

        let wrong_post = post_form(
            &server,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
            ],
        )
        .await;
        assert_eq!(wrong_post.status(), StatusCode::UNAUTHORIZED);
        assert!(
            wrong_post.headers().get(WWW_AUTHENTICATE).is_none(),
            "no challenge without the header"
        );
        let body: Value = wrong_post.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        let wrong_basic = post_form(
            &server,
            "/token",
            Some((&id, "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(wrong_basic.status(), StatusCode::UNAUTHORIZED);
        assert!(
            wrong_basic.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    server.stop().await;
}

/// 7.15: `response_type=id_token` by form_post (express-openid-connect's
/// default): sign-in only, nonce required, and still no access token in
/// the front channel.
async fn id_token_response_type_signs_in_by_form_post(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(
        &server,
        tessera::oauth::client::ClientRegistration {
            client_name: "express".into(),
            redirect_uris: vec![REDIRECT.into()],
            response_types: vec!["id_token".into()],
            ..Default::default()
        },
    )
    .await;
    let browser = Browser::new(&server);
    let req = AuthRequest::new(&app)
        .set("response_type", "id_token")
        .set("response_mode", "form_post")
        .set("scope", "openid profile")
        .unset("code_challenge")
        .unset("code_challenge_method");
    let r = browser.run(&req, "alice", "allow").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.action(), REDIRECT);
    let field = |name: &str| attr_after(&r.body, &format!("name=\"{name}\" value=\""));
    assert_eq!(field("code"), None, "no code");
    assert_eq!(
        field("access_token"),
        None,
        "no access token in the front channel"
    );
    assert_eq!(field("state").as_deref(), Some("st-123"));
    let id_token = field("id_token").expect("an id_token field");
    let claims = verify_with_jwks(&server, &id_token, &app.id).await;
    assert_eq!(claims["nonce"], "n-123");
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims.get("at_hash").is_none(), "{claims}");

    // Without form_post, without a nonce, or for a code-only client: refused.
    let r = browser
        .authorize(&req_of(&app).set("response_mode", "query"))
        .await;
    assert_eq!(r.callback()["error"], "invalid_request");
    let r = browser.authorize(&req_of(&app).unset("nonce")).await;
    let field = |name: &str| attr_after(&r.body, &format!("name=\"{name}\" value=\""));
    assert_eq!(
        field("error").as_deref(),
        Some("invalid_request"),
        "{}",
        r.body
    );
    let code_client = rp(&server, web_app()).await;
    let r = browser
        .authorize(
            &AuthRequest::new(&code_client)
                .set("response_type", "id_token")
                .set("response_mode", "form_post"),
        )
        .await;
    let field = |name: &str| attr_after(&r.body, &format!("name=\"{name}\" value=\""));
    assert_eq!(
        field("error").as_deref(),
        Some("unauthorized_client"),
        "{}",
        r.body
    );
    server.stop().await;
}

fn req_of(app: &crate::browser::Rp) -> AuthRequest {
    AuthRequest::new(app)
        .set("scope", "openid")
        .set("response_type", "id_token")
        .set("response_mode", "form_post")
        .unset("code_challenge")
        .unset("code_challenge_method")
}

/// 7.2: 32 people signing in at once from one address (an office behind
/// NAT) all get through the login page.
async fn office_behind_one_address_signs_in_at_once(backend: Backend) {
    let server = start(backend).await;
    let app = rp(&server, web_app()).await;
    let mut people = tokio::task::JoinSet::new();
    for n in 0..32 {
        let name = format!("person{n}");
        add_user(&server, &name).await;
        let page = Browser::new(&server)
            .authorize(&AuthRequest::new(&app))
            .await;
        let (csrf, action, cookie) = (
            page.csrf(),
            format!("{}{}", server.base, page.action()),
            browser_cookie(&page),
        );
        people.spawn(async move {
            let response = http()
                .post(&action)
                .header("cookie", cookie)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("username", name.as_str()),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            response.status()
        });
    }
    for status in people.join_all().await {
        assert_eq!(status, StatusCode::SEE_OTHER, "every sign-in succeeds");
    }
    server.stop().await;
}

crate::both_backends!(
    office_behind_one_address_signs_in_at_once,
    id_token_response_type_signs_in_by_form_post,
    sign_in_flood_is_refused_with_503_past_the_hashing_queue,
    form_with_thousands_of_parameter_names_is_refused,
    slow_and_idle_connections_are_closed,
    anonymous_visitors_create_no_sessions,
    client_sent_request_id_is_replaced,
    unrelated_client_cannot_introspect_a_token,
    secret_clients_may_use_basic_or_post,
);
