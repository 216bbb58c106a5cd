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

use crate::harness::{Backend, TestDatabase, TestServer, http};

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
    let caller = server.machine_client("read").await;
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

crate::both_backends!(
    the_cli_manages_keys_and_stores_only_their_hash,
    verification_answers_every_code,
    revocation_and_rate_limits_hold_across_instances,
    racing_uses_never_exceed_the_rate_limit,
    rotation_overlap_follows_the_clock,
);
