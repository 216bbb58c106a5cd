//! Introspection (RFC 7662) and revocation (RFC 7009): who may ask, which
//! tokens count as active, and the life of the revocation list.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tessera::clock::Clock;
use tessera::jose::{KeySet, KeyState, MasterKey, SigningAlg, keys};
use tessera::oauth::client::ClientRegistration;

use crate::harness::{Backend, TestServer, http};

// ---------------------------------------------------------------------------
// Helpers, also used by keys.rs and cli.rs.

/// A server whose background upkeep (scheduled rotation, pruning) has
/// made its first pass and will not run again during the test: the test
/// drives those steps itself, by moving the clock and calling them.
pub(crate) async fn start(backend: Backend) -> TestServer {
    start_with(backend, |_| {}).await
}

pub(crate) async fn start_with(
    backend: Backend,
    configure: impl FnOnce(&mut tessera::config::Config),
) -> TestServer {
    TestServer::start_with(backend, configure).await
}

/// Another instance of `first` (same database, clock and issuer), as
/// behind a load balancer.
pub(crate) async fn second_instance(first: &TestServer) -> TestServer {
    let issuer = first.base.clone();
    TestServer::start_on(first.db.clone(), first.clock.clone(), |config| {
        config.issuer = issuer;
    })
    .await
}

/// POSTs the client credentials grant with HTTP Basic; status and body.
pub(crate) async fn request_token(
    server: &TestServer,
    client_id: &str,
    secret: &str,
) -> (StatusCode, Value) {
    let response = http()
        .post(server.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// A client credentials access token; panics unless the grant succeeds.
pub(crate) async fn token(server: &TestServer, client_id: &str, secret: &str) -> String {
    let (status, body) = request_token(server, client_id, secret).await;
    assert_eq!(status, StatusCode::OK, "token request failed: {body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The `kid` in a JWT's header.
pub(crate) fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The decoded (unverified) payload of a JWT.
pub(crate) fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// POSTs a form to `path`, with HTTP Basic when `auth` is given.
pub(crate) async fn post_form(
    server: &TestServer,
    path: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http().post(server.url(path)).form(form);
    if let Some((id, secret)) = auth {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

/// Introspects `token` as the given client; panics unless the answer is 200.
pub(crate) async fn introspect(server: &TestServer, id: &str, secret: &str, token: &str) -> Value {
    let response = post_form(
        server,
        "/introspect",
        Some((id, secret)),
        &[("token", token)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    response.json().await.unwrap()
}

pub(crate) async fn is_active(server: &TestServer, id: &str, secret: &str, token: &str) -> bool {
    let body = introspect(server, id, secret, token).await;
    match body["active"] {
        Value::Bool(true) => true,
        Value::Bool(false) => {
            assert_eq!(
                body,
                json!({"active": false}),
                "an inactive token reveals nothing"
            );
            false
        }
        _ => panic!("introspection without a boolean `active`: {body}"),
    }
}

/// Asserts an RFC 6749 §5.2 error response and returns its body.
async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    // RFC 6749 §5.2: a challenge only answers the Authorization header
    // (tests/it/attacks.rs checks when it must and must not be there).
    if let Some(challenge) = response.headers().get(WWW_AUTHENTICATE) {
        assert!(challenge.to_str().unwrap().starts_with("Basic"));
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn scopes(value: &Value) -> BTreeSet<String> {
    value
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------
// Introspection

async fn active_token_shows_its_claims(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read billing:write").await;
    let issued_at = server.clock.now();
    let token = token(&server, &id, &secret).await;

    let body = introspect(&server, &id, &secret, &token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], id.as_str());
    assert_eq!(
        body["sub"],
        id.as_str(),
        "client credentials: sub is the client"
    );
    assert_eq!(
        scopes(&body["scope"]),
        BTreeSet::from(["read".to_string(), "billing:write".to_string()])
    );
    assert_eq!(body["iss"], server.base.as_str());
    assert_eq!(body["aud"], server.base.as_str());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iat"], issued_at);
    assert_eq!(body["exp"], issued_at + 3600);
    assert_eq!(body["jti"], payload_of(&token)["jti"]);

    // RFC 7662 §4: a client that is neither the token's client nor in its
    // audience learns nothing (resource servers introspect as registered
    // resources, issue 9).
    let (rs_id, rs_secret) = server.machine_client("").await;
    let seen_by_rs = introspect(&server, &rs_id, &rs_secret, &token).await;
    assert_eq!(seen_by_rs, serde_json::json!({ "active": false }));
}

async fn introspection_requires_client_authentication(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let token = token(&server, &id, &secret).await;

    let anonymous = post_form(&server, "/introspect", None, &[("token", &token)]).await;
    let body = assert_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(body.get("active").is_none());

    let wrong_secret = post_form(
        &server,
        "/introspect",
        Some((&id, "not-the-secret")),
        &[("token", &token)],
    )
    .await;
    assert_error(wrong_secret, StatusCode::UNAUTHORIZED, "invalid_client").await;

    let unknown_client = post_form(
        &server,
        "/introspect",
        Some(("no-such-client", &secret)),
        &[("token", &token)],
    )
    .await;
    assert_error(unknown_client, StatusCode::UNAUTHORIZED, "invalid_client").await;

    // A public client has no credentials to prove who it is.
    let (public, _) = server
        .register(ClientRegistration {
            client_name: "spa".into(),
            public: true,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            ..Default::default()
        })
        .await;
    let as_public = post_form(
        &server,
        "/introspect",
        None,
        &[("token", &token), ("client_id", &public.client_id)],
    )
    .await;
    assert_error(as_public, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

async fn introspection_without_token_is_invalid_request(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let token = token(&server, &id, &secret).await;
    let auth = Some((id.as_str(), secret.as_str()));

    let missing = post_form(
        &server,
        "/introspect",
        auth,
        &[("token_type_hint", "access_token")],
    )
    .await;
    assert_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;

    let empty = post_form(&server, "/introspect", auth, &[("token", "")]).await;
    assert_error(empty, StatusCode::BAD_REQUEST, "invalid_request").await;

    let repeated = post_form(
        &server,
        "/introspect",
        auth,
        &[("token", &token), ("token", &token)],
    )
    .await;
    assert_error(repeated, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn untrustworthy_tokens_are_inactive(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let real = token(&server, &id, &secret).await;
    assert!(is_active(&server, &id, &secret, &real).await);
    let [header, payload, signature]: [&str; 3] =
        real.split('.').collect::<Vec<_>>().try_into().unwrap();
    let claims = payload_of(&real);
    let rs256_kid = kid_of(&real);
    let es256_kid = server
        .state
        .keys()
        .current_kid(SigningAlg::ES256)
        .unwrap()
        .to_string();

    let mut cases: Vec<(&str, String)> = vec![
        ("garbage", "garbage".into()),
        ("three garbage segments", "a.b.c".into()),
        ("the header alone", format!("{header}..")),
    ];

    // `alg: none`, our kid, the real payload, no signature.
    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": rs256_kid});
    cases.push((
        "alg none",
        format!("{}.{payload}.", b64(none_header.to_string().as_bytes())),
    ));
    cases.push((
        "real token, signature stripped",
        format!("{header}.{payload}."),
    ));

    // One payload byte changed: the signature no longer matches.
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let tampered = text.replace("\"scope\":\"read\"", "\"scope\":\"reae\"");
    assert_eq!(
        text.bytes()
            .zip(tampered.bytes())
            .filter(|(a, b)| a != b)
            .count(),
        1
    );
    cases.push((
        "one payload byte changed",
        format!("{header}.{}.{signature}", b64(tampered.as_bytes())),
    ));

    // A key of another deployment (another key-encryption key), same issuer.
    let now = server.clock.now();
    let foreign_master = MasterKey::from_bytes(&[7u8; 32]).unwrap();
    let mut foreign_keys = Vec::new();
    for alg in SigningAlg::ALL {
        let mut record = keys::generate(alg, &foreign_master, now).unwrap();
        record.state = KeyState::Current;
        record.activated_at = Some(now);
        foreign_keys.push(record);
    }
    let foreign = KeySet::load(&foreign_keys, &foreign_master).unwrap();
    cases.push((
        "foreign RS256 key",
        foreign.sign(SigningAlg::RS256, "at+jwt", &claims).unwrap(),
    ));
    cases.push((
        "foreign ES256 key",
        foreign.sign(SigningAlg::ES256, "at+jwt", &claims).unwrap(),
    ));

    // The foreign ES256 key claiming our ES256 kid.
    let foreign_es256 = foreign_keys
        .iter()
        .find(|k| k.alg == SigningAlg::ES256)
        .unwrap();
    let der = foreign_master
        .open(&foreign_es256.kid, &foreign_es256.private_key)
        .unwrap();
    let mut spoofed = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    spoofed.typ = Some("at+jwt".into());
    spoofed.kid = Some(es256_kid.clone());
    cases.push((
        "foreign key under our kid",
        jsonwebtoken::encode(
            &spoofed,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&der),
        )
        .unwrap(),
    ));

    // Algorithm confusion: HMAC keyed with our published RSA key.
    let jwks: Value = crate::harness::get_json(&server, "/jwks").await;
    let rsa_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == rs256_kid.as_str())
        .unwrap()
        .to_string();
    let mut hs256 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs256.typ = Some("at+jwt".into());
    hs256.kid = Some(rs256_kid.clone());
    cases.push((
        "HS256 keyed with our public key",
        jsonwebtoken::encode(
            &hs256,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(rsa_jwk.as_bytes()).unwrap(),
        )
        .unwrap(),
    ));

    // Our own key, but another issuer, or not an access token at all.
    let mut other_issuer = claims.clone();
    other_issuer["iss"] = "https://evil.example".into();
    cases.push((
        "foreign issuer",
        server
            .state
            .keys()
            .sign(SigningAlg::RS256, "at+jwt", &other_issuer)
            .unwrap(),
    ));
    cases.push((
        "typ JWT, not at+jwt",
        server
            .state
            .keys()
            .sign(SigningAlg::RS256, "JWT", &claims)
            .unwrap(),
    ));

    for (what, token) in &cases {
        let body = introspect(&server, &id, &secret, token).await;
        assert_eq!(body, json!({"active": false}), "{what}");
    }
    // None of this disturbed the real token.
    assert!(is_active(&server, &id, &secret, &real).await);
}

async fn expired_token_is_inactive(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let token = token(&server, &id, &secret).await;

    server.clock.advance(3599);
    assert!(
        is_active(&server, &id, &secret, &token).await,
        "one second left"
    );
    server.clock.advance(1);
    assert!(
        !is_active(&server, &id, &secret, &token).await,
        "exp reached"
    );
    server.clock.advance(86_400);
    assert!(!is_active(&server, &id, &secret, &token).await);
}

// ---------------------------------------------------------------------------
// Revocation

async fn revoked_token_is_inactive(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let token = token(&server, &id, &secret).await;
    let other = self::token(&server, &id, &secret).await;
    let jti = payload_of(&token)["jti"].as_str().unwrap().to_string();
    assert!(
        !server
            .state
            .store
            .is_access_token_revoked(&jti)
            .await
            .unwrap()
    );

    let revoked = post_form(
        &server,
        "/revoke",
        Some((&id, &secret)),
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::OK);

    assert!(!is_active(&server, &id, &secret, &token).await);
    assert!(
        server
            .state
            .store
            .is_access_token_revoked(&jti)
            .await
            .unwrap()
    );
    // Only that token: the client's other token is untouched.
    assert!(is_active(&server, &id, &secret, &other).await);

    // Revoking it again is no error.
    let again = post_form(
        &server,
        "/revoke",
        Some((&id, &secret)),
        &[("token", &token)],
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(!is_active(&server, &id, &secret, &token).await);
}

async fn revoking_an_unknown_token_answers_200(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    for unknown in ["no-such-token", "a.b.c"] {
        for hint in ["access_token", "refresh_token"] {
            let response = post_form(
                &server,
                "/revoke",
                Some((&id, &secret)),
                &[("token", unknown), ("token_type_hint", hint)],
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK, "{unknown} ({hint})");
        }
    }
}

async fn revoking_another_clients_token_is_refused(backend: Backend) {
    let server = start(backend).await;
    let (owner, owner_secret) = server.machine_client("read").await;
    let (intruder, intruder_secret) = server.machine_client("read").await;
    let token = token(&server, &owner, &owner_secret).await;
    let jti = payload_of(&token)["jti"].as_str().unwrap().to_string();

    let response = post_form(
        &server,
        "/revoke",
        Some((&intruder, &intruder_secret)),
        &[("token", &token)],
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;

    assert!(is_active(&server, &owner, &owner_secret, &token).await);
    assert!(
        !server
            .state
            .store
            .is_access_token_revoked(&jti)
            .await
            .unwrap()
    );
}

async fn revocation_requires_client_authentication(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let token = token(&server, &id, &secret).await;

    let anonymous = post_form(&server, "/revoke", None, &[("token", &token)]).await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;

    let wrong_secret = post_form(
        &server,
        "/revoke",
        Some((&id, "wrong")),
        &[("token", &token)],
    )
    .await;
    assert_error(wrong_secret, StatusCode::UNAUTHORIZED, "invalid_client").await;

    assert!(is_active(&server, &id, &secret, &token).await);
}

async fn revocation_list_prunes_expired_entries(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let early = token(&server, &id, &secret).await;
    server.clock.advance(1800);
    let late = token(&server, &id, &secret).await;
    for t in [&early, &late] {
        let response = post_form(&server, "/revoke", Some((&id, &secret)), &[("token", t)]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let jti = |t: &str| payload_of(t)["jti"].as_str().unwrap().to_string();
    let store = &server.state.store;

    // Nothing has expired yet: nothing is pruned.
    assert_eq!(
        store.prune_revocations(server.clock.now()).await.unwrap(),
        0
    );
    assert!(store.is_access_token_revoked(&jti(&early)).await.unwrap());

    // The early token expires: its entry goes, the later one stays.
    server.clock.advance(1800);
    assert_eq!(
        store.prune_revocations(server.clock.now()).await.unwrap(),
        1
    );
    assert!(!store.is_access_token_revoked(&jti(&early)).await.unwrap());
    assert!(store.is_access_token_revoked(&jti(&late)).await.unwrap());
    assert!(!is_active(&server, &id, &secret, &early).await);
    assert!(
        !is_active(&server, &id, &secret, &late).await,
        "revoked, not yet expired"
    );

    server.clock.advance(1800);
    assert_eq!(
        store.prune_revocations(server.clock.now()).await.unwrap(),
        1
    );
    assert!(!store.is_access_token_revoked(&jti(&late)).await.unwrap());
    assert!(!is_active(&server, &id, &secret, &late).await, "expired");
    assert_eq!(
        store.prune_revocations(server.clock.now()).await.unwrap(),
        0
    );
}

async fn revocation_is_seen_by_every_instance(backend: Backend) {
    let a = start(backend).await;
    let b = second_instance(&a).await;
    let (id, secret) = a.machine_client("read").await;
    let token = token(&a, &id, &secret).await;
    assert!(is_active(&b, &id, &secret, &token).await);

    let response = post_form(&a, "/revoke", Some((&id, &secret)), &[("token", &token)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    // No cache stands between a revocation and the other instance.
    assert!(!is_active(&b, &id, &secret, &token).await);
}

// ---------------------------------------------------------------------------
// Limits

fn oversized_form() -> String {
    format!("token={}", "a".repeat(70 * 1024))
}

async fn oversized_body_is_refused_with_413(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    for path in ["/introspect", "/revoke", "/token"] {
        let response = http()
            .post(server.url(path))
            .basic_auth(&id, Some(&secret))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(oversized_form())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    // Just under the limit is an ordinary (if useless) request.
    let token = "a".repeat(60 * 1024);
    assert!(!is_active(&server, &id, &secret, &token).await);
}

async fn oversized_body_error_is_oauth_json(backend: Backend) {
    let server = start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let response = http()
        .post(server.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(oversized_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "413 answered as {content_type}: {text:?}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].is_string());
}

crate::both_backends!(
    active_token_shows_its_claims,
    introspection_requires_client_authentication,
    introspection_without_token_is_invalid_request,
    untrustworthy_tokens_are_inactive,
    expired_token_is_inactive,
    revoked_token_is_inactive,
    revoking_an_unknown_token_answers_200,
    revoking_another_clients_token_is_refused,
    revocation_requires_client_authentication,
    revocation_list_prunes_expired_entries,
    revocation_is_seen_by_every_instance,
    oversized_body_is_refused_with_413,
    oversized_body_error_is_oauth_json,
);
