//! Signing keys as resource servers and operators see them: the JWKS, the
//! rotation schedule, several instances on one database, `tessera keys`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, EcPrivateKeyRfc5915Der, Pkcs8V1Der};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
};
use p256::elliptic_curve::sec1::ToSec1Point as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};
use tessera::AppState;
use tessera::clock::{Clock, FixedClock};
use tessera::jose::rotation::Trigger;
use tessera::jose::{KeyState, MasterKey, SigningAlg, SigningKeyRecord};
use tessera::oauth::client::ClientRegistration;

use crate::cli::run_cli;
use crate::harness::{
    Backend, TestServer, eventually, http, random_id, test_master_key, verify_with_jwks,
};
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

// ---------------------------------------------------------------------------
// `tessera keys import` and `tessera keys export-public`

/// A directory of PEM files for one test, removed when dropped.
struct PemDir(std::path::PathBuf);

impl PemDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-pem-{}", random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, pem: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for PemDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An operator's key, made with the `rsa` / `p256` crates, with the public
/// parameters those crates (not Tessera) report.
struct OperatorKey {
    alg: SigningAlg,
    /// PEM forms: (label for messages, PEM text).
    pems: Vec<(&'static str, String)>,
    /// RFC 7638 §3.2 members: ("e", "n") for RSA, ("x", "y") for P-256.
    public: (String, String),
}

impl OperatorKey {
    fn rsa() -> Self {
        // aws-lc makes the key quickly; the rsa crate writes its PEMs.
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
        let key = rsa::PrivateKey::from_pkcs8_der(der.as_ref()).unwrap();
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &rsa::PrivateKey) -> Self {
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        Self {
            alg: SigningAlg::RS256,
            pems: vec![("PKCS#1", pkcs1), ("PKCS#8", pkcs8)],
            public: (
                unsigned_b64(&key.e().to_be_bytes()),
                unsigned_b64(&key.n().as_ref().to_be_bytes()),
            ),
        }
    }

    fn p256() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let key = p256::SecretKey::from_pkcs8_der(pair.to_pkcs8v1().unwrap().as_ref()).unwrap();
        let sec1 = key.to_sec1_pem(LineEnding::LF).unwrap().to_string();
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let point = key.public_key().to_sec1_point(false);
        let point = point.as_bytes();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed");
        Self {
            alg: SigningAlg::ES256,
            pems: vec![("SEC1", sec1), ("PKCS#8", pkcs8)],
            public: (
                URL_SAFE_NO_PAD.encode(&point[1..33]),
                URL_SAFE_NO_PAD.encode(&point[33..65]),
            ),
        }
    }

    /// The RFC 7638 thumbprint, computed here from the key's parameters:
    /// the required members in lexicographic order, no whitespace.
    fn thumbprint(&self) -> String {
        let (a, b) = &self.public;
        let canonical = match self.alg {
            SigningAlg::RS256 => format!(r#"{{"e":"{a}","kty":"RSA","n":"{b}"}}"#),
            SigningAlg::ES256 => format!(r#"{{"crv":"P-256","kty":"EC","x":"{a}","y":"{b}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// A resource server's key for it, from the operator's own parameters.
    fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        let (a, b) = &self.public;
        match self.alg {
            SigningAlg::RS256 => jsonwebtoken::DecodingKey::from_rsa_components(b, a).unwrap(),
            SigningAlg::ES256 => jsonwebtoken::DecodingKey::from_ec_components(a, b).unwrap(),
        }
    }
}

/// Big-endian, no leading zero octets, base64url (RFC 7518 §6.3.1).
fn unsigned_b64(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    URL_SAFE_NO_PAD.encode(&bytes[first..])
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Runs `tessera` on the server's database with the given key-encryption key.
async fn cli_with_master_key(server: &TestServer, args: &[&str], master_key: &str) -> Output {
    let url = server.db.url.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let master_key = master_key.to_string();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(&args)
            .env("TESSERA_DATABASE_URL", url)
            .env("TESSERA_MASTER_KEY", master_key)
            .env_remove("TESSERA_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// A command that must succeed; its stdout as JSON and its stderr.
async fn cli_ok(server: &TestServer, args: &[&str]) -> (Value, String) {
    let out = run_cli(server, args).await;
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stderr}"));
    (json, stderr)
}

/// Asserts exit code 2 with one line on stderr and nothing on stdout;
/// returns the line.
fn refused(out: Output, what: &str) -> String {
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(out.stdout.is_empty(), "{what} printed to stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr:?}");
    assert!(stderr.starts_with("tessera: "), "{what}: {stderr:?}");
    stderr
}

async fn import_reads_every_pem_form_and_keeps_the_thumbprint_kid(backend: Backend) {
    let server = start(backend).await;
    let dir = PemDir::new();
    let mut imported = Vec::new();
    for key in [OperatorKey::rsa(), OperatorKey::p256()] {
        let kid = key.thumbprint();
        imported.push(kid.clone());
        for (i, (form, pem)) in key.pems.iter().enumerate() {
            let before = stored_keys(&server).await;
            let path = dir.write(&format!("{}-{i}.pem", key.alg), pem);
            let args = ["keys", "import", "--pem", path.as_str()];
            if i > 0 {
                // The same key in another form: the same kid, refused.
                let line = refused(run_cli(&server, &args).await, form);
                assert!(line.contains(&kid) && line.contains("already"), "{line}");
                assert_eq!(stored_keys(&server).await, before, "nothing written");
                continue;
            }
            let (printed, stderr) = cli_ok(&server, &args).await;
            assert!(stderr.is_empty(), "{stderr}");
            let fields: BTreeSet<&str> = printed
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                fields,
                BTreeSet::from([
                    "kid",
                    "alg",
                    "state",
                    "created_at",
                    "activated_at",
                    "retired_at"
                ]),
                "{printed}"
            );
            assert_eq!(printed["kid"], kid.as_str(), "{} {form}", key.alg);
            assert_eq!(printed["alg"], key.alg.as_str(), "alg follows the key");
            assert_eq!(printed["state"], "next");
            assert!(printed["created_at"].is_i64());
            assert!(printed["activated_at"].is_null());

            // Stored sealed, in state next; it replaces the generated next
            // key, which retires without ever having signed.
            let after = stored_keys(&server).await;
            let stored = after.iter().find(|k| k.kid == kid).unwrap();
            assert_eq!((stored.alg, stored.state), (key.alg, KeyState::Next));
            // Sealed under the key-encryption key with the kid bound, as
            // PKCS#8 that aws-lc loads.
            let kek = MasterKey::from_base64(&test_master_key()).unwrap();
            let der = kek.open(&kid, &stored.private_key).unwrap();
            assert!(!stored.private_key.windows(der.len()).any(|w| w == der));
            match key.alg {
                SigningAlg::RS256 => {
                    aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).unwrap();
                }
                SigningAlg::ES256 => {
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
                }
            }
            let replaced = only(&before, key.alg, KeyState::Next);
            let replaced = after.iter().find(|k| k.kid == replaced).unwrap();
            assert_eq!(replaced.state, KeyState::Retired);
            assert_eq!(
                only(&after, key.alg, KeyState::Current),
                only(&before, key.alg, KeyState::Current),
                "the current key still signs"
            );

            // The running server publishes it under that kid, with the
            // operator's public parameters.
            eventually("the imported key is published", || {
                let (server, kid) = (&server, &kid);
                async move { published_kids(server).await.contains(kid) }
            })
            .await;
            let jwks = fetch_jwks(&server).await;
            let jwk = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid.as_str())
                .unwrap();
            let (a, b) = &key.public;
            match key.alg {
                SigningAlg::RS256 => {
                    assert_eq!((&jwk["e"], &jwk["n"]), (&json!(a), &json!(b)), "{jwk}");
                }
                SigningAlg::ES256 => {
                    assert_eq!((&jwk["x"], &jwk["y"]), (&json!(a), &json!(b)), "{jwk}");
                    assert_eq!(jwk["crv"], "P-256");
                }
            }
            assert_eq!(jwk["alg"], key.alg.as_str());
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(jwk.get(private).is_none(), "{jwk}");
            }
        }
    }

    // `keys list` shows the imported keys like any other.
    let (listed, _) = cli_ok(&server, &["keys", "list"]).await;
    let listed_next: BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "next")
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let imported: BTreeSet<&str> = imported.iter().map(String::as_str).collect();
    assert_eq!(listed_next, imported, "{listed}");
}

async fn imported_next_key_is_promoted_by_the_schedule(backend: Backend) {
    let server = start(backend).await;
    let clients = clients_per_alg(&server).await;
    let dir = PemDir::new();
    let keys = [OperatorKey::rsa(), OperatorKey::p256()];
    for key in &keys {
        let path = dir.write(&format!("{}.pem", key.alg), &key.pems[0].1);
        cli_ok(&server, &["keys", "import", "--pem", &path]).await;
    }
    // Not before the scheduled rotation...
    for ((_, id, secret), key) in clients.iter().zip(&keys) {
        assert!(!signs_with(&server, id, secret, &key.thumbprint()).await);
    }
    // ...and at it: the imported key is the published next key.
    server.clock.advance(PAST_ROTATION);
    let changes = server.state.rotate_keys(Trigger::Scheduled).await.unwrap();
    assert!(changes.warnings.is_empty(), "{:?}", changes.warnings);
    for ((alg, id, secret), key) in clients.iter().zip(&keys) {
        assert_eq!(*alg, key.alg);
        assert!(signs_with(&server, id, secret, &key.thumbprint()).await);
        let t = token(&server, id, secret).await;
        let mut validation = jsonwebtoken::Validation::new(match key.alg {
            SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
        });
        validation.set_issuer(&[&server.base]);
        validation.set_audience(&[&server.base]);
        jsonwebtoken::decode::<Value>(&t, &key.decoding_key(), &validation)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
}

async fn import_as_current_signs_at_once_with_the_operators_key(backend: Backend) {
    let server = start(backend).await;
    let clients = clients_per_alg(&server).await;
    let before = stored_keys(&server).await;
    let mut old_tokens = Vec::new();
    for (_, id, secret) in &clients {
        old_tokens.push(token(&server, id, secret).await);
    }
    let dir = PemDir::new();
    // The second form of each: RSA as PKCS#8, P-256 as PKCS#8, with --alg.
    for key in [OperatorKey::rsa(), OperatorKey::p256()] {
        let kid = key.thumbprint();
        let alg = key.alg.as_str();
        let path = dir.write(&format!("{alg}.pem"), &key.pems[1].1);
        let (printed, stderr) = cli_ok(
            &server,
            &[
                "keys", "import", "--pem", &path, "--alg", alg, "--state", "current",
            ],
        )
        .await;
        assert_eq!(printed["kid"], kid.as_str());
        assert_eq!(printed["state"], "current");
        assert!(printed["activated_at"].is_i64(), "{printed}");
        assert!(
            stderr.contains("warning") && stderr.contains(&kid),
            "{stderr}"
        );

        let after = stored_keys(&server).await;
        assert_eq!(only(&after, key.alg, KeyState::Current), kid);
        assert_eq!(
            only(&after, key.alg, KeyState::Retired),
            only(&before, key.alg, KeyState::Current),
            "the previous current key retires"
        );
        assert_eq!(
            only(&after, key.alg, KeyState::Next),
            only(&before, key.alg, KeyState::Next),
            "the next key waits as before"
        );

        // The running server signs with it as soon as it notices; a
        // resource server holding only the operator's public key verifies.
        let (_, id, secret) = clients.iter().find(|(a, _, _)| *a == key.alg).unwrap();
        eventually("the running server signs with the imported key", || {
            signs_with(&server, id, secret, &kid)
        })
        .await;
        let t = token(&server, id, secret).await;
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&server.base]);
        validation.set_audience(&[&server.base]);
        let claims = jsonwebtoken::decode::<Value>(&t, &key.decoding_key(), &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["client_id"], id.as_str());
        assert!(is_active(&server, id, secret, &t).await);
        verify_with_jwks(&server, &t, &server.base).await;
    }
    // Tokens signed before the import still verify: the retired keys stay
    // published.
    for ((_, id, secret), old) in clients.iter().zip(&old_tokens) {
        assert!(is_active(&server, id, secret, old).await);
        verify_with_jwks(&server, old, &server.base).await;
    }
}

async fn export_public_prints_the_jwks_the_server_serves(backend: Backend) {
    let server = start(backend).await;
    // Every state present.
    server.state.rotate_keys(Trigger::Manual).await.unwrap();
    let out = run_cli(&server, &["keys", "export-public"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = http()
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim_end().as_bytes(), &served[..], "byte for byte");
    let printed: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed["keys"].as_array().unwrap().len(), 6);
    for jwk in printed["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{jwk}");
        }
    }

    // It needs no key-encryption key: even a wrong one prints the JWKS.
    let out = cli_with_master_key(&server, &["keys", "export-public"], &other_master_key()).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end().as_bytes(),
        &served[..]
    );
}

/// A 32-byte key-encryption key that is not the test servers' one.
fn other_master_key() -> String {
    STANDARD.encode([7u8; 32])
}

/// A TryCryptoRng over the OS generator, for the rsa crate's key generation.
struct OsRng;

impl rsa::rand_core::TryRng for OsRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(u32::from_le_bytes(tessera::crypto::random_bytes()))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(u64::from_le_bytes(tessera::crypto::random_bytes()))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        aws_lc_rs::rand::fill(dst).unwrap();
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for OsRng {}

async fn unusable_keys_are_refused_with_exit_2_and_nothing_written(backend: Backend) {
    let server = start(backend).await;
    let dir = PemDir::new();
    let rsa_key = OperatorKey::rsa();
    let small = rsa::PrivateKey::new(&mut OsRng, 1024).unwrap();
    let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let ed25519 = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();

    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        ("not a PEM", "hello\n".into(), vec![], "no private key"),
        (
            "a public key only",
            pem("PUBLIC KEY", &[0x30, 0x00]),
            vec![],
            "PUBLIC KEY",
        ),
        (
            "garbage in the block",
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".into(),
            vec![],
            "PKCS#8",
        ),
        (
            "a truncated key",
            pem("RSA PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]),
            vec![],
            "PKCS#1",
        ),
        (
            "an encrypted key",
            pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x00]),
            vec![],
            "encrypted",
        ),
        (
            "two keys",
            format!("{}{}", rsa_key.pems[0].1, rsa_key.pems[1].1),
            vec![],
            "2 private keys",
        ),
        (
            "RSA-1024 PKCS#1",
            small.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
            vec![],
            "1024 bits",
        ),
        (
            "RSA-1024 PKCS#8",
            small.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            vec![],
            "at least 2048",
        ),
        (
            "P-384 PKCS#8",
            pem("PRIVATE KEY", p384.to_pkcs8v1().unwrap().as_ref()),
            vec![],
            "P-384",
        ),
        (
            "P-384 SEC1",
            pem(
                "EC PRIVATE KEY",
                AsDer::<EcPrivateKeyRfc5915Der>::as_der(&p384.private_key())
                    .unwrap()
                    .as_ref(),
            ),
            vec![],
            "P-384",
        ),
        (
            "Ed25519",
            pem("PRIVATE KEY", ed25519.to_pkcs8v1().unwrap().as_ref()),
            vec![],
            "Ed25519",
        ),
        (
            "an RSA key as ES256",
            rsa_key.pems[0].1.clone(),
            vec!["--alg", "ES256"],
            "--alg ES256",
        ),
        (
            "an unknown algorithm",
            rsa_key.pems[0].1.clone(),
            vec!["--alg", "PS256"],
            "PS256",
        ),
        (
            "an unknown state",
            rsa_key.pems[0].1.clone(),
            vec!["--state", "retired"],
            "retired",
        ),
    ];
    let before = stored_keys(&server).await;
    for (i, (what, text, extra, reason)) in cases.iter().enumerate() {
        let path = dir.write(&format!("{i}.pem"), text);
        let mut args = vec!["keys", "import", "--pem", path.as_str()];
        args.extend(extra);
        let line = refused(run_cli(&server, &args).await, what);
        assert!(line.contains(reason), "{what}: {line}");
        assert!(!line.contains("BEGIN RSA PRIVATE KEY-----"), "{line}");
    }
    let missing = dir.0.join("missing.pem");
    let line = refused(
        run_cli(
            &server,
            &["keys", "import", "--pem", missing.to_str().unwrap()],
        )
        .await,
        "a missing file",
    );
    assert!(line.contains("cannot read"), "{line}");
    assert_eq!(stored_keys(&server).await, before, "nothing was written");
}

async fn a_wrong_master_key_writes_no_keys(backend: Backend) {
    let server = start(backend).await;
    let dir = PemDir::new();
    let key = OperatorKey::p256();
    let path = dir.write("p256.pem", &key.pems[0].1);
    let before = stored_keys(&server).await;
    let versions = server.state.store.change_versions().await.unwrap();

    for args in [
        vec!["keys", "rotate"],
        vec!["keys", "import", "--pem", path.as_str()],
        vec![
            "keys",
            "import",
            "--pem",
            path.as_str(),
            "--state",
            "current",
        ],
    ] {
        let out = cli_with_master_key(&server, &args, &other_master_key()).await;
        let line = refused(out, &args.join(" "));
        assert!(line.contains("key-encryption key"), "{line}");
        assert_eq!(stored_keys(&server).await, before, "{args:?} wrote keys");
    }
    assert_eq!(
        server.state.store.change_versions().await.unwrap(),
        versions,
        "running servers were not told of a change"
    );

    // Nor does a server starting with it when a scheduled rotation is due.
    let store = tessera::store::connect(&server.db.url).await.unwrap();
    let clock = Arc::new(FixedClock::new(server.clock.now() + PAST_ROTATION));
    let wrong = MasterKey::from_base64(&other_master_key()).unwrap();
    let started = AppState::new(server.state.config.clone(), store, clock, wrong).await;
    let error = started
        .err()
        .expect("a server with the wrong key does not start");
    assert!(error.to_string().contains("key-encryption key"), "{error}");
    assert_eq!(stored_keys(&server).await, before, "the server wrote keys");

    // The right key still rotates.
    let out = cli_with_master_key(&server, &["keys", "rotate"], &test_master_key()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(stored_keys(&server).await, before);
}

crate::both_backends!(
    jwks_publishes_every_key_without_private_parts,
    jwks_is_cacheable_with_an_etag,
    scheduled_rotation_promotes_the_published_next_key,
    retired_key_is_deleted_after_the_longest_token_lifetime,
    two_instances_rotate_once,
    cli_rotation_reaches_the_running_server,
    cli_lists_keys_without_private_material,
    import_reads_every_pem_form_and_keeps_the_thumbprint_kid,
    imported_next_key_is_promoted_by_the_schedule,
    import_as_current_signs_at_once_with_the_operators_key,
    export_public_prints_the_jwks_the_server_serves,
    unusable_keys_are_refused_with_exit_2_and_nothing_written,
    a_wrong_master_key_writes_no_keys,
);
