//! Resource servers (issue 9): registered resources (CLI and admin API),
//! RFC 8707 `resource` at /authorize and /token, audience-restricted
//! tokens with per-resource lifetime and algorithm, introspection by a
//! resource server as itself, the consent page naming the API, and the
//! README's Rust verification snippet run against a live server.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use tessera::clock::Clock;
use tessera::jose::SigningAlg;
use tessera::oauth::client::ClientRegistration;
use tessera::service::audit::Actor;
use tessera::service::resources::{self, NewResource};
use tessera::store::AuditQuery;

use crate::browser::{
    self, ALL_SCOPES, AuthRequest, Browser, REDIRECT, Rp, add_user, refresh, rp, token_request,
};
use crate::cli::run_cli;
use crate::harness::{Backend, TestServer, eventually, http, verify_with_jwks};
use crate::introspection::{payload_of, post_form, token};

const BILLING: &str = "https://billing.example.com";
const CALENDAR: &str = "https://calendar.example.com/api";
const OTHER: &str = "urn:example:other";

/// Registers a resource through the service the CLI and admin API use;
/// its secret when `with_secret`.
async fn add(
    server: &TestServer,
    identifier: &str,
    name: &str,
    scope: &str,
    configure: impl FnOnce(&mut NewResource),
) -> Option<String> {
    let mut new = NewResource {
        identifier: identifier.into(),
        name: name.into(),
        scope: Some(scope.into()),
        ..Default::default()
    };
    configure(&mut new);
    let added = resources::add(
        &*server.state.store,
        &*server.state.store,
        &*server.clock,
        &server.state.audit,
        &Actor::Cli,
        new,
    )
    .await
    .unwrap();
    // The server would notice at its next poll of the change counters.
    server.state.resources.invalidate();
    added.secret
}

/// The two APIs most tests use: billing (with a secret) and calendar.
async fn two_apis(server: &TestServer) -> String {
    let secret = add(
        server,
        BILLING,
        "Billing API",
        "billing:read billing:write",
        |r| r.with_secret = true,
    )
    .await
    .unwrap();
    add(server, CALENDAR, "Calendar API", "calendar:read", |_| {}).await;
    add(server, OTHER, "Other API", "other:read", |_| {}).await;
    secret
}

/// A client-credentials request with `extra` form fields.
async fn cc(
    server: &TestServer,
    id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let response = post_form(server, "/token", Some((id, secret)), &form).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn assert_error((status, body): &(StatusCode, Value), code: &str) {
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], code, "{body}");
}

fn jwt_alg(token: &str) -> jsonwebtoken::Algorithm {
    jsonwebtoken::decode_header(token).unwrap().alg
}

/// One number from the server's database, read directly.
pub(crate) async fn count(server: &TestServer, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if server.db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    }
}

// ---------------------------------------------------------------------------
// Client credentials.

async fn client_credentials_token_is_for_the_requested_resources(backend: Backend) {
    let server = TestServer::start(backend).await;
    two_apis(&server).await;
    let (id, secret) = server
        .machine_client("billing:read calendar:read reports")
        .await;

    // One resource: `aud` is that string; the scope narrows to what it defines.
    let (status, body) = cc(&server, &id, &secret, &[("resource", BILLING)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "billing:read");
    let access = body["access_token"].as_str().unwrap();
    let claims = payload_of(access);
    assert_eq!(claims["aud"], BILLING);
    assert_eq!(claims["scope"], "billing:read");
    // A resource server verifies it with the JWKS and its own audience.
    let verified = verify_with_jwks(&server, access, BILLING).await;
    assert_eq!(verified["client_id"], id.as_str());

    // Two resources: `aud` is an array of both, in the order asked.
    let (status, body) = cc(
        &server,
        &id,
        &secret,
        &[
            ("resource", CALENDAR),
            ("resource", BILLING),
            ("scope", "billing:read calendar:read reports"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = payload_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!([CALENDAR, BILLING]));
    assert_eq!(claims["scope"], "billing:read calendar:read");
    // Each of them accepts it.
    verify_with_jwks(&server, body["access_token"].as_str().unwrap(), CALENDAR).await;

    // A repeated resource counts once.
    let (_, body) = cc(
        &server,
        &id,
        &secret,
        &[("resource", BILLING), ("resource", BILLING)],
    )
    .await;
    assert_eq!(
        payload_of(body["access_token"].as_str().unwrap())["aud"],
        BILLING
    );

    // An API that defines no scopes: a token without scope, unless the
    // request asked for some (then nothing it asked for applies).
    add(&server, "urn:example:plain", "Plain API", "", |_| {}).await;
    let (status, body) = cc(&server, &id, &secret, &[("resource", "urn:example:plain")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("scope").is_none(), "{body}");
    let claims = payload_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "urn:example:plain");
    assert!(claims.get("scope").is_none(), "{claims}");
    let answer = cc(
        &server,
        &id,
        &secret,
        &[("resource", "urn:example:plain"), ("scope", "reports")],
    )
    .await;
    assert_error(&answer, "invalid_scope");

    // Without `resource`: the issuer, and every registered scope, as before.
    let claims = payload_of(&token(&server, &id, &secret).await);
    assert_eq!(claims["aud"], server.base.as_str());
    assert_eq!(claims["scope"], "billing:read calendar:read reports");
}

async fn bad_resources_are_invalid_target(backend: Backend) {
    let server = TestServer::start(backend).await;
    two_apis(&server).await;
    let (id, secret) = server.machine_client("billing:read reports").await;
    let oversize = format!("{BILLING}/{}", "x".repeat(600));
    for bad in [
        "https://unknown.example.com",
        "https://billing.example.com#frag",
        "https://billing.example.com/#",
        "/billing",
        "billing.example.com",
        "https://billing.example.com/a b",
        "https://bïlling.example.com",
        oversize.as_str(),
    ] {
        let answer = cc(&server, &id, &secret, &[("resource", bad)]).await;
        assert_error(&answer, "invalid_target");
        assert!(
            answer.1["error_description"].as_str().unwrap().len() > 10,
            "{bad:?}: {}",
            answer.1
        );
    }
    // One bad resource among good ones spoils the request.
    let answer = cc(
        &server,
        &id,
        &secret,
        &[
            ("resource", BILLING),
            ("resource", "https://unknown.example.com"),
        ],
    )
    .await;
    assert_error(&answer, "invalid_target");

    // Many resources: refused with a clear error, not truncated.
    let many: Vec<String> = (0..17).map(|i| format!("urn:example:api{i}")).collect();
    let mut form: Vec<(&str, &str)> = many.iter().map(|r| ("resource", r.as_str())).collect();
    form.push(("grant_type", "client_credentials"));
    let response = post_form(&server, "/token", Some((&id, &secret)), &form).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_target");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("at most 16"),
        "{body}"
    );

    // Scopes the resource does not define: nothing remains.
    let answer = cc(
        &server,
        &id,
        &secret,
        &[("resource", CALENDAR), ("scope", "reports")],
    )
    .await;
    assert_error(&answer, "invalid_scope");
    // Other parameters still may not repeat.
    let answer = cc(
        &server,
        &id,
        &secret,
        &[
            ("resource", BILLING),
            ("scope", "reports"),
            ("scope", "reports"),
        ],
    )
    .await;
    assert_error(&answer, "invalid_request");
}

async fn per_resource_lifetime_and_algorithm(backend: Backend) {
    let server = TestServer::start(backend).await;
    add(&server, BILLING, "Billing API", "billing:read", |r| {
        r.access_token_ttl_secs = Some(120);
        r.signing_alg = Some(SigningAlg::ES256);
    })
    .await;
    add(&server, CALENDAR, "Calendar API", "calendar:read", |r| {
        r.access_token_ttl_secs = Some(60);
    })
    .await;
    add(&server, OTHER, "Other API", "other:read", |r| {
        r.signing_alg = Some(SigningAlg::RS256);
    })
    .await;
    // A resource may not stretch a token past the server's longest lifetime.
    add(&server, "urn:example:long", "Long API", "long:read", |r| {
        r.access_token_ttl_secs = Some(86_400);
    })
    .await;
    add(
        &server,
        "urn:example:plain",
        "Plain API",
        "plain:read",
        |_| {},
    )
    .await;
    let (id, secret) = server
        .machine_client("billing:read calendar:read other:read long:read plain:read")
        .await;
    let default_ttl = server.state.config.tokens.access_token_ttl_secs;

    let (status, body) = cc(&server, &id, &secret, &[("resource", BILLING)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_alg(access), jsonwebtoken::Algorithm::ES256);
    let claims = payload_of(access);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    assert_eq!(body["expires_in"], 120);
    verify_with_jwks(&server, access, BILLING).await;

    // Two resources: the shortest lifetime, the one algorithm set.
    let (_, body) = cc(
        &server,
        &id,
        &secret,
        &[("resource", BILLING), ("resource", CALENDAR)],
    )
    .await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(body["expires_in"], 60);
    assert_eq!(jwt_alg(access), jsonwebtoken::Algorithm::ES256);

    // Nothing set: the client's algorithm and the server's lifetime.
    let (_, body) = cc(&server, &id, &secret, &[("resource", "urn:example:plain")]).await;
    assert_eq!(body["expires_in"], default_ttl);
    assert_eq!(
        jwt_alg(body["access_token"].as_str().unwrap()),
        jsonwebtoken::Algorithm::RS256
    );
    let (_, body) = cc(&server, &id, &secret, &[("resource", "urn:example:long")]).await;
    let longest = default_ttl.max(server.state.config.tokens.id_token_ttl_secs);
    assert_eq!(body["expires_in"], longest);

    // Different algorithms cannot share one signature.
    let answer = cc(
        &server,
        &id,
        &secret,
        &[("resource", BILLING), ("resource", OTHER)],
    )
    .await;
    assert_error(&answer, "invalid_target");
    assert!(
        answer.1["error_description"]
            .as_str()
            .unwrap()
            .contains("algorithm")
    );

    // A client that registered ES256 keeps it for a resource without a setting.
    let (client, es_secret) = server
        .register(ClientRegistration {
            client_name: "es".into(),
            scope: Some("plain:read".into()),
            access_token_signed_response_alg: Some(SigningAlg::ES256),
            ..Default::default()
        })
        .await;
    let (_, body) = cc(
        &server,
        &client.client_id,
        &es_secret.unwrap(),
        &[("resource", "urn:example:plain")],
    )
    .await;
    assert_eq!(
        jwt_alg(body["access_token"].as_str().unwrap()),
        jsonwebtoken::Algorithm::ES256
    );
    assert_eq!(body["expires_in"], default_ttl);
}

// ---------------------------------------------------------------------------
// The authorization code flow.

async fn api_client(server: &TestServer) -> Rp {
    rp(
        server,
        ClientRegistration {
            scope: Some(format!(
                "{ALL_SCOPES} billing:read calendar:read other:read"
            )),
            ..browser::web_app()
        },
    )
    .await
}

fn two_api_request(rp: &Rp) -> AuthRequest {
    AuthRequest::new(rp)
        .set("scope", "openid offline_access billing:read calendar:read")
        .add("resource", BILLING)
        .add("resource", CALENDAR)
}

async fn one_authorization_for_two_apis_gives_a_token_for_each(backend: Backend) {
    let server = browser::start(backend).await;
    two_apis(&server).await;
    let alice = add_user(&server, "alice").await;
    let rp = api_client(&server).await;
    let req = two_api_request(&rp);
    let code = Browser::new(&server).code(&req, "alice").await;
    // The admin API shows what the grant was authorized for.
    let (admin_id, admin_secret) = server.machine_client("tessera:admin").await;
    let admin_token = token(&server, &admin_id, &admin_secret).await;
    let (status, _, grants) = admin(
        &server,
        Some(&admin_token),
        reqwest::Method::GET,
        &format!("/users/{alice}/grants"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{grants}");
    assert_eq!(grants["items"][0]["resources"], json!([BILLING, CALENDAR]));

    // The code, exchanged for billing only.
    let (status, body) = token_request(
        &server,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &req.verifier),
            ("resource", BILLING),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = payload_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], BILLING);
    assert_eq!(claims["scope"], "billing:read offline_access openid");
    // The ID token is for the client, as always.
    assert_eq!(
        payload_of(body["id_token"].as_str().unwrap())["aud"],
        rp.id.as_str()
    );
    let refresh_1 = body["refresh_token"].as_str().unwrap().to_string();

    // The refresh token, for calendar now (downscoping, RFC 8707 §2.2).
    let (status, body) = refresh(&server, &rp, &refresh_1, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Without `resource`: every authorized one.
    assert_eq!(
        payload_of(body["access_token"].as_str().unwrap())["aud"],
        json!([BILLING, CALENDAR])
    );
    let refresh_2 = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = token_request(
        &server,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_2),
            ("resource", CALENDAR),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = payload_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], CALENDAR);
    assert_eq!(claims["scope"], "calendar:read offline_access openid");
    let refresh_3 = body["refresh_token"].as_str().unwrap().to_string();

    // Widening to a registered resource that was not authorized is
    // refused, and uses nothing up.
    let tokens_before = count(&server, "SELECT COUNT(*) FROM refresh_tokens").await;
    let used_before = count(
        &server,
        "SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at IS NOT NULL",
    )
    .await;
    for widen in [
        vec![OTHER],
        vec![CALENDAR, OTHER],
        vec!["https://unknown.example.com"],
    ] {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_3.as_str()),
        ];
        form.extend(widen.iter().map(|r| ("resource", *r)));
        let answer = token_request(&server, &rp, &form).await;
        assert_error(&answer, "invalid_target");
    }
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM refresh_tokens").await,
        tokens_before
    );
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at IS NOT NULL"
        )
        .await,
        used_before
    );
    // Narrowing the scope within a resource works, and the refresh token
    // still does.
    let (status, body) = token_request(
        &server,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_3),
            ("resource", BILLING),
            ("scope", "billing:read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = payload_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], BILLING);
    assert_eq!(claims["scope"], "billing:read");
    // A scope the resource does not define: nothing remains.
    let refresh_4 = body["refresh_token"].as_str().unwrap().to_string();
    let answer = token_request(
        &server,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_4),
            ("resource", BILLING),
            ("scope", "calendar:read"),
        ],
    )
    .await;
    assert_error(&answer, "invalid_scope");
}

async fn a_code_exchange_may_not_widen_the_resources(backend: Backend) {
    let server = browser::start(backend).await;
    two_apis(&server).await;
    add_user(&server, "alice").await;
    let rp = api_client(&server).await;
    // Authorized for billing only (and the scopes narrowed to it).
    let req = AuthRequest::new(&rp)
        .set("scope", "openid billing:read calendar:read")
        .add("resource", BILLING);
    let browser = Browser::new(&server);
    let code = browser.code(&req, "alice").await;
    for widen in [CALENDAR, "https://unknown.example.com"] {
        let answer = token_request(
            &server,
            &rp,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &req.verifier),
                ("resource", widen),
            ],
        )
        .await;
        assert_error(&answer, "invalid_target");
    }
    // The refused requests did not use the code up: it still works, and
    // without `resource` gives a token for the authorized one.
    assert_eq!(
        count(
            &server,
            "SELECT COUNT(*) FROM authorization_codes WHERE consumed_at IS NOT NULL"
        )
        .await,
        0
    );
    let body = browser::tokens(&server, &rp, &req, &code).await;
    let claims = payload_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], BILLING);
    assert_eq!(claims["scope"], "billing:read openid");

    // An authorization without resources: the token endpoint cannot add one.
    let plain = AuthRequest::new(&rp).set("scope", "openid billing:read");
    let code = browser.code(&plain, "alice").await;
    let answer = token_request(
        &server,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &plain.verifier),
            ("resource", BILLING),
        ],
    )
    .await;
    assert_error(&answer, "invalid_target");
    let code = browser.code(&plain, "alice").await;
    let body = browser::tokens(&server, &rp, &plain, &code).await;
    assert_eq!(
        payload_of(body["access_token"].as_str().unwrap())["aud"],
        server.base.as_str()
    );
}

/// Resources with different algorithms may be authorized together; each
/// token is for one of them, and asking for both at once is refused
/// without using the code up.
async fn resources_with_different_algorithms_get_a_token_each(backend: Backend) {
    let server = browser::start(backend).await;
    add(&server, BILLING, "Billing API", "billing:read", |r| {
        r.signing_alg = Some(SigningAlg::ES256)
    })
    .await;
    add(&server, CALENDAR, "Calendar API", "calendar:read", |r| {
        r.signing_alg = Some(SigningAlg::RS256)
    })
    .await;
    add_user(&server, "alice").await;
    let rp = api_client(&server).await;
    let req = two_api_request(&rp);
    let code = Browser::new(&server).code(&req, "alice").await;
    let exchange = |resource: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", req.verifier.as_str()),
        ];
        form.extend(resource.map(|r| ("resource", r)));
        let rp = &rp;
        let server = &server;
        async move { token_request(server, rp, &form).await }
    };
    let answer = exchange(None).await;
    assert_error(&answer, "invalid_target");
    assert!(
        answer.1["error_description"]
            .as_str()
            .unwrap()
            .contains("algorithm")
    );
    let (status, body) = exchange(Some(CALENDAR)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_alg(access), jsonwebtoken::Algorithm::RS256);
    assert_eq!(payload_of(access)["aud"], CALENDAR);
    let (status, body) = token_request(
        &server,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("resource", BILLING),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_alg(access), jsonwebtoken::Algorithm::ES256);
    assert_eq!(payload_of(access)["aud"], BILLING);
}

async fn authorize_sends_invalid_target_to_the_client(backend: Backend) {
    let server = browser::start(backend).await;
    two_apis(&server).await;
    let rp = api_client(&server).await;
    let browser = Browser::new(&server);
    let grants_before = count(&server, "SELECT COUNT(*) FROM grants").await;
    for bad in [
        "https://unknown.example.com",
        "https://billing.example.com#x",
        "relative/path",
    ] {
        let r = browser
            .authorize(&AuthRequest::new(&rp).add("resource", bad))
            .await;
        let params = r.callback();
        assert_eq!(params["error"], "invalid_target", "{bad:?}: {params:?}");
        assert_eq!(params["state"], "st-123");
        assert_eq!(params["iss"], server.base);
    }
    let mut req = AuthRequest::new(&rp);
    for i in 0..17 {
        req = req.add("resource", &format!("urn:example:api{i}"));
    }
    let params = browser.authorize(&req).await.callback();
    assert_eq!(params["error"], "invalid_target");
    // Scopes none of the resources define.
    let req = AuthRequest::new(&rp)
        .set("scope", "calendar:read")
        .add("resource", BILLING);
    let params = browser.authorize(&req).await.callback();
    assert_eq!(params["error"], "invalid_scope");
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM grants").await,
        grants_before
    );
}

async fn consent_page_names_the_api(backend: Backend) {
    let server = browser::start(backend).await;
    two_apis(&server).await;
    add_user(&server, "alice").await;
    let rp = api_client(&server).await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&two_api_request(&rp)).await;
    let page = browser.login(&page, "alice", browser::PASSWORD).await;
    assert!(page.is_consent(), "{}", page.body);
    assert!(page.body.contains("for Billing API"), "{}", page.body);
    assert!(page.body.contains("for Calendar API"), "{}", page.body);
    // A scope of no API (openid) names none; a resource not requested is not named.
    assert!(!page.body.contains("Other API"), "{}", page.body);
    assert_eq!(
        page.body.matches("class=\"scope-api\"").count(),
        2,
        "{}",
        page.body
    );
}

// ---------------------------------------------------------------------------
// Introspection by a resource server.

async fn resource_introspect(
    server: &TestServer,
    user: &str,
    password: &str,
    token: &str,
) -> (StatusCode, Value) {
    let response = post_form(
        server,
        "/introspect",
        Some((user, password)),
        &[("token", token)],
    )
    .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn a_resource_introspects_only_tokens_meant_for_it(backend: Backend) {
    let server = browser::start(backend).await;
    let billing_secret = two_apis(&server).await;
    let calendar_secret = add(
        &server,
        "urn:example:cal2",
        "Calendar 2",
        "cal2:read",
        |r| r.with_secret = true,
    )
    .await
    .unwrap();
    let (id, secret) = server
        .machine_client("billing:read calendar:read cal2:read")
        .await;
    let (_, body) = cc(&server, &id, &secret, &[("resource", BILLING)]).await;
    let for_billing = body["access_token"].as_str().unwrap().to_string();
    let (_, body) = cc(&server, &id, &secret, &[("resource", "urn:example:cal2")]).await;
    let for_cal2 = body["access_token"].as_str().unwrap().to_string();
    let (_, body) = cc(
        &server,
        &id,
        &secret,
        &[("resource", BILLING), ("resource", "urn:example:cal2")],
    )
    .await;
    let for_both = body["access_token"].as_str().unwrap().to_string();
    let for_issuer = token(&server, &id, &secret).await;

    // Its own token: active, with its claims.
    let (status, body) = resource_introspect(&server, BILLING, &billing_secret, &for_billing).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["aud"], BILLING);
    assert_eq!(body["client_id"], id.as_str());
    assert_eq!(body["scope"], "billing:read");
    let (_, body) = resource_introspect(&server, BILLING, &billing_secret, &for_both).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["aud"], json!([BILLING, "urn:example:cal2"]));

    // Another API's token, or one for the default audience: inactive, and nothing more.
    for foreign in [&for_cal2, &for_issuer] {
        let (status, body) = resource_introspect(&server, BILLING, &billing_secret, foreign).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"active": false}));
    }
    let (_, body) =
        resource_introspect(&server, "urn:example:cal2", &calendar_secret, &for_cal2).await;
    assert_eq!(body["active"], true);

    // The identifier form-encoded (RFC 6749 §2.3.1) works too.
    let encoded: String = url::form_urlencoded::byte_serialize(BILLING.as_bytes()).collect();
    let (_, body) = resource_introspect(&server, &encoded, &billing_secret, &for_billing).await;
    assert_eq!(body["active"], true, "{body}");

    // Another resource's secret, a wrong one, or a resource without one: 401.
    for (user, password) in [
        (BILLING, calendar_secret.as_str()),
        ("urn:example:cal2", billing_secret.as_str()),
        (BILLING, "wrong"),
        (BILLING, ""),
        (CALENDAR, billing_secret.as_str()),
        ("https://unknown.example.com", billing_secret.as_str()),
    ] {
        let (status, body) = resource_introspect(&server, user, password, &for_billing).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}: {body}");
        assert_eq!(body["error"], "invalid_client");
        assert!(body.get("active").is_none());
    }

    // Clients keep introspecting their own tokens, whatever the audience.
    let (status, body) = resource_introspect(&server, &id, &secret, &for_billing).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true);
    let (_, body) = resource_introspect(&server, &id, &secret, &for_issuer).await;
    assert_eq!(body["active"], true);

    // A resource learns nothing about a refresh token.
    add_user(&server, "alice").await;
    let rp = api_client(&server).await;
    let req = AuthRequest::new(&rp)
        .set("scope", "openid offline_access billing:read")
        .add("resource", BILLING);
    let code = Browser::new(&server).code(&req, "alice").await;
    let tokens = browser::tokens(&server, &rp, &req, &code).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let (_, body) = resource_introspect(&server, BILLING, &billing_secret, refresh_token).await;
    assert_eq!(body, json!({"active": false}));
    let (_, body) = resource_introspect(
        &server,
        BILLING,
        &billing_secret,
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(body["active"], true);
    assert!(!body["sub"].as_str().unwrap().is_empty());

    // A deleted resource can no longer introspect.
    resources::delete(
        &*server.state.store,
        &*server.clock,
        &server.state.audit,
        &Actor::Cli,
        BILLING,
    )
    .await
    .unwrap();
    server.state.resources.invalidate();
    let (status, _) = resource_introspect(&server, BILLING, &billing_secret, &for_billing).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------
// The CLI and the admin API.

async fn cli_manages_resources(backend: Backend) {
    let server = TestServer::start(backend).await;
    let out = run_cli(
        &server,
        &[
            "resource",
            "add",
            "--identifier",
            BILLING,
            "--name",
            "Billing API",
            "--scope",
            "billing:read billing:write",
            "--access-token-ttl-secs",
            "300",
            "--signing-alg",
            "ES256",
            "--with-secret",
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["identifier"], BILLING);
    assert_eq!(added["name"], "Billing API");
    assert_eq!(added["scope"], "billing:read billing:write");
    assert_eq!(added["access_token_ttl_secs"], 300);
    assert_eq!(added["signing_alg"], "ES256");
    assert_eq!(added["has_secret"], true);
    let secret = added["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43);
    // Stored only as its hash.
    let stored = server.state.store.resource(BILLING).await.unwrap().unwrap();
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(tessera::crypto::hash_secret(&secret).as_str())
    );
    assert_eq!(
        count(
            &server,
            &format!("SELECT COUNT(*) FROM resources WHERE secret_hash = '{secret}'")
        )
        .await,
        0
    );

    let out = run_cli(
        &server,
        &[
            "resource",
            "add",
            "--identifier",
            CALENDAR,
            "--name",
            "Calendar",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let listed: Value =
        serde_json::from_slice(&run_cli(&server, &["resource", "list"]).await.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [BILLING, CALENDAR]);
    assert!(!listed.to_string().contains(&secret));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("secret").is_none())
    );
    let shown: Value = serde_json::from_slice(
        &run_cli(&server, &["resource", "show", BILLING])
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["name"], "Billing API");
    assert!(shown.get("secret").is_none());

    // The running server picks the new resource up by itself.
    let (id, client_secret) = server.machine_client("billing:read").await;
    eventually("the server knows the resource the CLI added", || async {
        cc(&server, &id, &client_secret, &[("resource", BILLING)])
            .await
            .0
            == StatusCode::OK
    })
    .await;
    let (_, body) = cc(&server, &id, &client_secret, &[("resource", BILLING)]).await;
    assert_eq!(body["expires_in"], 300);
    let (_, body) = resource_introspect(
        &server,
        BILLING,
        &secret,
        body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(body["active"], true);

    // Refusals exit 2 with one line.
    for args in [
        vec![
            "resource",
            "add",
            "--identifier",
            "/relative",
            "--name",
            "X",
        ],
        vec![
            "resource",
            "add",
            "--identifier",
            "https://x.example#f",
            "--name",
            "X",
        ],
        vec![
            "resource",
            "add",
            "--identifier",
            BILLING,
            "--name",
            "Again",
        ],
        vec![
            "resource",
            "add",
            "--identifier",
            "urn:x",
            "--name",
            "X",
            "--signing-alg",
            "HS256",
        ],
        vec![
            "resource",
            "add",
            "--identifier",
            "urn:x",
            "--name",
            "X",
            "--access-token-ttl-secs",
            "0",
        ],
        vec!["resource", "show", "urn:nothing"],
        vec!["resource", "delete", "urn:nothing"],
    ] {
        let out = run_cli(&server, &args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }

    let out = run_cli(&server, &["resource", "delete", BILLING]).await;
    assert_eq!(out.status.code(), Some(0));
    let deleted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(deleted, json!({"deleted": BILLING}));
    assert_eq!(
        run_cli(&server, &["resource", "show", BILLING])
            .await
            .status
            .code(),
        Some(2)
    );
    eventually("the server forgets the deleted resource", || async {
        cc(&server, &id, &client_secret, &[("resource", BILLING)])
            .await
            .0
            == StatusCode::BAD_REQUEST
    })
    .await;

    // Every change is audited, never with the secret.
    let events = server
        .state
        .store
        .audit_records(&AuditQuery {
            kinds: Some(vec!["resource.added".into(), "resource.deleted".into()]),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["resource.deleted", "resource.added", "resource.added"]
    );
    assert!(events.iter().all(|e| e.actor == "cli"));
    assert_eq!(events[0].subject.as_deref(), Some(BILLING));
    assert!(!format!("{events:?}").contains(&secret));
}

async fn admin(
    server: &TestServer,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http().request(method, server.url(&format!("/admin/api/v1{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, headers, body)
}

async fn admin_api_manages_resources(backend: Backend) {
    use reqwest::Method;
    let server = TestServer::start(backend).await;
    let (admin_id, admin_secret) = server.machine_client("tessera:admin").await;
    let access = token(&server, &admin_id, &admin_secret).await;
    let (reader, reader_secret) = server.machine_client("read").await;
    let reader_token = token(&server, &reader, &reader_secret).await;

    // 401 without a token, 403 without the scope, like every admin route.
    let (status, _, body) = admin(&server, None, Method::GET, "/resources", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    let (status, _, body) = admin(
        &server,
        Some(&reader_token),
        Method::POST,
        "/resources",
        Some(json!({"identifier": BILLING, "name": "B"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
    assert!(server.state.store.resources().await.unwrap().is_empty());
    // An owner must be a registered client.
    let (status, _, body) = admin(
        &server,
        Some(&access),
        Method::POST,
        "/resources",
        Some(json!({"identifier": BILLING, "name": "B", "owner_client_id": "nobody"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(server.state.store.resources().await.unwrap().is_empty());

    let (status, headers, body) = admin(
        &server,
        Some(&access),
        Method::POST,
        "/resources",
        Some(json!({
            "identifier": BILLING,
            "name": "Billing API",
            "scope": "billing:read",
            "signing_alg": "ES256",
            "with_secret": true,
            "owner_client_id": reader,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["identifier"], BILLING);
    assert_eq!(body["owner_client_id"], reader.as_str());
    let secret = body["secret"].as_str().unwrap().to_string();
    let location = headers[LOCATION].to_str().unwrap().to_string();
    assert_eq!(
        location,
        "/admin/api/v1/resources/https%3A%2F%2Fbilling.example.com"
    );

    // Show it at its Location; the secret is not shown again.
    let path = location.trim_start_matches("/admin/api/v1");
    let (status, _, shown) = admin(&server, Some(&access), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["name"], "Billing API");
    assert_eq!(shown["has_secret"], true);
    assert!(shown.get("secret").is_none());

    // This instance uses it at once.
    let (id, client_secret) = server.machine_client("billing:read").await;
    let (status, issued) = cc(&server, &id, &client_secret, &[("resource", BILLING)]).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let (_, introspected) = resource_introspect(
        &server,
        BILLING,
        &secret,
        issued["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(introspected["active"], true);

    // Refusals: the same rules as the CLI, named.
    for (body, status, code) in [
        (
            json!({"identifier": BILLING, "name": "Again"}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            json!({"identifier": "/rel", "name": "X"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"identifier": "urn:x#y", "name": "X"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"identifier": "urn:x", "name": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"identifier": "urn:x", "name": "X", "signing_alg": "none"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"identifier": "urn:x", "name": "X", "secret_hash": "00"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let (got, _, answer) = admin(
            &server,
            Some(&access),
            Method::POST,
            "/resources",
            Some(body.clone()),
        )
        .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"], code, "{body}: {answer}");
    }

    // A paginated list.
    for i in 0..3 {
        let (status, _, _) = admin(
            &server,
            Some(&access),
            Method::POST,
            "/resources",
            Some(json!({"identifier": format!("urn:example:r{i}"), "name": "R"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _, page) = admin(
        &server,
        Some(&access),
        Method::GET,
        "/resources?limit=2",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(first, [BILLING, "urn:example:r0"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, _, page) = admin(
        &server,
        Some(&access),
        Method::GET,
        &format!("/resources?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    let rest: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["urn:example:r1", "urn:example:r2"]);
    assert!(page["next_cursor"].is_null());
    assert!(!page.to_string().contains(&secret));

    // Delete, then 404.
    let (status, _, _) = admin(&server, Some(&access), Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = admin(&server, Some(&access), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, _, _) = admin(&server, Some(&access), Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(
        &cc(&server, &id, &client_secret, &[("resource", BILLING)]).await,
        "invalid_target",
    );
}

// ---------------------------------------------------------------------------
// The README's resource-server guide: the Rust snippet, verbatim.

// README: resource-server-rust (begin)
mod verifier {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    use serde::Deserialize;
    use tokio::sync::RwLock;

    /// The claims an API reads from a Tessera access token (RFC 9068).
    #[derive(Debug, Deserialize)]
    pub struct Claims {
        pub sub: String,
        pub client_id: String,
        #[serde(default)]
        pub scope: String,
        pub exp: i64,
    }

    /// Verifies Tessera access tokens for one API, with the JWKS cached and
    /// refetched when a token names a `kid` it has not seen (a rotation).
    pub struct Verifier {
        http: reqwest::Client,
        jwks_uri: String,
        issuer: String,
        audience: String,
        keys: RwLock<(Instant, HashMap<String, DecodingKey>)>,
    }

    /// Refetch the JWKS at most this often, whatever tokens arrive.
    const MIN_REFRESH: Duration = Duration::from_secs(30);

    impl Verifier {
        /// `issuer` as in discovery; `audience` is this API's resource identifier.
        pub fn new(issuer: &str, audience: &str) -> Self {
            Self {
                http: reqwest::Client::new(),
                jwks_uri: format!("{issuer}/jwks"),
                issuer: issuer.to_string(),
                audience: audience.to_string(),
                keys: RwLock::new((Instant::now() - MIN_REFRESH, HashMap::new())),
            }
        }

        async fn key(&self, kid: &str) -> Result<DecodingKey, String> {
            {
                let (_, keys) = &*self.keys.read().await;
                if let Some(key) = keys.get(kid) {
                    return Ok(key.clone());
                }
            }
            let mut cache = self.keys.write().await;
            if cache.0.elapsed() >= MIN_REFRESH && !cache.1.contains_key(kid) {
                let jwks: JwkSet = self
                    .http
                    .get(&self.jwks_uri)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let mut keys = HashMap::new();
                for jwk in &jwks.keys {
                    if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                        keys.insert(kid.clone(), key);
                    }
                }
                *cache = (Instant::now(), keys);
            }
            cache
                .1
                .get(kid)
                .cloned()
                .ok_or_else(|| format!("unknown kid {kid}"))
        }

        /// The token's claims, if it is a valid access token for this API.
        pub async fn verify(&self, token: &str) -> Result<Claims, String> {
            let header = decode_header(token).map_err(|e| e.to_string())?;
            // RFC 9068 §4: an access token, not an ID token or another JWT.
            if !header
                .typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
            {
                return Err("not an access token (typ)".into());
            }
            if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                return Err("unexpected algorithm".into());
            }
            let kid = header.kid.ok_or("no kid")?;
            let key = self.key(&kid).await?;
            let mut validation = Validation::new(header.alg);
            validation.set_issuer(&[&self.issuer]);
            // `aud` is a string or an array; this API's identifier must be in it.
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            decode::<Claims>(token, &key, &validation)
                .map(|data| data.claims)
                .map_err(|e| e.to_string())
        }
    }
}
// README: resource-server-rust (end)

async fn readme_rust_verifier_accepts_only_tokens_for_its_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    two_apis(&server).await;
    let (id, secret) = server.machine_client("billing:read calendar:read").await;
    let billing = verifier::Verifier::new(&server.base, BILLING);

    let (_, body) = cc(&server, &id, &secret, &[("resource", BILLING)]).await;
    let claims = billing
        .verify(body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.client_id, id);
    assert_eq!(claims.sub, id);
    assert_eq!(claims.scope, "billing:read");
    assert!(claims.exp > server.clock.now());
    // Two audiences, billing among them.
    let (_, body) = cc(
        &server,
        &id,
        &secret,
        &[("resource", CALENDAR), ("resource", BILLING)],
    )
    .await;
    billing
        .verify(body["access_token"].as_str().unwrap())
        .await
        .unwrap();

    // A token for another API, or for the default audience: refused.
    let (_, body) = cc(&server, &id, &secret, &[("resource", CALENDAR)]).await;
    assert!(
        billing
            .verify(body["access_token"].as_str().unwrap())
            .await
            .is_err()
    );
    assert!(
        billing
            .verify(&token(&server, &id, &secret).await)
            .await
            .is_err()
    );
    // A tampered token: refused.
    let mut forged = body["access_token"].as_str().unwrap().to_string();
    forged.push('x');
    assert!(billing.verify(&forged).await.is_err());

    // After a rotation the new kid is fetched.
    server
        .state
        .rotate_keys(tessera::jose::rotation::Trigger::Manual)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let (_, body) = cc(&server, &id, &secret, &[("resource", BILLING)]).await;
    let access = body["access_token"].as_str().unwrap();
    // The verifier refetches at most every 30 s; a fresh one stands in for
    // "30 s later".
    let later = verifier::Verifier::new(&server.base, BILLING);
    later.verify(access).await.unwrap();
}

/// Runs `program args…` from tests/resource_server; its exit status,
/// stdout and stderr.
async fn run_script(
    program: &str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> (bool, String, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resource_server");
    let program = program.to_string();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(&program)
            .args(&args)
            .envs(env)
            .current_dir(&dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn on_path(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The README's Node (`jose`) and Python (PyJWT) verifiers, run against a
/// live server: a token for the API passes (with its claims), one for
/// another API or the default audience fails. Each is skipped, saying
/// why, when its interpreter or its library (tests/resource_server/setup.sh,
/// which `.ci/run` runs) is not installed.
async fn readme_node_and_python_verifiers(backend: Backend) {
    let server = TestServer::start(backend).await;
    two_apis(&server).await;
    let (id, secret) = server.machine_client("billing:read calendar:read").await;
    let (_, body) = cc(&server, &id, &secret, &[("resource", BILLING)]).await;
    let good = body["access_token"].as_str().unwrap().to_string();
    let (_, body) = cc(
        &server,
        &id,
        &secret,
        &[("resource", CALENDAR), ("resource", BILLING)],
    )
    .await;
    let both = body["access_token"].as_str().unwrap().to_string();
    let (_, body) = cc(&server, &id, &secret, &[("resource", CALENDAR)]).await;
    let foreign = body["access_token"].as_str().unwrap().to_string();
    let default_audience = token(&server, &id, &secret).await;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resource_server");
    let checks = [
        (
            "node",
            "verify.mjs",
            dir.join("node_modules/jose").exists(),
            vec![],
        ),
        (
            "python3",
            "verify.py",
            dir.join(".pydeps/jwt").exists(),
            vec![("PYTHONPATH", dir.join(".pydeps").display().to_string())],
        ),
    ];
    for (program, script, installed, env) in checks {
        if !on_path(program) {
            eprintln!("skipped {script}: {program} is not installed");
            continue;
        }
        if !installed {
            eprintln!(
                "skipped {script}: its library is not installed; run tests/resource_server/setup.sh"
            );
            continue;
        }
        let run = |token: &str| {
            run_script(
                program,
                vec![
                    script.into(),
                    server.base.clone(),
                    BILLING.into(),
                    token.into(),
                ],
                env.clone(),
            )
        };
        for valid in [&good, &both] {
            let (ok, stdout, stderr) = run(valid).await;
            assert!(ok, "{script} refused a token for its API: {stderr}");
            let claims: Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(claims["client_id"], id.as_str(), "{script}");
            assert_eq!(claims["iss"], server.base.as_str(), "{script}");
        }
        for invalid in [&foreign, &default_audience] {
            let (ok, _, stderr) = run(invalid).await;
            assert!(!ok, "{script} accepted a token for another audience");
            assert!(stderr.contains("invalid token"), "{script}: {stderr}");
        }
    }
}

async fn execute(server: &TestServer, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if server.db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
}

/// The store: every write moves the `resources` change counter (so other
/// instances notice), a taken identifier is a conflict, and a corrupt row
/// is an error, never a default.
async fn store_counts_changes_and_refuses_corrupt_rows(backend: Backend) {
    use tessera::store::StoreError;
    let server = TestServer::start(backend).await;
    let store = &server.state.store;
    let before = store.change_versions().await.unwrap();
    add(&server, BILLING, "Billing API", "billing:read", |_| {}).await;
    let after_add = store.change_versions().await.unwrap();
    assert_eq!(after_add.resources, before.resources + 1);
    assert_eq!(after_add.clients, before.clients);
    let again = store
        .insert_resource(&store.resource(BILLING).await.unwrap().unwrap())
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.change_versions().await.unwrap(), after_add);
    // Deleting nothing moves nothing.
    assert!(!store.delete_resource(CALENDAR).await.unwrap());
    assert_eq!(store.change_versions().await.unwrap(), after_add);

    execute(
        &server,
        &format!("UPDATE resources SET signing_alg = 'HS256' WHERE identifier = '{BILLING}'"),
    )
    .await;
    assert!(matches!(
        store.resource(BILLING).await,
        Err(StoreError::Corrupt(_))
    ));
    execute(
        &server,
        &format!(
            "UPDATE resources SET signing_alg = NULL, scopes = 'a\"b' WHERE identifier = '{BILLING}'"
        ),
    )
    .await;
    assert!(matches!(
        store.resource(BILLING).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(store.delete_resource(BILLING).await.unwrap());
    assert_eq!(
        store.change_versions().await.unwrap().resources,
        before.resources + 2
    );
}

crate::both_backends!(
    store_counts_changes_and_refuses_corrupt_rows,
    readme_node_and_python_verifiers,
    client_credentials_token_is_for_the_requested_resources,
    bad_resources_are_invalid_target,
    per_resource_lifetime_and_algorithm,
    one_authorization_for_two_apis_gives_a_token_for_each,
    a_code_exchange_may_not_widen_the_resources,
    resources_with_different_algorithms_get_a_token_each,
    authorize_sends_invalid_target_to_the_client,
    consent_page_names_the_api,
    a_resource_introspects_only_tokens_meant_for_it,
    cli_manages_resources,
    admin_api_manages_resources,
    readme_rust_verifier_accepts_only_tokens_for_its_api,
);

/// The text between `COMMENT README: NAME (begin)` and `(end)` lines.
fn marked<'a>(text: &'a str, comment: &str, name: &str) -> &'a str {
    let begin = format!("{comment} README: {name} (begin)\n");
    let start = text.find(&begin).unwrap() + begin.len();
    let end = text[start..]
        .find(&format!("{comment} README: {name} (end)"))
        .unwrap();
    &text[start..start + end]
}

/// The fenced block after `<!-- NAME -->` in the README.
fn readme_block<'a>(readme: &'a str, name: &str) -> &'a str {
    let marker = format!("<!-- {name} -->\n```");
    let start = readme.find(&marker).unwrap() + marker.len();
    let start = start + readme[start..].find('\n').unwrap() + 1;
    let end = readme[start..].find("```").unwrap();
    &readme[start..start + end]
}

/// The README shows exactly the code these tests run.
#[test]
fn readme_snippets_are_the_tested_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let readme = read("README.md");
    let this = read("tests/it/resources.rs");
    let rust = marked(&this, "//", "resource-server-rust");
    let inner: Vec<&str> = rust.trim_end().lines().collect();
    assert_eq!(inner.first(), Some(&"mod verifier {"));
    assert_eq!(inner.last(), Some(&"}"));
    let dedented: String = inner[1..inner.len() - 1]
        .iter()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(readme_block(&readme, "resource-server-rust"), dedented);
    assert_eq!(
        readme_block(&readme, "resource-server-node"),
        marked(
            &read("tests/resource_server/verify.mjs"),
            "//",
            "resource-server-node"
        )
    );
    assert_eq!(
        readme_block(&readme, "resource-server-python"),
        marked(
            &read("tests/resource_server/verify.py"),
            "#",
            "resource-server-python"
        )
    );
}
