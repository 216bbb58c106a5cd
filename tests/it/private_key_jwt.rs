//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC
//! Core §9) with keys registered inline as `jwks`: assertions built by hand
//! with `jsonwebtoken::encode` (neither `oauth2` nor `openidconnect` signs
//! client assertions), keys generated at test time with aws-lc.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};
use tessera::clock::Clock;
use tessera::domain::client::ClientAssertionAlg;
use tessera::oauth::client::ClientRegistration;

use crate::harness::{Backend, TestServer, http, random_id};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's key pair: the private half signs, the public JWK is
/// registered.
struct ClientKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn ec_key(kid: &str) -> ClientKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let point = pair.public_key().as_ref();
    ClientKey {
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    }
}

fn rsa_key(kid: &str) -> ClientKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
    // jsonwebtoken signs RSA with a PKCS#1 key.
    let pkcs1 = rsa::PrivateKey::from_pkcs8_der(pkcs8.as_ref())
        .unwrap()
        .to_pkcs1_der()
        .unwrap();
    let public = pair.public_key();
    ClientKey {
        kid: kid.into(),
        encoding: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
        jwk: json!({
            "kty": "RSA", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }),
    }
}

/// Registers a `private_key_jwt` machine client with `keys`; its id.
async fn register(
    server: &TestServer,
    keys: &[&ClientKey],
    signing_alg: Option<ClientAssertionAlg>,
) -> String {
    let jwks = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
    let (client, secret) = server
        .register(ClientRegistration {
            client_name: "signer".into(),
            scope: Some("read".into()),
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(jwks),
            token_endpoint_auth_signing_alg: signing_alg,
            ..Default::default()
        })
        .await;
    assert_eq!(secret, None, "a private_key_jwt client gets no secret");
    client.client_id
}

/// The claims RFC 7523 §3 asks for, for `client_id` at the token endpoint.
fn claims(server: &TestServer, client_id: &str) -> Value {
    let now = server.clock.now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": server.url("/token"),
        "iat": now,
        "exp": now + 60,
        "jti": random_id(),
    })
}

fn sign(key: &ClientKey, alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn form(assertion: &str, rest: &str) -> String {
    format!("client_assertion_type={ASSERTION_TYPE}&client_assertion={assertion}&{rest}")
}

async fn post(server: &TestServer, path: &str, body: String) -> reqwest::Response {
    http()
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// client_credentials at /token with `assertion`: status and body.
async fn token_with(server: &TestServer, assertion: &str) -> (u16, Value) {
    let response = post(
        server,
        "/token",
        form(assertion, "grant_type=client_credentials"),
    )
    .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn assert_refused(server: &TestServer, assertion: &str, what: &str) {
    let (status, body) = token_with(server, assertion).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{what}: {body}"
    );
}

async fn es256_rs256_and_ps256_assertions_get_tokens_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ec, rsa) = (ec_key("ec-1"), rsa_key("rsa-1"));
    let id = register(&server, &[&ec, &rsa], None).await;
    for (key, alg) in [
        (&ec, Algorithm::ES256),
        (&rsa, Algorithm::RS256),
        (&rsa, Algorithm::PS256),
    ] {
        let assertion = sign(key, alg, &claims(&server, &id));
        let (status, token) = token_with(&server, &assertion).await;
        assert_eq!(status, 200, "{alg:?}: {token}");
        assert_eq!(token["scope"], "read");
        let jwt = token["access_token"].as_str().unwrap();
        let claims = crate::harness::verify_with_jwks(&server, jwt, &server.base).await;
        assert_eq!(claims["client_id"], id.as_str());
        // RFC 7523 §3 item 7: the same assertion again is a replay.
        assert_refused(&server, &assertion, "replayed").await;
    }
    // Without a kid, the keys that fit the algorithm are tried; a
    // client_id sent along must be the assertion's sub.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = None;
    let no_kid = jsonwebtoken::encode(&header, &claims(&server, &id), &ec.encoding).unwrap();
    let response = post(
        &server,
        "/token",
        form(
            &no_kid,
            &format!("grant_type=client_credentials&client_id={id}"),
        ),
    )
    .await;
    assert_eq!(response.status(), 200);
    let other_id = form(
        &sign(&ec, Algorithm::ES256, &claims(&server, &id)),
        "grant_type=client_credentials&client_id=someone-else",
    );
    let response = post(&server, "/token", other_id).await;
    assert_eq!(response.status(), 401);
}

async fn wrong_assertions_are_401_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ec, rsa) = (ec_key("ec-1"), rsa_key("rsa-1"));
    let id = register(&server, &[&ec, &rsa], Some(ClientAssertionAlg::ES256)).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&server, &id);
        change(&mut c);
        c
    };
    let now = server.clock.now();
    let cases: Vec<(&str, String)> = vec![
        (
            "signed by an unregistered key with a registered kid",
            sign(&ec_key("ec-1"), Algorithm::ES256, &claims(&server, &id)),
        ),
        (
            "aud is another server",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| c["aud"] = "https://other.example/token".into()),
            ),
        ),
        (
            "exp more than 5 minutes ahead",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| c["exp"] = (now + 600).into()),
            ),
        ),
        (
            "no exp",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
        ),
        (
            "no jti",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
        ),
        (
            "iss is not sub",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| c["iss"] = "someone-else".into()),
            ),
        ),
        (
            "nbf in the future",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| c["nbf"] = (now + 120).into()),
            ),
        ),
        (
            "RS256 by a registered key, but the client registered ES256",
            sign(&rsa, Algorithm::RS256, &claims(&server, &id)),
        ),
        (
            "HS256 with the public key as the secret",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims(&server, &id),
                &EncodingKey::from_secret(ec.jwk.to_string().as_bytes()).unwrap(),
            )
            .unwrap(),
        ),
        ("alg none", unsigned(&claims(&server, &id))),
        (
            "exp more than 5 minutes after iat",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| c["iat"] = (now - 300).into()),
            ),
        ),
        (
            "a client that does not exist",
            sign(
                &ec,
                Algorithm::ES256,
                &with(&|c| {
                    c["iss"] = "no-such-client".into();
                    c["sub"] = "no-such-client".into();
                }),
            ),
        ),
        ("not a JWT", "not-a-jwt".to_string()),
    ];
    for (what, assertion) in &cases {
        assert_refused(&server, assertion, what).await;
    }

    // Expired: a good assertion, presented after its exp.
    let late = sign(&ec, Algorithm::ES256, &claims(&server, &id));
    server.clock.advance(61);
    assert_refused(&server, &late, "expired").await;

    // A secret in place of the assertion: the client has none, and its
    // method does not accept one.
    let response = post(
        &server,
        "/token",
        format!("grant_type=client_credentials&client_id={id}&client_secret=guess"),
    )
    .await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // With the assertion too, that is two methods at once.
    let both = form(
        &sign(&ec, Algorithm::ES256, &claims(&server, &id)),
        "grant_type=client_credentials&client_secret=guess",
    );
    let response = post(&server, "/token", both).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    // After all that, a good assertion still works.
    let good = sign(&ec, Algorithm::ES256, &claims(&server, &id));
    assert_eq!(token_with(&server, &good).await.0, 200);
}

/// A JWS with `alg: none` and no signature.
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

async fn introspection_and_revocation_accept_assertions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ec = ec_key("ec-1");
    let id = register(&server, &[&ec], None).await;
    let (status, token) =
        token_with(&server, &sign(&ec, Algorithm::ES256, &claims(&server, &id))).await;
    assert_eq!(status, 200);
    let access_token = token["access_token"].as_str().unwrap();

    let introspect = |aud: String| {
        let mut c = claims(&server, &id);
        c["aud"] = aud.into();
        form(
            &sign(&ec, Algorithm::ES256, &c),
            &format!("token={access_token}"),
        )
    };
    // The introspection endpoint's own URL is an accepted audience.
    let response = post(
        &server,
        "/introspect",
        introspect(server.url("/introspect")),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], id.as_str());

    // The issuer is an accepted audience anywhere.
    let mut c = claims(&server, &id);
    c["aud"] = json!([server.base.clone(), "https://elsewhere.example"]);
    let revoke = form(
        &sign(&ec, Algorithm::ES256, &c),
        &format!("token={access_token}"),
    );
    let response = post(&server, "/revoke", revoke).await;
    assert_eq!(response.status(), 200);

    let response = post(&server, "/introspect", introspect(server.url("/token"))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], false, "revoked: {body}");

    // The revocation URL is not an audience for introspection.
    let response = post(&server, "/introspect", introspect(server.url("/revoke"))).await;
    assert_eq!(response.status(), 401);
}

async fn one_jti_in_twenty_parallel_requests_wins_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ec = ec_key("ec-1");
    let id = register(&server, &[&ec], None).await;
    let assertion = sign(&ec, Algorithm::ES256, &claims(&server, &id));
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = http()
            .post(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&assertion, "grant_type=client_credentials"));
        requests.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses: Vec<u16> = requests.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        19,
        "{statuses:?}"
    );
}

async fn used_jtis_are_pruned_after_they_expire(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ec = ec_key("ec-1");
    let id = register(&server, &[&ec], None).await;
    let mut c = claims(&server, &id);
    assert_eq!(
        token_with(&server, &sign(&ec, Algorithm::ES256, &c))
            .await
            .0,
        200
    );
    let store = &server.state.store;
    assert_eq!(
        store
            .prune_client_assertions(server.clock.now())
            .await
            .unwrap(),
        0
    );
    server.clock.advance(61);
    assert_eq!(
        store
            .prune_client_assertions(server.clock.now())
            .await
            .unwrap(),
        1
    );
    // Once expired, the jti may be used again with a new exp.
    let now = server.clock.now();
    c["iat"] = now.into();
    c["exp"] = (now + 60).into();
    assert_eq!(
        token_with(&server, &sign(&ec, Algorithm::ES256, &c))
            .await
            .0,
        200
    );
}

async fn cli_registers_a_client_without_a_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ec = ec_key("cli-key");
    let dir = std::env::temp_dir().join(format!("tessera-jwks-{}", random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks_file = dir.join("jwks.json");
    std::fs::write(&jwks_file, json!({"keys": [ec.jwk]}).to_string()).unwrap();
    let output = server.cli(&[
        "client",
        "add",
        "--name",
        "signer",
        "--scope",
        "read",
        "--token-endpoint-auth-method",
        "private_key_jwt",
        "--jwks-file",
        jwks_file.to_str().unwrap(),
        "--token-endpoint-auth-signing-alg",
        "ES256",
    ]);
    assert!(output.status.success(), "{output:?}");
    let info: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(info.get("client_secret").is_none(), "{info}");
    assert_eq!(info["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(info["token_endpoint_auth_signing_alg"], "ES256");
    assert_eq!(info["jwks"]["keys"][0]["kid"], "cli-key");
    assert_eq!(info["grant_types"], json!(["client_credentials"]));
    let id = info["client_id"].as_str().unwrap();
    let (status, token) =
        token_with(&server, &sign(&ec, Algorithm::ES256, &claims(&server, id))).await;
    assert_eq!(status, 200, "{token}");

    // A private key in the file is refused: exit 2, one line on stderr.
    let mut private = ec.jwk.clone();
    private["d"] = "AAAA".into();
    std::fs::write(&jwks_file, json!({"keys": [private]}).to_string()).unwrap();
    let output = server.cli(&[
        "client",
        "add",
        "--name",
        "leaky",
        "--token-endpoint-auth-method",
        "private_key_jwt",
        "--jwks-file",
        jwks_file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("jwks"), "{stderr}");
    assert!(!stderr.contains("AAAA"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn register_endpoint_takes_inline_jwks(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.registration.open = true).await;
    let url = server.url("/register");
    let register = |body: Value| {
        let request = http().post(&url).json(&body);
        async move { request.send().await.unwrap() }
    };
    let base = json!({
        "client_name": "svc",
        "grant_types": ["client_credentials"],
        "scope": "read",
        "token_endpoint_auth_method": "private_key_jwt",
    });
    let response = register(base.clone()).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    assert!(body["error_description"].as_str().unwrap().contains("jwks"));

    let rsa = rsa_key("rsa-1");
    let mut with_keys = base;
    with_keys["jwks"] = json!({"keys": [rsa.jwk]});
    with_keys["token_endpoint_auth_signing_alg"] = "PS256".into();
    let response = register(with_keys).await;
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    assert!(info.get("client_secret").is_none(), "{info}");
    let id = info["client_id"].as_str().unwrap();
    let (status, token) =
        token_with(&server, &sign(&rsa, Algorithm::PS256, &claims(&server, id))).await;
    assert_eq!(status, 200, "{token}");
    assert_refused(
        &server,
        &sign(&rsa, Algorithm::RS256, &claims(&server, id)),
        "RS256 when PS256 is registered",
    )
    .await;
}

async fn discovery_lists_the_method_and_algorithms(backend: Backend) {
    let server = TestServer::start(backend).await;
    let document: Value =
        crate::harness::get_json(&server, "/.well-known/openid-configuration").await;
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &document[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{endpoint}: {methods}"
        );
        assert_eq!(
            document[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
            json!(["RS256", "ES256", "PS256"]),
            "{endpoint}"
        );
    }
}

crate::both_backends!(
    es256_rs256_and_ps256_assertions_get_tokens_once,
    wrong_assertions_are_401_invalid_client,
    introspection_and_revocation_accept_assertions,
    one_jti_in_twenty_parallel_requests_wins_once,
    used_jtis_are_pruned_after_they_expire,
    cli_registers_a_client_without_a_secret,
    register_endpoint_takes_inline_jwks,
    discovery_lists_the_method_and_algorithms,
);
