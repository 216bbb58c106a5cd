//! Dynamic client registration (RFC 7591) at /register and its management
//! (RFC 7592) at /register/{client_id}: the `openidconnect` crate as the
//! registering client, reqwest JSON for every rule and error, then the
//! registered client used for real at /authorize and /token.

use openidconnect::core::{
    CoreApplicationType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreProviderMetadata,
    CoreRegisterErrorResponseType, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::registration::{
    AdditionalClientMetadata, ClientRegistrationRequest, EmptyAdditionalClientRegistrationResponse,
};
use openidconnect::{AccessToken, ClientName, IssuerUrl, RedirectUrl, ResponseTypes};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::browser::{self, ALL_SCOPES, AuthRequest, Browser, REDIRECT, Rp};
use crate::harness::{Backend, TestServer, http};
use crate::introspection::request_token;

const TOKEN: &str = "initial-access-token-for-tests";

/// A server that accepts registrations with `TOKEN`.
async fn start(backend: Backend) -> TestServer {
    start_with(backend, |_| {}).await
}

async fn start_with(
    backend: Backend,
    configure: impl FnOnce(&mut tessera::config::Config),
) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.login.failure_delay_ms = 0;
        c.registration.initial_access_tokens = vec![TOKEN.into()];
        configure(c);
    })
    .await
}

pub(crate) async fn discovery(server: &TestServer) -> Value {
    crate::harness::get_json(server, "/.well-known/openid-configuration").await
}

/// POST /register with a JSON body and, if given, a Bearer token.
pub(crate) async fn post_register(
    server: &TestServer,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = http().post(server.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Registers `body` with `TOKEN`; the client information response.
async fn register(server: &TestServer, body: Value) -> Value {
    let response = post_register(server, Some(TOKEN), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    response.json().await.unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// GET, PUT or DELETE on /register/{client_id}.
async fn manage(
    server: &TestServer,
    method: reqwest::Method,
    client_id: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = http().request(method, server.url(&format!("/register/{client_id}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// Status, `error` and `error_description` of an error response.
async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        s(&body["error"]).to_string(),
        s(&body["error_description"]).to_string(),
    )
}

/// A 401 `invalid_token` with a Bearer challenge.
async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let (_, error, _) = error_of(response).await;
    assert_eq!(error, "invalid_token");
}

async fn client_count(server: &TestServer) -> usize {
    server.state.store.clients().await.unwrap().len()
}

// ---------------------------------------------------------------------------
// The openidconnect crate as the registering client.

/// `scope` (RFC 7591 §2), which OpenID Connect Registration does not define.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScopeMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}
impl AdditionalClientMetadata for ScopeMetadata {}

type RegistrationRequest = ClientRegistrationRequest<
    ScopeMetadata,
    EmptyAdditionalClientRegistrationResponse,
    CoreApplicationType,
    CoreClientAuthMethod,
    CoreRegisterErrorResponseType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

async fn openidconnect_crate_registers_a_client_that_signs_people_in(backend: Backend) {
    let server = start(backend).await;
    browser::add_user(&server, "alice").await;
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http())
            .await
            .unwrap();
    let endpoint = metadata
        .registration_endpoint()
        .expect("registration_endpoint advertised");
    assert_eq!(endpoint.as_str(), server.url("/register"));

    let request = RegistrationRequest::new(
        vec![RedirectUrl::new(REDIRECT.into()).unwrap()],
        ScopeMetadata {
            scope: Some(ALL_SCOPES.into()),
        },
    )
    .set_client_name(Some(ClientName::new("Registered App".into()).into()))
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .set_response_types(Some(vec![ResponseTypes::new(vec![CoreResponseType::Code])]))
    .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::ClientSecretBasic))
    .set_initial_access_token(Some(AccessToken::new(TOKEN.into())));
    let registered = request.register_async(endpoint, &http()).await.unwrap();

    let client_id = registered.client_id().to_string();
    let secret = registered
        .client_secret()
        .expect("a client secret")
        .secret()
        .clone();
    assert!(registered.registration_access_token().is_some());
    assert_eq!(
        registered.registration_client_uri().unwrap().as_str(),
        server.url(&format!("/register/{client_id}"))
    );
    assert_eq!(
        registered.additional_metadata().scope,
        Some("email offline_access openid profile".into())
    );

    // The client signs a person in; being third-party, it is asked for consent.
    let rp = Rp {
        id: client_id.clone(),
        secret: Some(secret),
    };
    let req = AuthRequest::new(&rp);
    let browser = Browser::new(&server);
    let login = browser.authorize(&req).await;
    let consent = browser.login(&login, "alice", browser::PASSWORD).await;
    assert!(consent.is_consent(), "{}", consent.body);
    assert!(consent.body.contains("Registered App"));
    let params = browser.decide(&consent, "allow").await.callback();
    let (status, tokens) =
        browser::exchange(&server, &rp, &params["code"], &req.verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());

    // The crate reads the server's refusals too.
    let refused = RegistrationRequest::new(
        vec![RedirectUrl::new("http://rp.example.com/cb".into()).unwrap()],
        ScopeMetadata { scope: None },
    )
    .set_initial_access_token(Some(AccessToken::new(TOKEN.into())))
    .register_async(endpoint, &http())
    .await;
    match refused {
        Err(openidconnect::registration::ClientRegistrationError::ServerResponse(e)) => {
            assert_eq!(
                e.error(),
                &CoreRegisterErrorResponseType::InvalidRedirectUri
            )
        }
        other => panic!("expected invalid_redirect_uri, got {other:?}"),
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Who may register.

async fn without_a_token_configured_register_is_404_and_not_advertised(backend: Backend) {
    let server = TestServer::start(backend).await;
    let unknown = http().get(server.url("/nope")).send().await.unwrap();
    let unknown_status = unknown.status();
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(unknown_status, StatusCode::NOT_FOUND);
    let body = json!({"redirect_uris": [REDIRECT]});
    for token in [None, Some(TOKEN)] {
        let response = post_register(&server, token, &body).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.json::<Value>().await.unwrap(), unknown_body);
    }
    let response = manage(&server, reqwest::Method::GET, "abc", Some(TOKEN), None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        discovery(&server)
            .await
            .get("registration_endpoint")
            .is_none()
    );
    assert_eq!(client_count(&server).await, 0);
}

async fn a_wrong_or_missing_initial_token_is_401(backend: Backend) {
    let server = start(backend).await;
    let body = json!({"client_name": "x", "redirect_uris": [REDIRECT]});

    let missing = post_register(&server, None, &body).await;
    assert_eq!(missing.headers()[WWW_AUTHENTICATE], "Bearer");
    assert_invalid_token(missing).await;

    let wrong = post_register(&server, Some("initial-access-token-for-test"), &body).await;
    assert_eq!(
        wrong.headers()[WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );
    assert_invalid_token(wrong).await;

    let basic = http()
        .post(server.url("/register"))
        .basic_auth("x", Some(TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_invalid_token(basic).await;

    // The token is checked before the body is looked at.
    let junk = http()
        .post(server.url("/register"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_invalid_token(junk).await;
    assert_eq!(client_count(&server).await, 0);

    // The configured token works, in any case of the scheme.
    let ok = http()
        .post(server.url("/register"))
        .header("authorization", format!("bearer {TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    assert_eq!(
        s(&discovery(&server).await["registration_endpoint"]),
        server.url("/register")
    );
}

async fn open_registration_needs_no_token(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.registration.open = true).await;
    assert_eq!(
        s(&discovery(&server).await["registration_endpoint"]),
        server.url("/register")
    );
    let response = post_register(
        &server,
        None,
        &json!({"client_name": "svc", "grant_types": ["client_credentials"], "scope": "read"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let info: Value = response.json().await.unwrap();
    // A machine client gets a token at once, with its registered scope.
    let (status, token) =
        request_token(&server, s(&info["client_id"]), s(&info["client_secret"])).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["scope"], "read");
}

// ---------------------------------------------------------------------------
// The metadata rules.

async fn bad_metadata_is_refused_naming_the_field(backend: Backend) {
    let server = start(backend).await;
    let uris = |u: &str| json!({"client_name": "x", "redirect_uris": [u]});
    let with = |field: &str, value: Value| {
        let mut body = json!({"client_name": "x", "redirect_uris": [REDIRECT]});
        body[field] = value;
        body
    };
    let cases = [
        (
            uris("http://rp.example.com/cb"),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            uris("https://rp.example.com/cb#frag"),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            uris("/relative/cb"),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            uris("javascript:alert(1)"),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            with("redirect_uris", json!(REDIRECT)),
            "invalid_client_metadata",
            "redirect_uris",
        ),
        (
            with("grant_types", json!(["implicit"])),
            "invalid_client_metadata",
            "grant_types",
        ),
        (
            with("grant_types", json!(["password"])),
            "invalid_client_metadata",
            "grant_types",
        ),
        (
            with("response_types", json!(["token"])),
            "invalid_client_metadata",
            "response_types",
        ),
        (
            with("token_endpoint_auth_method", json!("client_secret_jwt")),
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        // private_key_jwt needs inline public keys; jwks_uri is not
        // supported (no outbound HTTP) and jwks goes with no other method.
        (
            with("token_endpoint_auth_method", json!("private_key_jwt")),
            "invalid_client_metadata",
            "jwks",
        ),
        (
            with("jwks_uri", json!("https://rp.example.com/jwks")),
            "invalid_client_metadata",
            "jwks_uri",
        ),
        (
            with("jwks", json!({"keys": []})),
            "invalid_client_metadata",
            "jwks",
        ),
        (
            with("token_endpoint_auth_signing_alg", json!("HS256")),
            "invalid_client_metadata",
            "token_endpoint_auth_signing_alg",
        ),
        (
            with("id_token_signed_response_alg", json!("HS256")),
            "invalid_client_metadata",
            "id_token_signed_response_alg",
        ),
        (
            with("access_token_signed_response_alg", json!("none")),
            "invalid_client_metadata",
            "access_token_signed_response_alg",
        ),
        (
            with("scope", json!("a\\b")),
            "invalid_client_metadata",
            "scope",
        ),
        (
            with("client_name", json!(7)),
            "invalid_client_metadata",
            "client_name",
        ),
        (
            with(
                "post_logout_redirect_uris",
                json!(["http://rp.example.com/out"]),
            ),
            "invalid_client_metadata",
            "post_logout_redirect_uris",
        ),
        // Combinations: the grant or response type they concern is named.
        (
            json!({"client_name": "x", "grant_types": ["authorization_code"]}),
            "invalid_client_metadata",
            "authorization_code",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["client_credentials"],
                   "response_types": ["code"]}),
            "invalid_client_metadata",
            "authorization_code",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
            "client_credentials",
        ),
        (
            json!({"grant_types": ["client_credentials", "refresh_token"]}),
            "invalid_client_metadata",
            "refresh_token",
        ),
    ];
    for (body, code, named) in cases {
        let response = post_register(&server, Some(TOKEN), &body).await;
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let (status, error, description) = error_of(response).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{body}: {description}"
        );
        assert!(description.contains(named), "{body}: {description}");
    }

    // Not JSON, or not an object of metadata.
    for (content_type, raw) in [
        ("application/json", "{\"redirect_uris\": ["),
        ("application/json", "[1, 2]"),
        ("application/x-www-form-urlencoded", "client_name=x"),
    ] {
        let response = http()
            .post(server.url("/register"))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(raw)
            .send()
            .await
            .unwrap();
        let (status, error, _) = error_of(response).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_client_metadata"),
            "{raw}"
        );
    }
    assert_eq!(client_count(&server).await, 0, "nothing refused was stored");

    // The router's body limit applies.
    let huge = json!({"client_name": "x".repeat(70 * 1024)});
    let response = post_register(&server, Some(TOKEN), &huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn acceptable_metadata_is_registered_and_unknown_fields_ignored(backend: Backend) {
    let server = start(backend).await;
    let info = register(
        &server,
        json!({
            "redirect_uris": ["http://127.0.0.1/native", "com.example.app:/callback"],
            "token_endpoint_auth_method": "none",
            "id_token_signed_response_alg": "ES256",
            "access_token_signed_response_alg": "ES256",
            "post_logout_redirect_uris": ["com.example.app:/signed-out"],
            "logo_uri": "https://rp.example.com/logo.png",
            "client_name#ja-Jpan-JP": "クライアント名",
            "software_statement": null,
            "x-anything": {"nested": [1, 2]}
        }),
    )
    .await;
    let id = s(&info["client_id"]);
    // RFC 7591 §3.2.1: what was registered, with the server's defaults.
    assert_eq!(
        info["client_name"], id,
        "an unnamed client is named by its id"
    );
    assert_eq!(info["grant_types"], json!(["authorization_code"]));
    assert_eq!(info["response_types"], json!(["code"]));
    assert_eq!(info["scope"], "email openid profile");
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert_eq!(info["id_token_signed_response_alg"], "ES256");
    assert!(
        info.get("client_secret").is_none(),
        "a public client has no secret"
    );
    assert!(info.get("logo_uri").is_none() && info.get("x-anything").is_none());
    assert!(info["client_id_issued_at"].is_i64());

    // Only the SHA-256 of the registration access token is stored.
    let token = s(&info["registration_access_token"]);
    assert!(token.len() >= 43);
    let stored = server
        .state
        .store
        .registration_token_hash(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, tessera::crypto::hash_secret(token));
    assert_ne!(stored, token);
}

async fn registered_clients_never_skip_consent(backend: Backend) {
    let server = start(backend).await;
    browser::add_user(&server, "alice").await;
    let info = register(
        &server,
        json!({"client_name": "Sneaky", "redirect_uris": [REDIRECT], "skip_consent": true,
               "scope": "openid"}),
    )
    .await;
    assert_eq!(info["skip_consent"], false);
    let id = s(&info["client_id"]);
    let stored = server.state.store.client(id).await.unwrap().unwrap();
    assert!(!stored.metadata.skip_consent);
    let rp = Rp {
        id: id.into(),
        secret: info["client_secret"].as_str().map(str::to_string),
    };
    let browser = Browser::new(&server);
    let login = browser
        .authorize(&AuthRequest::new(&rp).set("scope", "openid"))
        .await;
    let page = browser.login(&login, "alice", browser::PASSWORD).await;
    assert!(
        page.is_consent(),
        "the consent page is shown: {}",
        page.body
    );

    // An update cannot make it first-party either.
    let response = manage(
        &server,
        reqwest::Method::PUT,
        id,
        info["registration_access_token"].as_str(),
        Some(
            &json!({"client_id": id, "client_name": "Sneaky", "redirect_uris": [REDIRECT],
                     "skip_consent": true}),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stored = server.state.store.client(id).await.unwrap().unwrap();
    assert!(!stored.metadata.skip_consent);
}

async fn allowed_scopes_limit_registered_clients(backend: Backend) {
    let server = start_with(backend, |c| {
        c.registration.allowed_scopes = Some("openid profile read".parse().unwrap());
    })
    .await;
    let machine = |scope: &str| json!({"client_name": "svc", "grant_types": ["client_credentials"], "scope": scope});
    let (status, error, description) =
        error_of(post_register(&server, Some(TOKEN), &machine("read write")).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_client_metadata")
    );
    assert!(
        description.contains("scope") && description.contains("write"),
        "{description}"
    );

    let info = register(&server, machine("read")).await;
    assert_eq!(info["scope"], "read");
    // Without a scope, the default scopes the policy allows.
    let web = register(
        &server,
        json!({"client_name": "web", "redirect_uris": [REDIRECT]}),
    )
    .await;
    assert_eq!(web["scope"], "openid profile");

    // An update is held to the same limit.
    let id = s(&info["client_id"]);
    let response = manage(
        &server,
        reqwest::Method::PUT,
        id,
        info["registration_access_token"].as_str(),
        Some(&json!({"client_id": id, "client_name": "svc",
                     "grant_types": ["client_credentials"], "scope": "read billing"})),
    )
    .await;
    let (status, error, description) = error_of(response).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_client_metadata")
    );
    assert!(description.contains("billing"), "{description}");
}

// ---------------------------------------------------------------------------
// RFC 7592: read, update, delete with the registration access token.

async fn read_update_and_delete_need_the_registration_token(backend: Backend) {
    let server = start(backend).await;
    let info = register(
        &server,
        json!({"client_name": "Svc", "redirect_uris": [REDIRECT],
               "grant_types": ["authorization_code", "client_credentials"], "scope": "read"}),
    )
    .await;
    let id = s(&info["client_id"]).to_string();
    let secret = s(&info["client_secret"]).to_string();
    let token = s(&info["registration_access_token"]).to_string();
    let other = register(
        &server,
        json!({"client_name": "Other", "grant_types": ["client_credentials"]}),
    )
    .await;
    let other_token = s(&other["registration_access_token"]);
    let get = reqwest::Method::GET;

    // Without the right token: 401, whether or not the client exists.
    for (client, presented) in [
        (id.as_str(), None),
        (id.as_str(), Some("wrong")),
        (id.as_str(), Some(other_token)),
        (id.as_str(), Some(TOKEN)),
        ("0123456789abcdef0123456789abcdef", Some(token.as_str())),
    ] {
        assert_invalid_token(manage(&server, get.clone(), client, presented, None).await).await;
    }

    // Read: the registration, never the secret.
    let response = manage(&server, get.clone(), &id, Some(&token), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let read: Value = response.json().await.unwrap();
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["client_name"], "Svc");
    assert_eq!(read["registration_access_token"], token.as_str());
    assert_eq!(
        read["registration_client_uri"],
        info["registration_client_uri"]
    );
    assert!(read.get("client_secret").is_none());

    // Update: a full replacement, with the same client_id and (if sent)
    // the current secret; the server's own fields are not the client's.
    let put = reqwest::Method::PUT;
    let replacement = json!({
        "client_id": id, "client_name": "Svc v2", "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "client_credentials"], "scope": "read",
        "token_endpoint_auth_method": "client_secret_post", "client_secret": secret
    });
    let mut bad_requests = vec![];
    for (field, value) in [
        ("client_id", json!(other["client_id"])),
        ("client_id", Value::Null),
        ("client_secret", json!("not-the-secret")),
        ("registration_access_token", json!(token)),
        ("client_id_issued_at", json!(5)),
    ] {
        let mut body = replacement.clone();
        body[field] = value;
        bad_requests.push(body);
    }
    for body in &bad_requests {
        let response = manage(&server, put.clone(), &id, Some(&token), Some(body)).await;
        let (status, error, _) = error_of(response).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
    }
    assert_invalid_token(
        manage(&server, put.clone(), &id, Some("wrong"), Some(&replacement)).await,
    )
    .await;
    let response = manage(&server, put.clone(), &id, Some(&token), Some(&replacement)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["client_name"], "Svc v2");
    assert_eq!(updated["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(updated["client_id_issued_at"], info["client_id_issued_at"]);
    assert_eq!(updated["registration_access_token"], token.as_str());
    assert!(
        updated.get("client_secret").is_none(),
        "the secret is kept, not reissued"
    );
    let (status, _) = request_token(&server, &id, &secret).await;
    assert_eq!(status, StatusCode::OK, "the kept secret still works");

    // Omitted fields are dropped (RFC 7592 §2.2): without redirect URIs
    // and grant types this is now a machine client.
    let response = manage(
        &server,
        put.clone(),
        &id,
        Some(&token),
        Some(&json!({"client_id": id, "client_name": "Svc v3", "scope": "read"})),
    )
    .await;
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["grant_types"], json!(["client_credentials"]));
    assert_eq!(updated["redirect_uris"], json!([]));

    // Becoming public drops the secret; becoming confidential again
    // issues a new one, shown once.
    let response = manage(
        &server,
        put.clone(),
        &id,
        Some(&token),
        Some(&json!({"client_id": id, "redirect_uris": [REDIRECT],
                     "token_endpoint_auth_method": "none"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stored = server.state.store.client(&id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, None);
    let (status, _) = request_token(&server, &id, &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = manage(
        &server,
        put.clone(),
        &id,
        Some(&token),
        Some(&json!({"client_id": id, "grant_types": ["client_credentials"], "scope": "read"})),
    )
    .await;
    let updated: Value = response.json().await.unwrap();
    let new_secret = s(&updated["client_secret"]);
    assert_eq!(updated["client_secret_expires_at"], 0);
    let (status, body) = request_token(&server, &id, new_secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Delete: 204; from then on the client and its token are unknown.
    let delete = reqwest::Method::DELETE;
    assert_invalid_token(manage(&server, delete.clone(), &id, None, None).await).await;
    assert_invalid_token(manage(&server, delete.clone(), &id, Some(other_token), None).await).await;
    let response = manage(&server, delete.clone(), &id, Some(&token), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, body) = request_token(&server, &id, new_secret).await;
    assert_eq!(
        (status, s(&body["error"])),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert_invalid_token(manage(&server, get, &id, Some(&token), None).await).await;
    assert_invalid_token(manage(&server, delete, &id, Some(&token), None).await).await;
    assert!(server.state.store.client(&id).await.unwrap().is_none());
    assert!(
        server
            .state
            .store
            .client(s(&other["client_id"]))
            .await
            .unwrap()
            .is_some()
    );
}

async fn cli_clients_have_no_registration_token(backend: Backend) {
    let server = start(backend).await;
    let out = server.cli(&["client", "add", "--name", "cli-svc", "--scope", "read"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(info.get("registration_access_token").is_none());
    assert!(info.get("registration_client_uri").is_none());
    let id = s(&info["client_id"]);
    assert_eq!(
        server
            .state
            .store
            .registration_token_hash(id)
            .await
            .unwrap(),
        None
    );
    // No token opens it, not even the initial access token or its secret.
    for presented in [TOKEN, s(&info["client_secret"]), ""] {
        let response = manage(&server, reqwest::Method::DELETE, id, Some(presented), None).await;
        assert_invalid_token(response).await;
    }
    assert!(server.state.store.client(id).await.unwrap().is_some());

    // A registered client is an ordinary client to the CLI.
    let registered = register(
        &server,
        json!({"client_name": "dyn", "grant_types": ["client_credentials"]}),
    )
    .await;
    let out = server.cli(&["client", "show", s(&registered["client_id"])]);
    assert!(out.status.success());
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["client_name"], "dyn");
    assert!(shown.get("registration_access_token").is_none());
}

/// Two instances on one database (issue 8): registered on A, used on B,
/// deleted through B, refused by A within its cache refresh interval.
async fn two_instances_share_registrations(backend: Backend) {
    let a = start(backend).await;
    let issuer = a.base.clone();
    let b = TestServer::start_on(a.db.clone(), a.clock.clone(), |c| {
        c.issuer = issuer;
        c.registration.initial_access_tokens = vec![TOKEN.into()];
    })
    .await;
    let info = register(
        &a,
        json!({"client_name": "svc", "grant_types": ["client_credentials"], "scope": "read"}),
    )
    .await;
    let id = s(&info["client_id"]);
    let secret = s(&info["client_secret"]);
    let token = s(&info["registration_access_token"]);
    let (status, body) = request_token(&b, id, secret).await;
    assert_eq!(status, StatusCode::OK, "B issues tokens: {body}");
    let (status, _) = request_token(&a, id, secret).await;
    assert_eq!(status, StatusCode::OK, "A has the client in its cache");

    let response = manage(&b, reqwest::Method::DELETE, id, Some(token), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = request_token(&b, id, secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "B refuses at once");

    // A's cache refresh runs every 200 ms in tests; allow it 2 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (status, body) = request_token(&a, id, secret).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["error"], "invalid_client");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "A still issues tokens to a deleted client"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.stop().await;
    a.stop().await;
}

crate::both_backends!(
    openidconnect_crate_registers_a_client_that_signs_people_in,
    without_a_token_configured_register_is_404_and_not_advertised,
    a_wrong_or_missing_initial_token_is_401,
    open_registration_needs_no_token,
    bad_metadata_is_refused_naming_the_field,
    acceptable_metadata_is_registered_and_unknown_fields_ignored,
    registered_clients_never_skip_consent,
    allowed_scopes_limit_registered_clients,
    read_update_and_delete_need_the_registration_token,
    cli_clients_have_no_registration_token,
    two_instances_share_registrations,
);
