//! Issue 7, revocation that users expect: deleting a client (7.6),
//! changing a password (7.7), and refreshes racing within the grace window
//! (7.9). Each test is named after what it stops, and runs on both
//! backends.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, SET_COOKIE};
use serde_json::Value;
use tessera::clock::Clock;
use tessera::config::Config;
use tessera::crypto::random_token;
use tessera::oauth::client::{self, ClientRegistration};

use crate::browser::{
    self, AuthRequest, Browser, PASSWORD, REDIRECT, Rp, add_user, exchange, rp, token_request,
    web_app,
};
use crate::harness::{Backend, TestServer, cli_on, http};
use crate::introspection::{introspect, payload_of, token};

// ---------------------------------------------------------------------------
// Helpers

/// The resource server's client id, which is also the `aud` of every
/// access token (`tokens.audience`): RFC 7662 §4 lets it introspect any
/// of them, whoever they were issued to.
const RESOURCE_SERVER: &str = "resource-server";

/// Two instances on one database, as behind a load balancer, whose client
/// caches are never refreshed during the test: what they see of a deleted
/// client they can only learn from the store itself.
async fn two_instances(backend: Backend) -> (TestServer, TestServer) {
    fn configure(c: &mut Config) {
        c.login.failure_delay_ms = 0;
        c.tokens.audience = Some(RESOURCE_SERVER.into());
        c.cache.refresh_interval_ms = 3_600_000;
    }
    let first = TestServer::start_with(backend, configure).await;
    let issuer = first.base.clone();
    let second = TestServer::start_on(first.db.clone(), first.clock.clone(), move |c| {
        configure(c);
        c.issuer = issuer;
    })
    .await;
    (first, second)
}

/// Registers the resource server as a confidential client; its secret.
async fn register_resource_server(server: &TestServer) -> String {
    let (mut client, secret) = client::register(
        ClientRegistration {
            client_name: "API".into(),
            ..Default::default()
        },
        server.clock.now(),
    )
    .unwrap();
    client.client_id = RESOURCE_SERVER.into();
    server.state.store.insert_client(&client).await.unwrap();
    secret.unwrap()
}

/// Whether `token` is active, asked by the resource server.
async fn active_for_api(server: &TestServer, api_secret: &str, token: &str) -> bool {
    let body = introspect(server, RESOURCE_SERVER, api_secret, token).await;
    match &body["active"] {
        Value::Bool(true) => true,
        Value::Bool(false) => {
            assert_eq!(body, serde_json::json!({"active": false}));
            false
        }
        _ => panic!("no boolean `active`: {body}"),
    }
}

/// The status of GET /userinfo with `token`.
async fn userinfo_status(server: &TestServer, token: &str) -> StatusCode {
    http()
        .get(server.url("/userinfo"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Signs `username` in with `browser` and exchanges the code: the token
/// response (access, ID and refresh token).
async fn sign_in(server: &TestServer, app: &Rp, browser: &Browser, username: &str) -> Value {
    let req = AuthRequest::new(app);
    let code = browser.code(&req, username).await;
    let (status, body) = exchange(server, app, &code, &req.verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh(server: &TestServer, app: &Rp, refresh_token: &str) -> (StatusCode, Value) {
    token_request(
        server,
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn assert_invalid_grant((status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

/// The first column of the first row of `sql` (a count), with `args`
/// bound to `$1`, `$2`, …, read straight from the server's database.
async fn count(server: &TestServer, sql: &str, args: &[&str]) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if server.db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        let mut query = sqlx::query_scalar(sql);
        for arg in args {
            query = query.bind(*arg);
        }
        let n = query.fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        let mut query = sqlx::query_scalar(sql);
        for arg in args {
            query = query.bind(*arg);
        }
        let n = query.fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

/// The `data` column of every session row.
async fn session_data(server: &TestServer) -> Vec<Vec<u8>> {
    let sql = "SELECT data FROM sessions";
    if server.db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

// ---------------------------------------------------------------------------
// 7.6: deleting a client

/// `tessera client delete` (another process, so no server's cache hears of
/// it) revokes the client's grants, and its user and client credentials
/// tokens fail at /introspect and /userinfo at once on both instances.
async fn deleted_client_tokens_stop_working_at_once_on_every_instance(backend: Backend) {
    let (a, b) = two_instances(backend).await;
    let api_secret = register_resource_server(&a).await;
    add_user(&a, "alice").await;
    let app = rp(&a, web_app()).await;
    let (machine, machine_secret) = a.machine_client("read").await;

    let first = sign_in(&a, &app, &Browser::new(&a), "alice").await;
    // Refreshed on the second instance, so that its cache holds the client.
    let (status, tokens) = refresh(&b, &app, &text(&first["refresh_token"])).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let user_token = text(&tokens["access_token"]);
    let refresh_token = text(&tokens["refresh_token"]);
    let machine_tokens = [
        token(&a, &machine, &machine_secret).await,
        token(&b, &machine, &machine_secret).await,
    ];
    for server in [&a, &b] {
        assert!(active_for_api(server, &api_secret, &user_token).await);
        assert_eq!(userinfo_status(server, &user_token).await, StatusCode::OK);
        for t in &machine_tokens {
            assert!(active_for_api(server, &api_secret, t).await);
        }
    }

    for id in [&app.id, &machine] {
        let out = a.cli(&["client", "delete", id]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }

    for server in [&a, &b] {
        assert!(
            !active_for_api(server, &api_secret, &user_token).await,
            "user token"
        );
        assert_eq!(
            userinfo_status(server, &user_token).await,
            StatusCode::UNAUTHORIZED
        );
        for t in &machine_tokens {
            assert!(
                !active_for_api(server, &api_secret, t).await,
                "client credentials token"
            );
        }
        // Both caches still hold the client, so it still authenticates
        // there; its grant is what refuses.
        assert_invalid_grant(refresh(server, &app, &refresh_token).await);
    }
    assert_eq!(
        count(
            &a,
            "SELECT COUNT(*) FROM grants WHERE client_id = $1 AND revoked_at IS NULL",
            &[&app.id],
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &a,
            "SELECT COUNT(*) FROM grants WHERE client_id = $1",
            &[&app.id]
        )
        .await,
        1,
        "the grant is kept, revoked, until pruned"
    );
    b.stop().await;
    a.stop().await;
}

// ---------------------------------------------------------------------------
// 7.7: changing a password

/// `tessera user passwd` ends every session of the person (their next
/// /authorize asks them to sign in), and revokes their refresh tokens and
/// access tokens; other people keep theirs.
async fn password_change_ends_sessions_and_revokes_tokens(backend: Backend) {
    let server = browser::start(backend).await;
    let alice = add_user(&server, "alice").await;
    let bob = add_user(&server, "bob").await;
    let app = rp(&server, web_app()).await;
    let (laptop, phone, bobs) = (
        Browser::new(&server),
        Browser::new(&server),
        Browser::new(&server),
    );
    let alice_tokens = [
        sign_in(&server, &app, &laptop, "alice").await,
        sign_in(&server, &app, &phone, "alice").await,
    ];
    let bob_tokens = sign_in(&server, &app, &bobs, "bob").await;
    let sessions_of = "SELECT COUNT(*) FROM sessions WHERE sub = $1";
    assert_eq!(count(&server, sessions_of, &[&alice]).await, 2);
    assert_eq!(count(&server, sessions_of, &[&bob]).await, 1);

    let out = cli_on(
        &server.db.url,
        &["user", "passwd", "alice"],
        Some("a new password\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    for browser in [&laptop, &phone] {
        let page = browser.authorize(&AuthRequest::new(&app)).await;
        assert!(page.is_login(), "{} {:?}", page.status, page.location());
    }
    for tokens in &alice_tokens {
        assert_invalid_grant(refresh(&server, &app, &text(&tokens["refresh_token"])).await);
        assert_eq!(
            userinfo_status(&server, &text(&tokens["access_token"])).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(count(&server, sessions_of, &[&alice]).await, 0);

    // Bob is untouched.
    assert_eq!(count(&server, sessions_of, &[&bob]).await, 1);
    let again = bobs.authorize(&AuthRequest::new(&app)).await;
    assert!(again.callback().contains_key("code"), "{}", again.body);
    assert_eq!(
        userinfo_status(&server, &text(&bob_tokens["access_token"])).await,
        StatusCode::OK
    );
    let (status, body) = refresh(&server, &app, &text(&bob_tokens["refresh_token"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Alice signs in again with the new password, and only with it.
    let page = laptop.authorize(&AuthRequest::new(&app)).await;
    let refused = laptop.login(&page, "alice", PASSWORD).await;
    assert!(refused.is_login(), "the old password is refused");
    let page = laptop.authorize(&AuthRequest::new(&app)).await;
    let r = laptop.login(&page, "alice", "a new password").await;
    assert!(r.callback().contains_key("code"), "{}", r.body);
    server.stop().await;
}

/// The store ends the person's other sessions and keeps the one the
/// change was made from (the account page's case), in the same
/// transaction as the new hash; other people's sessions stay.
async fn password_change_keeps_only_the_session_it_was_made_from(backend: Backend) {
    let server = browser::start(backend).await;
    let store = &server.state.store;
    let now = server.clock.now();
    let alice = add_user(&server, "alice").await;
    let bob = add_user(&server, "bob").await;
    let (current, other, bobs) = (random_token(), random_token(), random_token());
    for (id, sub) in [(&current, &alice), (&other, &alice), (&bobs, &bob)] {
        assert!(
            store
                .create_session(id, Some(sub), None, b"{}", now + 3600)
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .set_password(&alice, "new-hash", now, Some(&current))
            .await
            .unwrap()
    );
    assert!(store.load_session(&current, now).await.unwrap().is_some());
    assert!(store.load_session(&other, now).await.unwrap().is_none());
    assert!(store.load_session(&bobs, now).await.unwrap().is_some());
    assert_eq!(
        store.user(&alice).await.unwrap().unwrap().password_hash,
        "new-hash"
    );

    // An unknown person changes nothing, and a session never signed in to
    // belongs to nobody.
    assert!(!store.set_password("nobody", "x", now, None).await.unwrap());
    assert!(
        store
            .create_session(&random_token(), None, None, b"{}", now + 3600)
            .await
            .unwrap()
    );
    assert_eq!(store.delete_sessions_of(&alice, None).await.unwrap(), 1);
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM sessions", &[]).await,
        2
    );
    server.stop().await;
}

/// What a session row's data holds is not the session id either: the
/// tower-sessions record carries it, and a copy of the database must not
/// let anyone sign in (7.10, kept true with the new column).
async fn session_data_holds_no_session_id(backend: Backend) {
    let server = browser::start(backend).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&AuthRequest::new(&app)).await;
    let signed_in = browser.submit_login(&page, "alice", PASSWORD).await;
    let cookie = signed_in
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("tessera_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .next()
        .expect("a session cookie");
    let id: tower_sessions::session::Id = cookie.parse().unwrap();
    let rows = session_data(&server).await;
    assert_eq!(rows.len(), 1);
    let data: Value = serde_json::from_slice(&rows[0]).unwrap();
    assert!(data.get("id").is_none(), "{data}");
    let text = String::from_utf8_lossy(&rows[0]);
    assert!(!text.contains(&id.0.to_string()), "{text}");
    assert!(!text.contains(&cookie), "{text}");
    // The session still works: signed in, only consent is asked.
    let again = browser.authorize(&AuthRequest::new(&app)).await;
    assert!(again.is_consent(), "{}", again.body);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 7.9: the refresh grace window

/// Three refreshes of one token racing within `refresh_grace_secs` all get
/// the same new refresh token, and the family has one live member.
async fn racing_refreshes_within_the_grace_window_get_one_successor(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.tokens.refresh_grace_secs = 10).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let first = sign_in(&server, &app, &Browser::new(&server), "alice").await;
    let grant_id = text(&payload_of(&text(&first["access_token"]))["grant_id"]);
    let presented = text(&first["refresh_token"]);

    let (one, two, three) = tokio::join!(
        refresh(&server, &app, &presented),
        refresh(&server, &app, &presented),
        refresh(&server, &app, &presented),
    );
    let mut successors = Vec::new();
    for (status, body) in [one, two, three] {
        assert_eq!(status, StatusCode::OK, "{body}");
        successors.push(text(&body["refresh_token"]));
    }
    assert_ne!(successors[0], presented);
    assert!(
        successors.iter().all(|s| *s == successors[0]),
        "{successors:?}"
    );
    // Later in the window, too.
    server.clock.advance(9);
    let (status, body) = refresh(&server, &app, &presented).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(text(&body["refresh_token"]), successors[0]);

    let live = "SELECT COUNT(*) FROM refresh_tokens WHERE grant_id = $1 AND rotated_at IS NULL";
    assert_eq!(count(&server, live, &[&grant_id]).await, 1);
    let (status, body) = refresh(&server, &app, &successors[0]).await;
    assert_eq!(status, StatusCode::OK, "the successor works: {body}");
    assert_eq!(count(&server, live, &[&grant_id]).await, 1);
    server.stop().await;
}

/// Outside the window a used refresh token is reuse: the grant and every
/// token of it are revoked (RFC 9700 §4.14.2).
async fn refresh_after_the_grace_window_revokes_the_grant(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.tokens.refresh_grace_secs = 10).await;
    add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let first = sign_in(&server, &app, &Browser::new(&server), "alice").await;
    let presented = text(&first["refresh_token"]);
    let (status, second) = refresh(&server, &app, &presented).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let access_token = text(&second["access_token"]);
    assert_eq!(
        userinfo_status(&server, &access_token).await,
        StatusCode::OK
    );

    server.clock.advance(11);
    assert_invalid_grant(refresh(&server, &app, &presented).await);
    assert_invalid_grant(refresh(&server, &app, &text(&second["refresh_token"])).await);
    assert_eq!(
        userinfo_status(&server, &access_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM grants WHERE client_id = $1 AND revoked_at IS NOT NULL",
            &[&app.id],
        )
        .await,
        1
    );
    server.stop().await;
}

/// Deleting a person ends every session they had, in the same
/// transaction as the deletion; other people's sessions stay.
async fn deleting_a_user_ends_their_sessions(backend: Backend) {
    let server = browser::start(backend).await;
    let store = &server.state.store;
    let now = server.clock.now();
    let alice = add_user(&server, "alice").await;
    let bob = add_user(&server, "bob").await;
    let (laptop, phone, bobs) = (random_token(), random_token(), random_token());
    for (id, sub) in [(&laptop, &alice), (&phone, &alice), (&bobs, &bob)] {
        assert!(
            store
                .create_session(id, Some(sub), None, b"{}", now + 3600)
                .await
                .unwrap()
        );
    }
    assert!(store.delete_user(&alice, now).await.unwrap());
    assert!(store.load_session(&laptop, now).await.unwrap().is_none());
    assert!(store.load_session(&phone, now).await.unwrap().is_none());
    assert!(store.load_session(&bobs, now).await.unwrap().is_some());
    assert!(store.user(&alice).await.unwrap().is_none());
    server.stop().await;
}

crate::both_backends!(
    deleting_a_user_ends_their_sessions,
    deleted_client_tokens_stop_working_at_once_on_every_instance,
    password_change_ends_sessions_and_revokes_tokens,
    password_change_keeps_only_the_session_it_was_made_from,
    session_data_holds_no_session_id,
    racing_refreshes_within_the_grace_window_get_one_successor,
    refresh_after_the_grace_window_revokes_the_grant,
);
