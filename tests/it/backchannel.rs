//! OpenID Connect Back-Channel Logout 1.0: clients that registered a
//! `backchannel_logout_uri` get a Logout Token, server to server, when a
//! session they got tokens in ends (RP-initiated logout, an operator ending
//! the person's sessions, the account deleted). Each test runs small
//! receivers on 127.0.0.1 that record what they are sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::clock::Clock;
use tessera::domain::DeliveryOutcome;
use tessera::oauth::client::ClientRegistration;
use tessera::oidc::backchannel::{self, LOGOUT_EVENT, MAX_ATTEMPTS};
use tessera::store::{AuditQuery, EndingSessions};
use tokio::net::TcpListener;

use crate::browser::{AuthRequest, Browser, Rp, add_user, refresh, rp, start, tokens, web_app};
use crate::cli::{cli_json, cli_refuses};
use crate::harness::{Backend, TestServer, eventually, http, verify_with_jwks};
use crate::introspection::{is_active, token};
use crate::registration::{discovery, post_register};

// ---------------------------------------------------------------------------
// A relying party's back-channel endpoint.

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
struct Post {
    content_type: String,
    form: Vec<(String, String)>,
}

impl Post {
    fn logout_token(&self) -> &str {
        let tokens: Vec<&str> = self
            .form
            .iter()
            .filter(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tokens.len(), 1, "{:?}", self.form);
        tokens[0]
    }
}

#[derive(Default)]
struct Recorded {
    posts: Mutex<Vec<Post>>,
    /// Statuses to answer with, in order; 200 once they run out, or
    /// `always` when set.
    answers: Mutex<VecDeque<u16>>,
    always: Option<u16>,
    /// When set, every answer waits until it is released.
    hold: Option<tokio::sync::watch::Receiver<bool>>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    recorded: Arc<Recorded>,
}

impl Receiver {
    async fn start(recorded: Recorded) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
        let recorded = Arc::new(recorded);
        let app = axum::Router::new()
            .route("/backchannel", axum::routing::post(receive))
            .with_state(recorded.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, recorded }
    }

    /// Answers 200 to everything.
    async fn ok() -> Self {
        Self::start(Recorded::default()).await
    }

    fn posts(&self) -> Vec<Post> {
        self.recorded.posts.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.recorded.posts.lock().unwrap().len()
    }
}

async fn receive(
    State(recorded): State<Arc<Recorded>>,
    headers: HeaderMap,
    body: String,
) -> AxumStatus {
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let form = serde_urlencoded::from_str(&body).unwrap();
    recorded
        .posts
        .lock()
        .unwrap()
        .push(Post { content_type, form });
    if let Some(hold) = &recorded.hold {
        let mut hold = hold.clone();
        hold.wait_for(|released| *released).await.unwrap();
    }
    let answer = recorded.answers.lock().unwrap().pop_front();
    let status = answer.or(recorded.always).unwrap_or(200);
    AxumStatus::from_u16(status).unwrap()
}

// ---------------------------------------------------------------------------
// Clients, sign-ins and what the database holds.

/// The browser test client, with a back-channel logout URI when given.
async fn app_with(server: &TestServer, backchannel: Option<&Receiver>) -> Rp {
    rp(
        server,
        ClientRegistration {
            backchannel_logout_uri: backchannel.map(|r| r.url.clone()),
            ..web_app()
        },
    )
    .await
}

/// Signs in (if needed) and consents in `browser`, and exchanges the code;
/// the token response.
async fn sign_in(server: &TestServer, browser: &Browser, app: &Rp, scope: &str) -> Value {
    let req = AuthRequest::new(app).set("scope", scope);
    let code = browser.code(&req, "alice").await;
    tokens(server, app, &req, &code).await
}

fn claims_of(id_token: &Value) -> Value {
    crate::introspection::payload_of(id_token.as_str().unwrap())
}

/// `(client_id, state, attempts, next_attempt_at)` of every queued delivery.
async fn deliveries(server: &TestServer) -> Vec<(String, String, i64, i64)> {
    const SQL: &str = "SELECT client_id, state, attempts, next_attempt_at \
                       FROM backchannel_deliveries ORDER BY client_id";
    if server.db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

/// The audit events of `kind`, newest first.
async fn audited(server: &TestServer, kind: &str) -> Vec<tessera::store::AuditRecord> {
    server.state.audit.flush().await;
    server
        .state
        .store
        .audit_records(&AuditQuery {
            kinds: Some(vec![kind.to_string()]),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Checks a Logout Token as a relying party must (§2.6), with the server's
/// JWKS: signature, `typ`, `iss`, `aud`, `iat`/`exp`, `events`, no
/// `nonce`; its claims.
async fn verify_logout_token(server: &TestServer, token: &str, client_id: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let claims = verify_with_jwks(server, token, client_id).await;
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    claims
}

/// RP-initiated logout with an ID token as hint (no confirmation asked).
async fn logout(browser: &Browser, id_token: &Value) {
    let query = serde_urlencoded::to_string([("id_token_hint", id_token.as_str().unwrap())]);
    let page = browser.get(&format!("/logout?{}", query.unwrap())).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

// ---------------------------------------------------------------------------

async fn logout_sends_a_logout_token_to_every_client_of_the_session(backend: Backend) {
    let server = start(backend).await;
    let sub = add_user(&server, "alice").await;
    let (first_rp, second_rp) = (Receiver::ok().await, Receiver::ok().await);
    let first = app_with(&server, Some(&first_rp)).await;
    let second = app_with(&server, Some(&second_rp)).await;
    let silent = app_with(&server, None).await;
    let browser = Browser::new(&server);
    let first_tokens = sign_in(&server, &browser, &first, "openid").await;
    let second_tokens = sign_in(&server, &browser, &second, "openid profile").await;
    sign_in(&server, &browser, &silent, "openid").await;
    let sid = claims_of(&first_tokens["id_token"])["sid"].clone();
    assert!(sid.is_string());
    assert_eq!(claims_of(&second_tokens["id_token"])["sid"], sid);

    logout(&browser, &first_tokens["id_token"]).await;
    eventually("both clients are sent a Logout Token", || async {
        first_rp.count() == 1 && second_rp.count() == 1
    })
    .await;
    for (receiver, app) in [(&first_rp, &first), (&second_rp, &second)] {
        let post = &receiver.posts()[0];
        assert_eq!(post.content_type, "application/x-www-form-urlencoded");
        let claims = verify_logout_token(&server, post.logout_token(), &app.id).await;
        assert_eq!(claims["sid"], sid);
        assert_eq!(claims["sub"], sub.as_str());
    }
    // The client without a URI is owed nothing: no delivery was queued.
    eventually("both deliveries are recorded as delivered", || async {
        let rows = deliveries(&server).await;
        rows.len() == 2
            && rows
                .iter()
                .all(|(_, state, attempts, _)| state == "delivered" && *attempts == 1)
    })
    .await;
    let mut clients: Vec<String> = deliveries(&server).await.into_iter().map(|d| d.0).collect();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    clients.sort();
    expected.sort();
    assert_eq!(clients, expected);
    let delivered = audited(&server, "backchannel_logout.delivered").await;
    assert_eq!(delivered.len(), 2);
    assert!(
        delivered
            .iter()
            .all(|e| e.subject.as_deref() == Some(sub.as_str())
                && e.actor == "system"
                && e.detail["sid"] == sid
                && e.detail["attempts"] == 1)
    );
    server.stop().await;
}

async fn the_sessions_grants_end_but_offline_access_outlives_it(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let receiver = Receiver::ok().await;
    let app = app_with(&server, Some(&receiver)).await;
    let browser = Browser::new(&server);
    let online = sign_in(&server, &browser, &app, "openid profile").await;
    let offline = sign_in(&server, &browser, &app, "openid offline_access").await;
    let secret = app.secret.clone().unwrap();
    let access = online["access_token"].as_str().unwrap();
    assert!(is_active(&server, &app.id, &secret, access).await);
    assert!(online.get("refresh_token").is_none(), "{online}");
    let refresh_token = offline["refresh_token"].as_str().unwrap();

    logout(&browser, &online["id_token"]).await;
    // Back-Channel Logout §2.7 leaves it to the OP: the grant given without
    // offline_access ended with the session (its tokens stop working) ...
    assert!(!is_active(&server, &app.id, &secret, access).await);
    // ... and offline access outlives it.
    let (status, body) = refresh(&server, &app, refresh_token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = body["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&server, &app, again, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // One client, one session: one Logout Token.
    eventually("the client is sent one Logout Token", || async {
        receiver.count() == 1
    })
    .await;
    server.stop().await;
}

async fn a_failed_delivery_is_retried_until_the_client_answers(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let receiver = Receiver::start(Recorded {
        answers: Mutex::new(VecDeque::from([500])),
        ..Default::default()
    })
    .await;
    let app = app_with(&server, Some(&receiver)).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &app, "openid").await;
    logout(&browser, &tokens["id_token"]).await;

    let retry_at = match backchannel::after_failure(1, server.clock.now(), String::new()) {
        DeliveryOutcome::Retry { at, .. } => at,
        other => panic!("{other:?}"),
    };
    eventually("the first attempt fails and is rescheduled", || async {
        deliveries(&server).await == [(app.id.clone(), "pending".to_string(), 1, retry_at)]
    })
    .await;
    assert_eq!(receiver.count(), 1);
    // Not due before its time.
    server.clock.set(retry_at - 1);
    assert_eq!(server.state.deliver_backchannel_logouts().await.unwrap(), 0);
    server.clock.set(retry_at);
    server.state.deliver_backchannel_logouts().await.unwrap();
    eventually("the second attempt is delivered", || async {
        let rows = deliveries(&server).await;
        rows.len() == 1 && rows[0].1 == "delivered" && rows[0].2 == 2
    })
    .await;
    let posts = receiver.posts();
    assert_eq!(posts.len(), 2);
    // Each attempt signs a fresh token.
    assert_ne!(posts[0].logout_token(), posts[1].logout_token());
    verify_logout_token(&server, posts[1].logout_token(), &app.id).await;
    let delivered = audited(&server, "backchannel_logout.delivered").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].detail["attempts"], 2);
    server.stop().await;
}

async fn a_client_that_always_fails_gets_a_bounded_number_of_attempts(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let receiver = Receiver::start(Recorded {
        always: Some(503),
        ..Default::default()
    })
    .await;
    let app = app_with(&server, Some(&receiver)).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &app, "openid").await;
    logout(&browser, &tokens["id_token"]).await;

    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            // Far past any backoff; the worker (or this call) takes it.
            server.clock.advance(86_400);
            server.state.deliver_backchannel_logouts().await.unwrap();
        }
        let now = server.clock.now();
        let expected = match backchannel::after_failure(attempt, now, String::new()) {
            DeliveryOutcome::Retry { at, .. } => ("pending", at),
            _ => ("failed", now),
        };
        eventually(
            &format!("attempt {attempt} is made and settled"),
            || async {
                deliveries(&server).await
                    == [(app.id.clone(), expected.0.to_string(), attempt, expected.1)]
            },
        )
        .await;
        assert_eq!(receiver.count() as i64, attempt);
    }
    // Given up: no further attempt, however late.
    server.clock.advance(30 * 86_400);
    assert_eq!(server.state.deliver_backchannel_logouts().await.unwrap(), 0);
    assert_eq!(receiver.count() as i64, MAX_ATTEMPTS);
    let failed = audited(&server, "backchannel_logout.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].client_id.as_deref(), Some(app.id.as_str()));
    assert_eq!(failed[0].detail["attempts"], MAX_ATTEMPTS);
    assert_eq!(failed[0].detail["error"], "answered HTTP 503");
    assert!(
        audited(&server, "backchannel_logout.delivered")
            .await
            .is_empty()
    );
    server.stop().await;
}

async fn a_hanging_client_does_not_hold_up_the_logout_page(backend: Backend) {
    let server = start(backend).await;
    add_user(&server, "alice").await;
    let (release, hold) = tokio::sync::watch::channel(false);
    let receiver = Receiver::start(Recorded {
        hold: Some(hold),
        ..Default::default()
    })
    .await;
    let app = app_with(&server, Some(&receiver)).await;
    let browser = Browser::new(&server);
    let tokens = sign_in(&server, &browser, &app, "openid").await;

    // The receiver answers nothing until released, which happens only
    // after the logout page has come back: had the page waited on the
    // delivery, this would not return (or the attempt would have timed out
    // and not be delivered at the first attempt, below).
    logout(&browser, &tokens["id_token"]).await;
    eventually("the Logout Token reaches the hanging client", || async {
        receiver.count() == 1
    })
    .await;
    assert_eq!(deliveries(&server).await[0].1, "pending");
    release.send(true).unwrap();
    eventually("the delivery completes once the client answers", || async {
        let rows = deliveries(&server).await;
        rows[0].1 == "delivered" && rows[0].2 == 1
    })
    .await;
    server.stop().await;
}

async fn ending_sessions_changing_the_password_or_deleting_the_person_sends_logout_tokens(
    backend: Backend,
) {
    let server = start(backend).await;
    let sub = add_user(&server, "alice").await;
    let (admin_id, admin_secret) = server.machine_client("tessera:admin").await;
    let admin = token(&server, &admin_id, &admin_secret).await;
    let receiver = Receiver::ok().await;
    let app = app_with(&server, Some(&receiver)).await;

    let laptop = Browser::new(&server);
    let laptop_sid =
        claims_of(&sign_in(&server, &laptop, &app, "openid").await["id_token"])["sid"].clone();
    let ended = http()
        .delete(server.url(&format!("/admin/api/v1/users/{sub}/sessions")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    eventually("ending the sessions sends a Logout Token", || async {
        receiver.count() == 1
    })
    .await;
    let claims = verify_logout_token(&server, receiver.posts()[0].logout_token(), &app.id).await;
    assert_eq!(claims["sid"], laptop_sid);
    let ended = audited(&server, "session.ended").await;
    assert_eq!(ended[0].detail["backchannel_logouts"], 1);

    // A password change ends the sessions too.
    let tablet = Browser::new(&server);
    let tablet_sid =
        claims_of(&sign_in(&server, &tablet, &app, "openid").await["id_token"])["sid"].clone();
    let changed = http()
        .put(server.url(&format!("/admin/api/v1/users/{sub}/password")))
        .bearer_auth(&admin)
        .json(&json!({"password": crate::browser::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    eventually("a password change sends a Logout Token", || async {
        receiver.count() == 2
    })
    .await;
    let claims = verify_logout_token(&server, receiver.posts()[1].logout_token(), &app.id).await;
    assert_eq!(claims["sid"], tablet_sid);

    let phone = Browser::new(&server);
    let phone_sid =
        claims_of(&sign_in(&server, &phone, &app, "openid").await["id_token"])["sid"].clone();
    assert_ne!(phone_sid, laptop_sid);
    let deleted = http()
        .delete(server.url(&format!("/admin/api/v1/users/{sub}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    eventually("deleting the person sends a Logout Token", || async {
        receiver.count() == 3
    })
    .await;
    let claims = verify_logout_token(&server, receiver.posts()[2].logout_token(), &app.id).await;
    assert_eq!(claims["sid"], phone_sid);
    assert_eq!(claims["sub"], sub.as_str());
    server.stop().await;
}

async fn each_delivery_is_claimed_by_one_instance(backend: Backend) {
    let first = start(backend).await;
    let second = crate::introspection::second_instance(&first).await;
    let sub = add_user(&first, "alice").await;
    let receiver = Receiver::ok().await;
    let app = app_with(&first, Some(&receiver)).await;
    let mut sids = Vec::new();
    for _ in 0..4 {
        let browser = Browser::new(&first);
        let tokens = sign_in(&first, &browser, &app, "openid").await;
        sids.push(
            claims_of(&tokens["id_token"])["sid"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Queued without waking anyone: both instances' workers and these
    // calls race for the four deliveries.
    let ended = backchannel::end_sessions(
        &*first.state.store,
        EndingSessions::AllOf { sub: &sub },
        first.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!((ended.sessions, ended.deliveries), (4, 4));
    let (a, b) = tokio::join!(
        first.state.deliver_backchannel_logouts(),
        second.state.deliver_backchannel_logouts()
    );
    assert!(a.unwrap() + b.unwrap() <= 4);
    eventually("every delivery is delivered", || async {
        let rows = deliveries(&first).await;
        rows.len() == 4 && rows.iter().all(|r| r.1 == "delivered")
    })
    .await;
    // Exactly one attempt each, so exactly one POST per session.
    assert!(deliveries(&first).await.iter().all(|r| r.2 == 1));
    let mut sent: Vec<String> = Vec::new();
    for post in receiver.posts() {
        let claims = verify_logout_token(&first, post.logout_token(), &app.id).await;
        sent.push(claims["sid"].as_str().unwrap().to_string());
    }
    sent.sort();
    sids.sort();
    assert_eq!(sent, sids);
    second.stop().await;
    first.stop().await;
}

async fn registration_checks_and_shows_the_backchannel_metadata(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.registration.open = true).await;
    let doc = discovery(&server).await;
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);

    let with = |uri: &str| {
        json!({
            "client_name": "rp",
            "redirect_uris": ["https://rp.example/cb"],
            "backchannel_logout_uri": uri,
            "backchannel_logout_session_required": true,
        })
    };
    for bad in [
        "http://rp.example/logout",
        "https://rp.example/logout#frag",
        "/logout",
    ] {
        let response = post_register(&server, None, &with(bad)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{bad}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("backchannel_logout_uri"),
            "{body}"
        );
    }
    for good in ["https://rp.example/logout", "http://127.0.0.1:8123/logout"] {
        let response = post_register(&server, None, &with(good)).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{good}");
        let info: Value = response.json().await.unwrap();
        assert_eq!(info["backchannel_logout_uri"], good);
        assert_eq!(info["backchannel_logout_session_required"], true);
    }

    // The CLI: add, update, show.
    let added = cli_json(
        &server,
        &[
            "client",
            "add",
            "--name",
            "rp",
            "--redirect-uri",
            "https://rp.example/cb",
            "--backchannel-logout-uri",
            "https://rp.example/bc",
            "--backchannel-logout-session-required",
        ],
    )
    .await;
    assert_eq!(added["backchannel_logout_uri"], "https://rp.example/bc");
    assert_eq!(added["backchannel_logout_session_required"], true);
    let id = added["client_id"].as_str().unwrap();
    let updated = cli_json(
        &server,
        &[
            "client",
            "update",
            id,
            "--name",
            "rp",
            "--redirect-uri",
            "https://rp.example/cb",
            "--backchannel-logout-uri",
            "http://localhost:9000/bc",
        ],
    )
    .await;
    assert_eq!(updated["client_id"], id);
    assert!(updated.get("client_secret").is_none(), "{updated}");
    let shown = cli_json(&server, &["client", "show", id]).await;
    assert_eq!(shown["backchannel_logout_uri"], "http://localhost:9000/bc");
    assert!(shown.get("backchannel_logout_session_required").is_none());
    let reason = cli_refuses(
        &server,
        &[
            "client",
            "add",
            "--name",
            "rp",
            "--redirect-uri",
            "https://rp.example/cb",
            "--backchannel-logout-uri",
            "http://rp.example/bc",
        ],
    )
    .await;
    assert!(reason.contains("back-channel logout URI"), "{reason}");
    server.stop().await;
}

crate::both_backends!(
    logout_sends_a_logout_token_to_every_client_of_the_session,
    the_sessions_grants_end_but_offline_access_outlives_it,
    a_failed_delivery_is_retried_until_the_client_answers,
    a_client_that_always_fails_gets_a_bounded_number_of_attempts,
    a_hanging_client_does_not_hold_up_the_logout_page,
    ending_sessions_changing_the_password_or_deleting_the_person_sends_logout_tokens,
    each_delivery_is_claimed_by_one_instance,
    registration_checks_and_shows_the_backchannel_metadata,
);
