//! Issue 12, API keys: the CLI, `POST /apikeys/verify` as a resource
//! server calls it, revocation and rate limits across two instances on one
//! database, rotation overlap and expiry on the FixedClock, and that the
//! key is nowhere in the database but as its hash.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::clock::Clock;
use tessera::service::api_keys::{self, CreatedApiKey, NewApiKey};
use tessera::service::audit::{Actor, LogAuditSink};

use crate::browser::add_user;
use crate::harness::{Backend, TestDatabase, TestServer, http, verify_with_jwks};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const API_KEY_TYPE: &str = "urn:tessera:params:oauth:token-type:api-key";

/// An API key exchanged at `/token`, with optional client credentials.
async fn exchange(
    server: &TestServer,
    key: &str,
    extra: &[(&str, &str)],
    credentials: Option<&(String, String)>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", key),
        ("subject_token_type", API_KEY_TYPE),
    ];
    form.extend_from_slice(extra);
    let mut request = http().post(server.url("/token")).form(&form);
    if let Some((id, secret)) = credentials {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn introspect(server: &TestServer, caller: &(String, String), token: &str) -> Value {
    let response = http()
        .post(server.url("/introspect"))
        .basic_auth(&caller.0, Some(&caller.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn verify_on(
    server: &TestServer,
    caller: &(String, String),
    body: &Value,
) -> (StatusCode, Value) {
    let response = http()
        .post(server.url("/apikeys/verify"))
        .basic_auth(&caller.0, Some(&caller.1))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::OK {
        assert_eq!(cache.as_deref(), Some("no-store"));
    }
    (status, body)
}

async fn verify(server: &TestServer, caller: &(String, String), key: &str) -> Value {
    let (status, body) = verify_on(server, caller, &json!({ "key": key })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A key made through the service with the server's clock.
async fn create(server: &TestServer, new: NewApiKey) -> CreatedApiKey {
    let store = &*server.state.store;
    api_keys::create(
        store,
        store,
        store,
        &*server.clock,
        &LogAuditSink,
        &Actor::Cli,
        new,
    )
    .await
    .unwrap()
}

fn new_key(scope: &str) -> NewApiKey {
    NewApiKey {
        name: "billing export".into(),
        scope: scope.into(),
        ..Default::default()
    }
}

fn json_of(output: std::process::Output) -> Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every text column of every `api_keys` row, and every audit row.
async fn stored_text(db: &TestDatabase) -> String {
    const KEYS: &str = "SELECT id || ' ' || key_hash || ' ' || prefix || ' ' || start || ' ' || \
                        name || ' ' || scopes || ' ' || owner_kind || ' ' || owner || ' ' || \
                        meta FROM api_keys";
    const AUDIT: &str = "SELECT kind || ' ' || COALESCE(subject, '') || ' ' || \
                         COALESCE(client_id, '') || ' ' || CAST(detail AS TEXT) FROM audit_events";
    let rows: Vec<String> = if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let mut rows: Vec<String> = sqlx::query_scalar(KEYS).fetch_all(&pool).await.unwrap();
        rows.extend(
            sqlx::query_scalar::<_, String>(AUDIT)
                .fetch_all(&pool)
                .await
                .unwrap(),
        );
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let mut rows: Vec<String> = sqlx::query_scalar(KEYS).fetch_all(&pool).await.unwrap();
        rows.extend(
            sqlx::query_scalar::<_, String>(AUDIT)
                .fetch_all(&pool)
                .await
                .unwrap(),
        );
        pool.close().await;
        rows
    };
    rows.join("\n")
}

/// The CLI creates, lists, shows, rotates and revokes; the key is printed
/// once, has the documented shape, and the database holds only its hash.
async fn the_cli_manages_keys_and_stores_only_their_hash(backend: Backend) {
    let server = TestServer::start(backend).await;
    let caller = server
        .machine_client("read reports:read reports:write")
        .await;
    let created = json_of(server.cli(&[
        "apikey",
        "create",
        "--name",
        "nightly export",
        "--scope",
        "reports:read reports:write",
        "--owner",
        &caller.0,
        "--prefix",
        "acme",
        "--expires-in",
        "3600",
        "--rate-limit",
        "100/60",
        "--meta",
        r#"{"team":"billing"}"#,
    ]));
    let key = created["key"].as_str().unwrap().to_string();
    let secret = key.strip_prefix("acme_").expect("PREFIX_ then the secret");
    assert_eq!(secret.len(), 43, "256 bits in base64url");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(created["prefix"], "acme");
    assert_eq!(created["start"], secret[..6]);
    assert_eq!(created["name"], "nightly export");
    assert_eq!(created["scopes"], json!(["reports:read", "reports:write"]));
    assert_eq!(
        created["owner"],
        json!({ "type": "client", "id": caller.0 })
    );
    assert_eq!(
        created["rate_limit"],
        json!({ "count": 100, "window_secs": 60 })
    );
    assert_eq!(created["meta"], json!({ "team": "billing" }));
    let created_at = created["created_at"].as_i64().unwrap();
    assert_eq!(created["expires_at"].as_i64(), Some(created_at + 3600));
    let id = created["id"].as_str().unwrap().to_string();

    let stored = stored_text(&server.db).await;
    assert!(!stored.contains(secret), "the key is in the database");
    assert!(stored.contains(&tessera::crypto::hash_secret(&key)));

    let listed = json_of(server.cli(&["apikey", "list"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("key").is_none(), "list never shows the key");
    assert!(!listed.to_string().contains(secret));

    let answer = verify(&server, &caller, &key).await;
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["code"], "VALID");
    assert_eq!(answer["remaining"], 99);
    let shown = json_of(server.cli(&["apikey", "show", &id]));
    assert_eq!(shown["use_count"], 1);
    assert!(shown["last_used_at"].is_i64());
    assert!(shown.get("key").is_none());

    let rotated = json_of(server.cli(&["apikey", "rotate", &id, "--overlap-secs", "600"]));
    let new_key = rotated["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    assert!(new_key.starts_with("acme_"));
    assert_eq!(rotated["rotated_from"], id.as_str());
    assert_eq!(rotated["scopes"], created["scopes"]);
    assert_eq!(rotated["rate_limit"], created["rate_limit"]);

    let revoked = json_of(server.cli(&["apikey", "revoke", &id]));
    assert!(revoked["revoked_at"].is_i64());
    assert_eq!(verify(&server, &caller, &key).await["code"], "REVOKED");
    assert_eq!(verify(&server, &caller, new_key).await["code"], "VALID");

    // Refusals name the culprit and exit 2.
    for (args, culprit) in [
        (vec!["--prefix", "Bad_Prefix"], "prefix"),
        (vec!["--rate-limit", "0/60"], "rate limit"),
        (vec!["--meta", "[1]"], "meta"),
        (vec!["--owner", "nobody-at-all"], "owner"),
        (vec!["--expires-in", "0"], "expires-in"),
    ] {
        let mut full = vec!["apikey", "create", "--name", "x", "--scope", "a"];
        full.extend(args);
        let output = server.cli(&full);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(culprit), "{culprit}: {stderr}");
    }
    assert_eq!(
        json_of(server.cli(&["apikey", "list"]))
            .as_array()
            .unwrap()
            .len(),
        2,
        "refused creations store nothing"
    );
    let output = server.cli(&["apikey", "revoke", &id]);
    assert_eq!(output.status.code(), Some(2), "revoking twice: {output:?}");
    server.stop().await;
}

/// What a resource server sees: every code, the key's facts only when it
/// exists, and the caller must be a confidential client.
async fn verification_answers_every_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    let caller = server.machine_client("read").await;

    let key = create(
        &server,
        NewApiKey {
            meta: Some(r#"{"plan":"gold"}"#.into()),
            expires_in_secs: Some(100),
            ..new_key("orders:read orders:write")
        },
    )
    .await;
    let answer = verify(&server, &caller, &key.key).await;
    assert_eq!(
        answer,
        json!({
            "valid": true,
            "code": "VALID",
            "id": key.record.id,
            "name": "billing export",
            "owner": null,
            "scopes": ["orders:read", "orders:write"],
            "meta": { "plan": "gold" },
            "expires_at": key.record.expires_at,
            "remaining": null,
        })
    );

    let (status, answer) = verify_on(
        &server,
        &caller,
        &json!({ "key": key.key, "scopes": ["orders:read", "orders:delete"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["code"], "INSUFFICIENT_SCOPE");
    let (_, answer) = verify_on(
        &server,
        &caller,
        &json!({ "key": key.key, "scopes": ["orders:write"] }),
    )
    .await;
    assert_eq!(answer["code"], "VALID");
    // Without a rate limit the uses are written in batches: another
    // process (the CLI) sees all three within the server's upkeep period.
    let id = key.record.id.clone();
    crate::harness::eventually("the usage counter is written", || {
        let output = server.cli(&["apikey", "show", &id]);
        async move { json_of(output)["use_count"] == 3 }
    })
    .await;

    // Unknown, tampered and absurd keys: only valid and code.
    let tampered = format!("{}x", key.key);
    for unknown in [
        "tsr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        tampered.as_str(),
        &"k".repeat(10_000),
    ] {
        let answer = verify(&server, &caller, unknown).await;
        assert_eq!(answer, json!({ "valid": false, "code": "NOT_FOUND" }));
    }

    // Expiry follows the server's clock.
    server.clock.advance(100);
    let answer = verify(&server, &caller, &key.key).await;
    assert_eq!(answer["code"], "EXPIRED");
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["id"], key.record.id.as_str());

    // Who may ask: a confidential client, authenticated.
    let body = json!({ "key": key.key });
    let anonymous = http()
        .post(server.url("/apikeys/verify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = (caller.0.clone(), "not-the-secret".to_string());
    let (status, answer) = verify_on(&server, &wrong, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"], "invalid_client");
    let (public, _) = server
        .register(tessera::oauth::client::ClientRegistration {
            client_name: "spa".into(),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            public: true,
            ..Default::default()
        })
        .await;
    let response = http()
        .post(server.url("/apikeys/verify"))
        .basic_auth(&public.client_id, Some(""))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Malformed requests are refused and count nothing.
    let before = api_keys::show(&*server.state.store, &key.record.id)
        .await
        .unwrap()
        .use_count;
    for malformed in [
        json!({}),
        json!({ "key": 42 }),
        json!({ "key": "" }),
        json!({ "key": key.key, "scopes": "orders:read" }),
        json!({ "key": key.key, "scopes": vec!["s"; 65] }),
    ] {
        let (status, answer) = verify_on(&server, &caller, &malformed).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}");
        assert_eq!(answer["error"], "invalid_request", "{malformed}");
    }
    let not_json = http()
        .post(server.url("/apikeys/verify"))
        .basic_auth(&caller.0, Some(&caller.1))
        .form(&[("key", key.key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let after = api_keys::show(&*server.state.store, &key.record.id)
        .await
        .unwrap()
        .use_count;
    assert_eq!(before, after);
    server.stop().await;
}

/// Two instances on one database: a revocation through one is seen by the
/// other at once, and a rate limit holds across both (N+1 uses,
/// alternating), then opens again with the next window.
async fn revocation_and_rate_limits_hold_across_instances(backend: Backend) {
    let a = TestServer::start(backend).await;
    let b = TestServer::start_on(a.db.clone(), a.clock.clone(), |_| {}).await;
    let caller = a.machine_client("read").await;

    let limited = create(
        &a,
        NewApiKey {
            rate_limit: Some("4/60".into()),
            ..new_key("read")
        },
    )
    .await;
    for use_number in 1..=4 {
        let server = if use_number % 2 == 0 { &a } else { &b };
        let answer = verify(server, &caller, &limited.key).await;
        assert_eq!(answer["code"], "VALID", "use {use_number}: {answer}");
        assert_eq!(answer["remaining"], 4 - use_number);
    }
    let answer = verify(&b, &caller, &limited.key).await;
    assert_eq!(answer["code"], "RATE_LIMITED");
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["remaining"], 0);
    assert_eq!(
        verify(&a, &caller, &limited.key).await["code"],
        "RATE_LIMITED"
    );
    a.clock.advance(60);
    let answer = verify(&a, &caller, &limited.key).await;
    assert_eq!(answer["code"], "VALID", "a new window: {answer}");
    assert_eq!(answer["remaining"], 3);

    let key = create(&a, new_key("read")).await;
    assert_eq!(verify(&b, &caller, &key.key).await["code"], "VALID");
    api_keys::revoke(
        &*a.state.store,
        &*a.clock,
        &LogAuditSink,
        &Actor::Cli,
        &key.record.id,
    )
    .await
    .unwrap();
    assert_eq!(verify(&b, &caller, &key.key).await["code"], "REVOKED");
    assert_eq!(verify(&a, &caller, &key.key).await["code"], "REVOKED");
    b.stop().await;
    a.stop().await;
}

/// N parallel uses of a key allowed M < N: exactly M are valid.
async fn racing_uses_never_exceed_the_rate_limit(backend: Backend) {
    let server = Arc::new(TestServer::start(backend).await);
    let caller = Arc::new(server.machine_client("read").await);
    let key = create(
        &server,
        NewApiKey {
            rate_limit: Some("5/3600".into()),
            ..new_key("read")
        },
    )
    .await;
    let key = Arc::new(key.key);
    let uses: Vec<_> = (0..16)
        .map(|_| {
            let (server, caller, key) = (server.clone(), caller.clone(), key.clone());
            tokio::spawn(async move { verify(&server, &caller, &key).await })
        })
        .collect();
    let mut valid = 0;
    for answer in uses {
        let answer = answer.await.unwrap();
        match answer["code"].as_str() {
            Some("VALID") => valid += 1,
            Some("RATE_LIMITED") => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(valid, 5);
}

/// A rotated key's predecessor works through the overlap, then expires;
/// the replacement keeps the settings.
async fn rotation_overlap_follows_the_clock(backend: Backend) {
    let server = TestServer::start(backend).await;
    let caller = server.machine_client("read").await;
    let old = create(&server, new_key("read")).await;
    let store = &*server.state.store;
    let new = api_keys::rotate(
        store,
        &*server.clock,
        &LogAuditSink,
        &Actor::Cli,
        &old.record.id,
        300,
    )
    .await
    .unwrap();
    assert_eq!(verify(&server, &caller, &old.key).await["code"], "VALID");
    assert_eq!(verify(&server, &caller, &new.key).await["code"], "VALID");
    server.clock.advance(299);
    assert_eq!(verify(&server, &caller, &old.key).await["code"], "VALID");
    server.clock.advance(1);
    assert_eq!(verify(&server, &caller, &old.key).await["code"], "EXPIRED");
    assert_eq!(verify(&server, &caller, &new.key).await["code"], "VALID");
    assert_eq!(new.record.expires_at, None, "the old key never expired");
    let refused = api_keys::rotate(
        store,
        &*server.clock,
        &LogAuditSink,
        &Actor::Cli,
        &old.record.id,
        0,
    )
    .await;
    assert!(refused.is_err(), "an expired key cannot be rotated");
    assert_eq!(
        api_keys::list(store).await.unwrap().len(),
        2,
        "the refusal stored nothing"
    );
    let now = server.clock.now();
    assert_eq!(
        api_keys::show(store, &old.record.id)
            .await
            .unwrap()
            .expires_at,
        Some(now)
    );
    server.stop().await;
}

/// RFC 8693 exchange of a key for a short-lived JWT: no other credential,
/// the key's scopes or a subset, `sub`/`client_id` from the owner, the
/// token verifies against the JWKS, and dies with the key.
async fn a_key_is_exchanged_for_a_short_lived_jwt(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.machine_client("reports:read reports:write").await;
    let key = create(
        &server,
        NewApiKey {
            owner: Some(owner.0.clone()),
            ..new_key("reports:read reports:write")
        },
    )
    .await;

    let (status, body) = exchange(&server, &key.key, &[], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "reports:read reports:write");
    assert!(body.get("refresh_token").is_none());
    let access_token = body["access_token"].as_str().unwrap().to_string();
    let header = jsonwebtoken::decode_header(&access_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let claims = verify_with_jwks(&server, &access_token, &server.base).await;
    assert_eq!(claims["sub"], owner.0.as_str());
    assert_eq!(claims["client_id"], owner.0.as_str());
    assert_eq!(claims["api_key_id"], key.record.id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    // The owning client can introspect the token it now holds.
    let introspected = introspect(&server, &owner, &access_token).await;
    assert_eq!(introspected["active"], true, "{introspected}");

    // A subset of the key's scopes, never more.
    let (status, body) = exchange(&server, &key.key, &[("scope", "reports:read")], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "reports:read");
    let (status, body) = exchange(&server, &key.key, &[("scope", "reports:delete")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");

    // Credentials sent along must be right.
    let wrong = (owner.0.clone(), "wrong".to_string());
    let (status, body) = exchange(&server, &key.key, &[], Some(&wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = exchange(&server, &key.key, &[], Some(&owner)).await;
    assert_eq!(status, StatusCode::OK);

    // Malformed exchanges.
    let (status, body) = exchange(
        &server,
        &key.key,
        &[(
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        )],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    let response = http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", key.key.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "only an API key is its own credential"
    );

    // Revoking the key refuses further exchanges and ends the tokens.
    api_keys::revoke(
        &*server.state.store,
        &*server.clock,
        &LogAuditSink,
        &Actor::Cli,
        &key.record.id,
    )
    .await
    .unwrap();
    let (status, body) = exchange(&server, &key.key, &[], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let introspected = introspect(&server, &owner, &access_token).await;
    assert_eq!(introspected, json!({ "active": false }));
    let (status, body) = exchange(&server, "tsr_nothing", &[], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    server.stop().await;
}

/// A person's key: `sub` is the person, `client_id` the key; exchanges
/// count against the rate limit; expired keys are refused.
async fn exchanges_follow_owner_limits_and_expiry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let carol = add_user(&server, "carol").await;
    let key = create(
        &server,
        NewApiKey {
            owner: Some("carol".into()),
            rate_limit: Some("2/60".into()),
            expires_in_secs: Some(1000),
            ..new_key("read")
        },
    )
    .await;
    let (status, body) = exchange(&server, &key.key, &[], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let claims = verify_with_jwks(&server, token, &server.base).await;
    assert_eq!(claims["sub"], carol.as_str());
    assert_eq!(claims["client_id"], key.record.id.as_str());
    let (status, _) = exchange(&server, &key.key, &[], None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(&server, &key.key, &[], None).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the third use in the window"
    );
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("RATE_LIMITED")
    );
    server.clock.advance(1000);
    let (status, body) = exchange(&server, &key.key, &[], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("EXPIRED")
    );
    server.stop().await;
}

/// RFC 7662 for API keys: active with the key's scopes and owner while the
/// key is good, `{"active": false}` once it is not.
async fn introspection_answers_for_api_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let caller = server.machine_client("read").await;
    let owner = server.machine_client("files:read").await;
    let key = create(
        &server,
        NewApiKey {
            owner: Some(owner.0.clone()),
            expires_in_secs: Some(600),
            ..new_key("files:read")
        },
    )
    .await;
    let answer = introspect(&server, &caller, &key.key).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "api_key");
    assert_eq!(answer["scope"], "files:read");
    assert_eq!(answer["client_id"], owner.0.as_str());
    assert_eq!(answer["sub"], owner.0.as_str());
    assert_eq!(answer["api_key_id"], key.record.id.as_str());
    assert_eq!(answer["exp"].as_i64(), key.record.expires_at);
    assert_eq!(answer["iss"], server.base.as_str());

    let unknown = format!("tsr_{}", "A".repeat(43));
    assert_eq!(
        introspect(&server, &caller, &unknown).await,
        json!({ "active": false })
    );
    server.clock.advance(600);
    assert_eq!(
        introspect(&server, &caller, &key.key).await,
        json!({ "active": false })
    );
    server.stop().await;
}

/// A registered resource server verifies keys with its own credentials,
/// and an exchange may name a resource (RFC 8707): the token's `aud` is
/// that API and its scopes those the API defines.
async fn resources_verify_keys_and_exchanges_target_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let added = tessera::service::resources::add(
        &*server.state.store,
        &*server.state.store,
        &*server.clock,
        &LogAuditSink,
        &Actor::Cli,
        tessera::service::resources::NewResource {
            identifier: "https://billing.example.com".into(),
            name: "Billing".into(),
            scope: Some("billing:read".into()),
            with_secret: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    server.state.resources.invalidate();
    let resource = (
        "https://billing.example.com".to_string(),
        added.secret.unwrap(),
    );
    let key = create(&server, new_key("billing:read reports:read")).await;
    let answer = verify(&server, &resource, &key.key).await;
    assert_eq!(answer["code"], "VALID", "{answer}");
    let wrong = (resource.0.clone(), "wrong".to_string());
    let (status, _) = verify_on(&server, &wrong, &json!({ "key": key.key })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = exchange(
        &server,
        &key.key,
        &[("resource", "https://billing.example.com")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "billing:read");
    let token = body["access_token"].as_str().unwrap();
    let claims = verify_with_jwks(&server, token, "https://billing.example.com").await;
    assert_eq!(claims["aud"], "https://billing.example.com");
    let use_count = |server: &TestServer, id: String| {
        let store = server.state.store.clone();
        async move { api_keys::show(&*store, &id).await.unwrap().use_count }
    };
    let before = use_count(&server, key.record.id.clone()).await;
    let (status, body) = exchange(
        &server,
        &key.key,
        &[("resource", "https://unknown.example.com")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_target");
    assert_eq!(
        use_count(&server, key.record.id.clone()).await,
        before,
        "a refused resource uses up nothing"
    );
    server.stop().await;
}

/// What an attacker would try: keys of deleted owners, a revocation
/// racing a use, an exchanged token outliving its key, probing resources
/// without a key, `aud` without scope, parameters we do not support,
/// admin scope on a key, a second rotation.
async fn keys_end_with_their_owner_and_refusals_leak_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = &*server.state.store;
    let caller = server.machine_client("read").await;
    let owner = server.machine_client("read").await;
    let client_key = create(
        &server,
        NewApiKey {
            owner: Some(owner.0.clone()),
            ..new_key("read")
        },
    )
    .await;
    let dave = add_user(&server, "dave").await;
    let user_key = create(
        &server,
        NewApiKey {
            owner: Some("dave".into()),
            ..new_key("read")
        },
    )
    .await;
    assert_eq!(
        verify(&server, &caller, &client_key.key).await["code"],
        "VALID"
    );
    assert_eq!(
        verify(&server, &caller, &user_key.key).await["code"],
        "VALID"
    );
    let (status, body) = exchange(&server, &user_key.key, &[], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let user_token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        introspect(&server, &caller, &user_token).await["active"],
        false,
        "only the key's client_id may introspect it"
    );
    assert!(store.delete_user(&dave, server.clock.now()).await.unwrap());
    assert!(
        store
            .delete_client(&owner.0, server.clock.now())
            .await
            .unwrap()
    );
    assert_eq!(
        verify(&server, &caller, &user_key.key).await["code"],
        "REVOKED"
    );
    assert_eq!(
        verify(&server, &caller, &client_key.key).await["code"],
        "REVOKED"
    );
    let (status, _) = exchange(&server, &user_key.key, &[], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A revocation between the lookup and the use of a rate-limited key
    // is not missed (an unlimited key's use happens at its lookup).
    let key = create(
        &server,
        NewApiKey {
            rate_limit: Some("10/60".into()),
            ..new_key("read")
        },
    )
    .await;
    let now = server.clock.now();
    let found = api_keys::lookup(store, now, &key.key)
        .await
        .unwrap()
        .unwrap();
    store.revoke_api_key(&key.record.id, now).await.unwrap();
    let used = api_keys::use_key(store, now, found, &[]).await.unwrap();
    assert_eq!(used.code, api_keys::VerifyCode::Revoked);
    assert_eq!(
        api_keys::show(store, &key.record.id)
            .await
            .unwrap()
            .use_count,
        0,
        "nothing was counted"
    );

    // An exchanged token never outlives its key.
    let short = create(
        &server,
        NewApiKey {
            expires_in_secs: Some(60),
            ..new_key("read")
        },
    )
    .await;
    let (status, body) = exchange(&server, &short.key, &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 60);

    // Without a usable key, nothing about resources is revealed.
    for junk in ["tsr_junk", short.key.as_str()] {
        let (status, body) = exchange(
            &server,
            junk,
            &[("resource", "https://not-registered.example.com")],
            None,
        )
        .await;
        if junk == short.key {
            assert_eq!(body["error"], "invalid_target", "a real key may learn it");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    server.clock.advance(60);
    let (_, body) = exchange(&server, &short.key, &[], None).await;
    assert_eq!(body["error"], "invalid_grant");

    // Unsupported RFC 8693 parameters are refused, not ignored.
    let key = create(&server, new_key("read")).await;
    let (_, body) = exchange(&server, &key.key, &[("audience", "billing")], None).await;
    assert_eq!(body["error"], "invalid_target");
    let (_, body) = exchange(
        &server,
        &key.key,
        &[(
            "actor_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        )],
        None,
    )
    .await;
    assert_eq!(body["error"], "invalid_request");

    // A key may not carry the admin scope; a key is rotated once.
    let refused = api_keys::create(
        store,
        store,
        store,
        &*server.clock,
        &LogAuditSink,
        &Actor::Cli,
        new_key("read tessera:admin"),
    )
    .await;
    assert!(refused.is_err());
    let rotate = |overlap| {
        api_keys::rotate(
            store,
            &*server.clock,
            &LogAuditSink,
            &Actor::Cli,
            &key.record.id,
            overlap,
        )
    };
    assert!(rotate(60).await.is_ok());
    assert!(matches!(
        rotate(60).await,
        Err(tessera::service::ServiceError::Conflict(_))
    ));

    // Refused uses are audited with their code.
    let answer = verify(&server, &caller, &short.key).await;
    assert_eq!(answer["code"], "EXPIRED");
    server.state.audit.flush().await;
    let audit = stored_text(&server.db).await;
    assert!(audit.contains("apikey.refused"), "{audit}");
    assert!(audit.contains("EXPIRED"), "{audit}");
    server.stop().await;
}

crate::both_backends!(
    keys_end_with_their_owner_and_refusals_leak_nothing,
    resources_verify_keys_and_exchanges_target_them,
    a_key_is_exchanged_for_a_short_lived_jwt,
    exchanges_follow_owner_limits_and_expiry,
    introspection_answers_for_api_keys,
    the_cli_manages_keys_and_stores_only_their_hash,
    verification_answers_every_code,
    revocation_and_rate_limits_hold_across_instances,
    racing_uses_never_exceed_the_rate_limit,
    rotation_overlap_follows_the_clock,
);
