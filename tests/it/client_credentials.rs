//! The client credentials grant at /token, driven by the `oauth2` crate
//! for the happy path and by raw HTTP for each error.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::Value;
use tessera::jose::SigningAlg;
use tessera::oauth::client::ClientRegistration;

use crate::harness::{Backend, TestServer, http, verify_with_jwks};

async fn post_token(
    server: &TestServer,
    basic: Option<(&str, &str)>,
    body: &str,
) -> reqwest::Response {
    let mut req = http()
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "every error has a description: {body}"
    );
    (status, body["error"].as_str().unwrap().to_string())
}

async fn oauth2_crate_obtains_a_verifiable_jwt(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, secret) = server.machine_client("read billing:write").await;
    let client = BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret))
        .set_auth_type(AuthType::BasicAuth)
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap());
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(token.scopes().unwrap(), &vec![Scope::new("read".into())]);
    assert_eq!(token.expires_in().unwrap().as_secs(), 3600);

    let jwt = token.access_token().secret();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert!(header.kid.is_some());
    let claims = verify_with_jwks(&server, jwt, &server.base).await;
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "read");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
}

async fn client_secret_post_and_es256(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client, secret) = server
        .register(ClientRegistration {
            client_name: "poster".into(),
            scope: Some("read".into()),
            token_endpoint_auth_method: Some("client_secret_post".into()),
            access_token_signed_response_alg: Some(SigningAlg::ES256),
            ..Default::default()
        })
        .await;
    let secret = secret.unwrap();
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={secret}",
        client.client_id
    );
    let response = post_token(&server, None, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    // Without `scope` the registered scopes are granted (RFC 6749 §3.3).
    assert_eq!(token["scope"], "read");
    let jwt = token["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(jwt).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    verify_with_jwks(&server, jwt, &server.base).await;

    // A secret may travel by Basic too, whichever of the two the client
    // registered (issue 7.14: libraries differ in their default).
    let response = post_token(
        &server,
        Some((&client.client_id, &secret)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(response.status(), 200);
}

async fn bad_credentials_are_401_invalid_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    for basic in [
        Some((id.as_str(), "wrong")),
        Some(("no-such-client", secret.as_str())),
        None,
    ] {
        let response = post_token(&server, basic, "grant_type=client_credentials").await;
        assert_eq!(response.status(), 401);
        // RFC 6749 §5.2: the Basic challenge answers the Authorization
        // header only.
        match basic {
            Some(_) => assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic"),
            ),
            None => assert!(response.headers().get("www-authenticate").is_none()),
        }
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(error_code(response).await.1, "invalid_client");
    }
}

async fn grant_and_scope_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let auth = Some((id.as_str(), secret.as_str()));
    let cases = [
        (
            "grant_type=client_credentials&scope=write",
            400,
            "invalid_scope",
        ),
        (
            "grant_type=client_credentials&scope=read%20write",
            400,
            "invalid_scope",
        ),
        (
            "grant_type=password&username=a&password=b",
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type=authorization_code&code=x",
            400,
            "unauthorized_client",
        ),
        ("scope=read", 400, "invalid_request"),
        (
            "grant_type=client_credentials&scope=read&scope=read",
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let response = post_token(&server, auth, body).await;
        assert_eq!(error_code(response).await, (status, code.into()), "{body}");
    }
}

async fn malformed_requests_never_yield_5xx(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    let client = http();
    // Wrong content type.
    let response = client
        .post(server.url("/token"))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, (400, "invalid_request".into()));
    // Broken percent-encoding and a broken Basic header.
    for (auth, body) in [
        (Some("Basic %%%"), "grant_type=client_credentials"),
        (Some("Basic Zm9v"), "grant_type=client_credentials"),
        (None, "grant_type=%ZZ&client_id=%"),
        (None, "\u{0}\u{1}=="),
    ] {
        let mut req = client
            .post(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let response = req.send().await.unwrap();
        assert!(response.status().is_client_error(), "{auth:?} {body}");
    }
    // Oversized body.
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(70 * 1024)
    );
    let response = post_token(&server, Some((&id, &secret)), &big).await;
    assert_eq!(response.status(), 413);
    // GET on the token endpoint.
    let response = client.get(server.url("/token")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

async fn issuing_writes_nothing_to_the_database(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (id, secret) = server.machine_client("read").await;
    // Warm the client cache; after that, issuing changes nothing stored.
    let first = post_token(
        &server,
        Some((&id, &secret)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(first.status(), 200);
    let before = server.state.store.change_versions().await.unwrap();
    for _ in 0..20 {
        let r = post_token(
            &server,
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(server.state.store.change_versions().await.unwrap(), before);
    assert!(
        !server
            .state
            .store
            .is_access_token_revoked("anything")
            .await
            .unwrap()
    );
}

crate::both_backends!(
    oauth2_crate_obtains_a_verifiable_jwt,
    client_secret_post_and_es256,
    bad_credentials_are_401_invalid_client,
    grant_and_scope_errors,
    malformed_requests_never_yield_5xx,
    issuing_writes_nothing_to_the_database,
);
