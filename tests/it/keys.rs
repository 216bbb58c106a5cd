//! Signing keys as resource servers and operators see them: the JWKS, the
//! rotation schedule, several instances on one database, `tessera keys`.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::Value;
use tessera::jose::rotation::Trigger;
use tessera::jose::{KeyState, SigningAlg, SigningKeyRecord};
use tessera::oauth::client::ClientRegistration;

use crate::cli::run_cli;
use crate::harness::{Backend, TestServer, eventually, http, verify_with_jwks};
use crate::introspection::{is_active, kid_of, second_instance, start, start_with, token};

const DAY: i64 = 86_400;
/// The default rotation interval plus the default JWKS max-age: a
/// scheduled rotation is due and the `next` key has been seen by caches.
const PAST_ROTATION: i64 = 30 * DAY + 3600;

/// A client per algorithm: (alg, client_id, secret).
async fn clients_per_alg(server: &TestServer) -> Vec<(SigningAlg, String, String)> {
    let mut clients = Vec::new();
    for alg in SigningAlg::ALL {
        let (client, secret) = server
            .register(ClientRegistration {
                client_name: format!("{alg} machine"),
                scope: Some("read".into()),
                access_token_signed_response_alg: Some(alg),
                ..Default::default()
            })
            .await;
        clients.push((alg, client.client_id, secret.unwrap()));
    }
    clients
}

async fn stored_keys(server: &TestServer) -> Vec<SigningKeyRecord> {
    server.state.store.signing_keys().await.unwrap()
}

/// The only stored key of `alg` in `state`.
fn only(keys: &[SigningKeyRecord], alg: SigningAlg, state: KeyState) -> String {
    let found: Vec<&SigningKeyRecord> = keys
        .iter()
        .filter(|k| k.alg == alg && k.state == state)
        .collect();
    assert_eq!(found.len(), 1, "{alg} keys in state {state:?}: {found:?}");
    found[0].kid.clone()
}

/// How many keys of each (alg, state) are stored.
fn census(keys: &[SigningKeyRecord]) -> BTreeMap<(String, &'static str), usize> {
    let mut counts = BTreeMap::new();
    for k in keys {
        *counts
            .entry((k.alg.to_string(), k.state.as_str()))
            .or_insert(0) += 1;
    }
    counts
}

async fn fetch_jwks(server: &TestServer) -> Value {
    let response = http().get(server.url("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn jwks_kids(jwks: &Value) -> BTreeSet<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn published_kids(server: &TestServer) -> BTreeSet<String> {
    jwks_kids(&fetch_jwks(server).await)
}

async fn signs_with(server: &TestServer, id: &str, secret: &str, kid: &str) -> bool {
    kid_of(&token(server, id, secret).await) == kid
}

// ---------------------------------------------------------------------------
// JWKS

async fn jwks_publishes_every_key_without_private_parts(backend: Backend) {
    let server = start(backend).await;
    let response = http().get(server.url("/jwks")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();

    for (alg, kty) in [("RS256", "RSA"), ("ES256", "EC")] {
        let of_alg: Vec<&Value> = keys.iter().filter(|k| k["alg"] == alg).collect();
        // The current key and the next one, published before it signs.
        assert_eq!(of_alg.len(), 2, "{alg}: {jwks}");
        for key in of_alg {
            assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
            assert_eq!(key["use"], "sig", "{key}");
            assert_eq!(key["kty"], kty, "{key}");
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(
                    key.get(private).is_none(),
                    "{alg} JWK publishes {private:?}"
                );
            }
        }
    }
    let stored: BTreeSet<String> = stored_keys(&server)
        .await
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(jwks_kids(&jwks), stored);

    // Whatever signs is published, and a resource server can verify it.
    let (id, secret) = server.machine_client("read").await;
    let token = token(&server, &id, &secret).await;
    assert!(stored.contains(&kid_of(&token)));
    let claims = verify_with_jwks(&server, &token, &server.base).await;
    assert_eq!(claims["client_id"], id.as_str());
}

async fn jwks_is_cacheable_with_an_etag(backend: Backend) {
    let server = start(backend).await;
    let first = http().get(server.url("/jwks")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[CACHE_CONTROL], "public, max-age=3600");
    let etag = first.headers()[ETAG].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    let body = first.bytes().await.unwrap();

    // The same document again: same ETag and body.
    let again = http().get(server.url("/jwks")).send().await.unwrap();
    assert_eq!(again.headers()[ETAG], etag.as_str());
    assert_eq!(again.bytes().await.unwrap(), body);

    for validator in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"nope\", {etag}"),
    ] {
        let cached = http()
            .get(server.url("/jwks"))
            .header(IF_NONE_MATCH, &validator)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED, "{validator}");
        assert_eq!(cached.headers()[ETAG], etag.as_str());
        assert_eq!(cached.headers()[CACHE_CONTROL], "public, max-age=3600");
        assert!(cached.bytes().await.unwrap().is_empty());
    }
    let stale = http()
        .get(server.url("/jwks"))
        .header(IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    // A rotation changes the document, and so the ETag.
    let changes = server.state.rotate_keys(Trigger::Manual).await.unwrap();
    assert!(!changes.is_empty());
    let after = http()
        .get(server.url("/jwks"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::OK, "the cached JWKS is stale");
    let new_etag = after.headers()[ETAG].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    let new_body = after.bytes().await.unwrap();
    assert_ne!(new_body, body);
    let revalidated = http()
        .get(server.url("/jwks"))
        .header(IF_NONE_MATCH, &new_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
}

// ---------------------------------------------------------------------------
// The rotation schedule

async fn scheduled_rotation_promotes_the_published_next_key(backend: Backend) {
    let server = start(backend).await;
    let clients = clients_per_alg(&server).await;
    let before = stored_keys(&server).await;
    let jwks_before = published_kids(&server).await;

    // Not due yet: nothing changes.
    server.clock.advance(30 * DAY - 1);
    let changes = server.state.rotate_keys(Trigger::Scheduled).await.unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    server.clock.advance(PAST_ROTATION - (30 * DAY - 1));

    // Tokens signed just before the rotation.
    let mut old_tokens = Vec::new();
    for (alg, id, secret) in &clients {
        let t = token(&server, id, secret).await;
        assert_eq!(kid_of(&t), only(&before, *alg, KeyState::Current));
        old_tokens.push(t);
    }

    let changes = server.state.rotate_keys(Trigger::Scheduled).await.unwrap();
    assert!(!changes.is_empty());
    assert!(changes.warnings.is_empty(), "{:?}", changes.warnings);
    let after = stored_keys(&server).await;

    for (alg, id, secret) in &clients {
        let was_next = only(&before, *alg, KeyState::Next);
        let t = token(&server, id, secret).await;
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg.as_str());
        assert_eq!(header.kid.as_deref(), Some(was_next.as_str()));
        assert!(
            jwks_before.contains(&was_next),
            "{alg}: the key that signs now was published before the rotation"
        );
        assert_eq!(only(&after, *alg, KeyState::Current), was_next);
        assert_eq!(
            only(&after, *alg, KeyState::Retired),
            only(&before, *alg, KeyState::Current)
        );
        let new_next = only(&after, *alg, KeyState::Next);
        assert!(!jwks_before.contains(&new_next), "a fresh next key");
        let claims = verify_with_jwks(&server, &t, &server.base).await;
        assert_eq!(claims["client_id"], id.as_str());
    }
    let jwks_after = published_kids(&server).await;
    let stored: BTreeSet<String> = after.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(
        jwks_after, stored,
        "retired, current and next are all published"
    );

    // Tokens signed before the rotation still verify, both ways.
    for ((_, id, secret), old) in clients.iter().zip(&old_tokens) {
        assert!(is_active(&server, id, secret, old).await);
        let claims = verify_with_jwks(&server, old, &server.base).await;
        assert_eq!(claims["client_id"], id.as_str());
    }

    // After a rotation the schedule promotes nothing for a whole interval
    // (it only drops the retired keys once their tokens are gone).
    server.clock.advance(30 * DAY - 1);
    let changes = server.state.rotate_keys(Trigger::Scheduled).await.unwrap();
    assert!(
        changes.insert.is_empty() && changes.update.is_empty(),
        "{changes:?}"
    );
    for (alg, id, secret) in &clients {
        let t = token(&server, id, secret).await;
        assert_eq!(kid_of(&t), only(&before, *alg, KeyState::Next));
    }
}

async fn retired_key_is_deleted_after_the_longest_token_lifetime(backend: Backend) {
    // Access tokens live 15 min, ID tokens (the default) an hour: the
    // longest lifetime is the hour.
    let server = start_with(backend, |config| {
        config.tokens.access_token_ttl_secs = 900;
    })
    .await;
    let clients = clients_per_alg(&server).await;
    let before = stored_keys(&server).await;
    server.clock.advance(PAST_ROTATION);
    let mut old_tokens = Vec::new();
    for (_, id, secret) in &clients {
        old_tokens.push(token(&server, id, secret).await);
    }
    server.state.rotate_keys(Trigger::Scheduled).await.unwrap();
    let retired: BTreeSet<String> = SigningAlg::ALL
        .iter()
        .map(|alg| only(&before, *alg, KeyState::Current))
        .collect();

    server.clock.advance(899);
    for ((_, id, secret), old) in clients.iter().zip(&old_tokens) {
        assert!(
            is_active(&server, id, secret, old).await,
            "retired key verifies"
        );
    }

    // Still published one second before the longest lifetime plus leeway.
    server.clock.advance(3600 + 300 - 1 - 899);
    let changes = server.state.rotate_keys(Trigger::Scheduled).await.unwrap();
    assert!(changes.delete.is_empty(), "{changes:?}");
    let stored: BTreeSet<String> = stored_keys(&server)
        .await
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert!(retired.is_subset(&stored));
    assert!(retired.is_subset(&published_kids(&server).await));

    server.clock.advance(1);
    let changes = server.state.rotate_keys(Trigger::Scheduled).await.unwrap();
    assert_eq!(
        changes.delete.iter().cloned().collect::<BTreeSet<_>>(),
        retired
    );
    let after = stored_keys(&server).await;
    assert!(
        after.iter().all(|k| k.state != KeyState::Retired),
        "{after:?}"
    );
    assert_eq!(after.len(), 4, "a current and a next key per algorithm");
    let published = published_kids(&server).await;
    assert!(
        published.is_disjoint(&retired),
        "deleted keys are unpublished"
    );
    // Signing goes on with the current keys.
    for (alg, id, secret) in &clients {
        let t = token(&server, id, secret).await;
        assert_eq!(kid_of(&t), only(&after, *alg, KeyState::Current));
        assert!(published.contains(&kid_of(&t)));
    }
}

async fn two_instances_rotate_once(backend: Backend) {
    let a = start(backend).await;
    let b = second_instance(&a).await;
    let (id, secret) = a.machine_client("read").await;
    let before = stored_keys(&a).await;
    assert_eq!(
        before.len(),
        4,
        "the second instance made no keys of its own"
    );
    let old_kid = only(&before, SigningAlg::RS256, KeyState::Current);
    let next_kid = only(&before, SigningAlg::RS256, KeyState::Next);
    for server in [&a, &b] {
        assert!(signs_with(server, &id, &secret, &old_kid).await);
    }

    a.clock.advance(PAST_ROTATION);
    let (state_a, state_b) = (a.state.clone(), b.state.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { state_a.rotate_keys(Trigger::Scheduled).await }),
        tokio::spawn(async move { state_b.rotate_keys(Trigger::Scheduled).await }),
    );
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    assert!(
        ra.is_empty() != rb.is_empty(),
        "exactly one instance rotates: {ra:?} / {rb:?}"
    );

    let after = stored_keys(&a).await;
    let expected: BTreeMap<(String, &'static str), usize> = SigningAlg::ALL
        .iter()
        .flat_map(|alg| ["current", "next", "retired"].map(|state| ((alg.to_string(), state), 1)))
        .collect();
    assert_eq!(census(&after), expected);
    for alg in SigningAlg::ALL {
        assert_eq!(
            only(&after, alg, KeyState::Current),
            only(&before, alg, KeyState::Next)
        );
        assert_eq!(
            only(&after, alg, KeyState::Retired),
            only(&before, alg, KeyState::Current)
        );
    }

    // Both instances sign with the new key: the one that rotated at once,
    // the other as soon as it notices.
    for server in [&a, &b] {
        eventually("the instance signs with the promoted key", || {
            signs_with(server, &id, &secret, &next_kid)
        })
        .await;
    }
    let stored: BTreeSet<String> = after.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(published_kids(&b).await, stored);

    // And later checks by either instance change nothing more.
    a.clock.advance(3600);
    for server in [&a, &b] {
        assert!(
            server
                .state
                .rotate_keys(Trigger::Scheduled)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(census(&stored_keys(&a).await), expected);
}

// ---------------------------------------------------------------------------
// `tessera keys`

async fn cli_rotation_reaches_the_running_server(backend: Backend) {
    let server = start(backend).await;
    let clients = clients_per_alg(&server).await;
    let before = stored_keys(&server).await;
    let mut old_tokens = Vec::new();
    for (alg, id, secret) in &clients {
        let t = token(&server, id, secret).await;
        assert_eq!(kid_of(&t), only(&before, *alg, KeyState::Current));
        old_tokens.push(t);
    }

    let out = run_cli(&server, &["keys", "rotate"]).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let listed: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    // The next keys are seconds old, far younger than the JWKS max-age.
    let warnings: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(warnings.len(), 2, "one warning per algorithm: {stderr}");
    for line in &warnings {
        assert!(line.contains("warning"), "{line}");
        assert!(line.contains("max-age"), "{line}");
    }

    for (alg, id, secret) in &clients {
        let was_next = only(&before, *alg, KeyState::Next);
        let state_of = |kid: &str| {
            listed
                .iter()
                .find(|k| k["kid"] == kid)
                .map(|k| k["state"].as_str().unwrap().to_string())
        };
        assert_eq!(state_of(&was_next).as_deref(), Some("current"));
        assert_eq!(
            state_of(&only(&before, *alg, KeyState::Current)).as_deref(),
            Some("retired")
        );
        assert!(warnings.iter().any(|w| w.contains(&was_next)), "{stderr}");
        eventually("the running server signs with the promoted key", || {
            signs_with(&server, id, secret, &was_next)
        })
        .await;
    }
    let after = stored_keys(&server).await;
    let stored: BTreeSet<String> = after.iter().map(|k| k.kid.clone()).collect();
    eventually("the running server publishes the new next keys", || {
        let (server, stored) = (&server, &stored);
        async move { published_kids(server).await == *stored }
    })
    .await;
    // Tokens signed before still verify: the retired keys stay published.
    for ((_, id, secret), old) in clients.iter().zip(&old_tokens) {
        assert!(is_active(&server, id, secret, old).await);
        verify_with_jwks(&server, old, &server.base).await;
    }
}

async fn cli_lists_keys_without_private_material(backend: Backend) {
    let server = start(backend).await;
    // So that every state is listed.
    server.state.rotate_keys(Trigger::Manual).await.unwrap();
    let stored = stored_keys(&server).await;

    let out = run_cli(&server, &["keys", "list"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let listed: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed.len(), stored.len());

    let fields: BTreeSet<&str> = [
        "kid",
        "alg",
        "state",
        "created_at",
        "activated_at",
        "retired_at",
    ]
    .into();
    for record in &stored {
        let entry = listed
            .iter()
            .find(|e| e["kid"] == record.kid.as_str())
            .unwrap_or_else(|| panic!("{} is not listed: {stdout}", record.kid));
        let keys: BTreeSet<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, fields, "{entry}");
        assert_eq!(entry["alg"], record.alg.as_str());
        assert_eq!(entry["state"], record.state.as_str());
        assert_eq!(entry["created_at"], record.created_at);
        assert_eq!(
            entry["activated_at"],
            serde_json::json!(record.activated_at)
        );
        assert_eq!(entry["retired_at"], serde_json::json!(record.retired_at));
        match record.state {
            KeyState::Next => assert!(entry["activated_at"].is_null()),
            KeyState::Current => assert!(entry["activated_at"].is_i64()),
            KeyState::Retired => assert!(entry["retired_at"].is_i64()),
        }
        // Not the sealed private key in any encoding.
        for encoded in [
            STANDARD.encode(&record.private_key),
            URL_SAFE_NO_PAD.encode(&record.private_key),
            record.private_key[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        ] {
            assert!(!stdout.contains(&encoded));
        }
    }
    assert!(!stdout.contains("private"), "{stdout}");
    for state in ["next", "current", "retired"] {
        assert_eq!(
            listed.iter().filter(|e| e["state"] == state).count(),
            2,
            "one {state} key per algorithm"
        );
    }
}

crate::both_backends!(
    jwks_publishes_every_key_without_private_parts,
    jwks_is_cacheable_with_an_etag,
    scheduled_rotation_promotes_the_published_next_key,
    retired_key_is_deleted_after_the_longest_token_lifetime,
    two_instances_rotate_once,
    cli_rotation_reaches_the_running_server,
    cli_lists_keys_without_private_material,
);
