//! The admin API (`/admin/api/v1`) and the audit log (issue 8 points 2
//! and 4): bearer-token access, CRUD over the same services the CLI uses,
//! secret rotation, grants and consents, keys, cursor pagination, and the
//! audit trail as the API and `tessera audit list` show it.

use std::collections::BTreeSet;
use std::process::Output;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, LOCATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tessera::clock::Clock;
use tessera::domain::User;
use tessera::store::{AuditQuery, AuditRecord};

use crate::browser::{
    self, AuthRequest, Browser, PASSWORD, REDIRECT, add_user, rp, token_request, web_app,
};
use crate::cli::run_cli;
use crate::harness::{Backend, TestServer, eventually, http, random_id};
use crate::introspection::{kid_of, payload_of, request_token, token};

const API: &str = "/admin/api/v1";

/// A server, and an access token of a client registered with
/// `tessera:admin` (obtained by client credentials); the client's id.
async fn start(backend: Backend) -> (TestServer, String, String) {
    let server = browser::start(backend).await;
    let (admin_id, admin_secret) = server.machine_client("tessera:admin").await;
    let access = token(&server, &admin_id, &admin_secret).await;
    (server, admin_id, access)
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(
    server: &TestServer,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = http().request(method, server.url(&format!("{API}{path}")));
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
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(server: &TestServer, token: &str, path: &str) -> Answer {
    call(server, Some(token), reqwest::Method::GET, path, None).await
}

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> Answer {
    call(server, Some(token), reqwest::Method::POST, path, Some(body)).await
}

async fn put(server: &TestServer, token: &str, path: &str, body: Value) -> Answer {
    call(server, Some(token), reqwest::Method::PUT, path, Some(body)).await
}

async fn delete(server: &TestServer, token: &str, path: &str) -> Answer {
    call(server, Some(token), reqwest::Method::DELETE, path, None).await
}

/// Asserts a status and, for an error, its JSON code and a description.
fn expect(answer: &Answer, status: StatusCode, error: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    if let Some(code) = error {
        assert_eq!(answer.body["error"], code, "{}", answer.body);
        assert!(
            answer.body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{}",
            answer.body
        );
    }
}

async fn cli_ok(server: &TestServer, args: &[&str]) -> Output {
    let out = run_cli(server, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    out
}

async fn cli_json(server: &TestServer, args: &[&str]) -> Value {
    let out = cli_ok(server, args).await;
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A command that must exit 2 with a one-line reason; the reason.
async fn cli_refuses(server: &TestServer, args: &[&str]) -> String {
    let out = run_cli(server, args).await;
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
    stderr
}

/// Every stored audit event, newest first, once the queue is written.
async fn audit_table(server: &TestServer) -> Vec<AuditRecord> {
    server.state.audit.flush().await;
    server
        .state
        .store
        .audit_records(&AuditQuery {
            limit: 100_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// `GET /audit?QUERY`; its items.
async fn audit_items(server: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let answer = get(server, token, &format!("/audit?{query}")).await;
    expect(&answer, StatusCode::OK, None);
    answer.body["items"].as_array().unwrap().clone()
}

// ---------------------------------------------------------------------------

async fn no_token_is_401_and_a_token_without_the_scope_is_403(backend: Backend) {
    let (server, _admin, access) = start(backend).await;
    let anonymous = call(&server, None, reqwest::Method::GET, "/users", None).await;
    expect(&anonymous, StatusCode::UNAUTHORIZED, Some("unauthorized"));
    assert_eq!(
        anonymous.headers[WWW_AUTHENTICATE],
        "Bearer realm=\"tessera\""
    );
    // Unknown paths do not tell an anonymous caller what exists.
    let unknown = call(&server, None, reqwest::Method::GET, "/nothing", None).await;
    expect(&unknown, StatusCode::UNAUTHORIZED, Some("unauthorized"));

    for bad in ["not-a-jwt", &format!("{access}x")] {
        let answer = get(&server, bad, "/users").await;
        expect(&answer, StatusCode::UNAUTHORIZED, Some("unauthorized"));
        let challenge = answer.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    // Another scheme is not a bearer token.
    let basic = http()
        .get(server.url(&format!("{API}/users")))
        .basic_auth("x", Some("y"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(
        basic.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // A valid token of a client without the scope.
    let (reader, reader_secret) = server.machine_client("read tessera:other").await;
    let reader_token = token(&server, &reader, &reader_secret).await;
    let forbidden = get(&server, &reader_token, "/users").await;
    expect(&forbidden, StatusCode::FORBIDDEN, Some("forbidden"));
    let challenge = forbidden.headers[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"tessera:admin\""), "{challenge}");
    // The admin client asking for a narrower scope gets no admin access.
    let (admin2, admin2_secret) = server.machine_client("tessera:admin read").await;
    let narrowed = crate::introspection::post_form(
        &server,
        "/token",
        Some((&admin2, &admin2_secret)),
        &[("grant_type", "client_credentials"), ("scope", "read")],
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let narrowed = narrowed["access_token"].as_str().unwrap();
    expect(
        &get(&server, narrowed, "/users").await,
        StatusCode::FORBIDDEN,
        Some("forbidden"),
    );

    // The admin token works; answers are JSON and never cached.
    let ok = get(&server, &access, "/users").await;
    expect(&ok, StatusCode::OK, None);
    assert_eq!(ok.headers[CACHE_CONTROL], "no-store");
    assert_eq!(ok.body, json!({"items": [], "next_cursor": null}));
    expect(
        &get(&server, &access, "/nothing").await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    let wrong_method = call(
        &server,
        Some(&access),
        reqwest::Method::PATCH,
        "/users",
        None,
    )
    .await;
    expect(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        Some("method_not_allowed"),
    );

    // A revoked admin token is refused at once.
    let (admin_id, admin_secret) = server.machine_client("tessera:admin").await;
    let revoked = token(&server, &admin_id, &admin_secret).await;
    expect(
        &get(&server, &revoked, "/users").await,
        StatusCode::OK,
        None,
    );
    let response = crate::introspection::post_form(
        &server,
        "/revoke",
        Some((&admin_id, &admin_secret)),
        &[("token", &revoked)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    expect(
        &get(&server, &revoked, "/users").await,
        StatusCode::UNAUTHORIZED,
        Some("unauthorized"),
    );
    // An expired one too.
    server
        .clock
        .advance(server.state.config.tokens.access_token_ttl_secs + 1);
    expect(
        &get(&server, &access, "/users").await,
        StatusCode::UNAUTHORIZED,
        Some("unauthorized"),
    );
}

async fn clients_made_through_the_api_are_what_the_cli_sees(backend: Backend) {
    let (server, _admin, access) = start(backend).await;
    let created = post(
        &server,
        &access,
        "/clients",
        json!({"client_name": "Billing", "scope": "billing:read", "unknown_member": 1}),
    )
    .await;
    expect(&created, StatusCode::CREATED, None);
    let id = created.body["client_id"].as_str().unwrap().to_string();
    let secret = created.body["client_secret"].as_str().unwrap().to_string();
    assert_eq!(
        created.headers[LOCATION],
        format!("{API}/clients/{id}").as_str()
    );
    assert_eq!(created.body["grant_types"], json!(["client_credentials"]));
    // The secret works at once, and the CLI sees the client (without it).
    token(&server, &id, &secret).await;
    let shown = cli_json(&server, &["client", "show", &id]).await;
    assert_eq!(shown["client_name"], "Billing");
    assert!(shown.get("client_secret").is_none(), "{shown}");

    // A client the CLI registers is listed by the API.
    let cli_client = cli_json(&server, &["client", "add", "--name", "From CLI"]).await;
    let listed = get(&server, &access, "/clients").await;
    expect(&listed, StatusCode::OK, None);
    let names: BTreeSet<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["machine", "Billing", "From CLI"]));
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("client_secret").is_none())
    );
    let one = get(
        &server,
        &access,
        &format!("/clients/{}", cli_client["client_id"].as_str().unwrap()),
    )
    .await;
    expect(&one, StatusCode::OK, None);
    assert_eq!(one.body["client_name"], "From CLI");

    // Replace the metadata: the secret stays, the CLI sees the change.
    let mut edited = get(&server, &access, &format!("/clients/{id}")).await.body;
    edited["client_name"] = "Billing v2".into();
    edited["scope"] = "billing:read billing:write".into();
    let replaced = put(&server, &access, &format!("/clients/{id}"), edited).await;
    expect(&replaced, StatusCode::OK, None);
    assert!(
        replaced.body.get("client_secret").is_none(),
        "{}",
        replaced.body
    );
    let shown = cli_json(&server, &["client", "show", &id]).await;
    assert_eq!(shown["client_name"], "Billing v2");
    assert_eq!(shown["scope"], "billing:read billing:write");
    let (status, body) = request_token(&server, &id, &secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        payload_of(body["access_token"].as_str().unwrap())["scope"],
        "billing:read billing:write"
    );

    // A first-party client, which only the admin API (and the CLI) may make.
    let first_party = post(
        &server,
        &access,
        "/clients",
        json!({"client_name": "Portal", "redirect_uris": [REDIRECT], "skip_consent": true}),
    )
    .await;
    expect(&first_party, StatusCode::CREATED, None);
    assert_eq!(first_party.body["skip_consent"], true);
    assert_eq!(
        first_party.body["grant_types"],
        json!(["authorization_code"])
    );

    // The CLI's metadata rules, through the API.
    for (bad, named) in [
        (
            json!({"client_name": "x", "grant_types": ["implicit"]}),
            "implicit",
        ),
        (
            json!({"client_name": "x", "redirect_uris": ["https://a.example/#f"]}),
            "fragment",
        ),
        (
            json!({"client_name": "x", "access_token_signed_response_alg": "HS256"}),
            "access_token_signed_response_alg",
        ),
        (json!({"client_name": ""}), "name"),
        (
            json!({"client_name": "x", "redirect_uris": "https://a.example/cb"}),
            "redirect_uris",
        ),
        (
            json!({"client_name": "x", "skip_consent": "yes"}),
            "skip_consent",
        ),
    ] {
        let refused = post(&server, &access, "/clients", bad.clone()).await;
        expect(&refused, StatusCode::BAD_REQUEST, Some("invalid_request"));
        let description = refused.body["error_description"].as_str().unwrap();
        assert!(description.contains(named), "{bad}: {description}");
        let refused = put(&server, &access, &format!("/clients/{id}"), bad).await;
        expect(&refused, StatusCode::BAD_REQUEST, Some("invalid_request"));
    }
    assert_eq!(
        cli_json(&server, &["client", "show", &id]).await["client_name"],
        "Billing v2"
    );
    let not_json = http()
        .post(server.url(&format!("{API}/clients")))
        .bearer_auth(&access)
        .form(&[("client_name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let malformed = http()
        .post(server.url(&format!("{API}/clients")))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    // Delete: gone for the API, the CLI and the token endpoint.
    expect(
        &delete(&server, &access, &format!("/clients/{id}")).await,
        StatusCode::NO_CONTENT,
        None,
    );
    expect(
        &get(&server, &access, &format!("/clients/{id}")).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    expect(
        &delete(&server, &access, &format!("/clients/{id}")).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    cli_refuses(&server, &["client", "show", &id]).await;
    let (status, body) = request_token(&server, &id, &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

async fn a_rotated_secret_replaces_the_old_one_at_once(backend: Backend) {
    let (server, _admin, access) = start(backend).await;
    let (id, old) = server.machine_client("read").await;
    token(&server, &id, &old).await;
    let rotated = post(
        &server,
        &access,
        &format!("/clients/{id}/secret"),
        json!({}),
    )
    .await;
    expect(&rotated, StatusCode::OK, None);
    assert_eq!(rotated.body["client_id"], id.as_str());
    assert_eq!(rotated.body["client_secret_expires_at"], 0);
    let new = rotated.body["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let (status, body) = request_token(&server, &id, &old).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    token(&server, &id, &new).await;
    // Only its hash is stored.
    let stored = server.state.store.client(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.secret_hash.unwrap(),
        tessera::crypto::hash_secret(&new)
    );

    // A public client has no secret to rotate; an unknown one is not found.
    let public = cli_json(
        &server,
        &[
            "client",
            "add",
            "--name",
            "spa",
            "--public",
            "--redirect-uri",
            REDIRECT,
        ],
    )
    .await;
    let refused = post(
        &server,
        &access,
        &format!("/clients/{}/secret", public["client_id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    expect(&refused, StatusCode::BAD_REQUEST, Some("invalid_request"));
    expect(
        &post(&server, &access, "/clients/nope/secret", json!({})).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
}

async fn users_made_through_the_api_are_what_the_cli_sees(backend: Backend) {
    let (server, _admin, access) = start(backend).await;
    let created = post(
        &server,
        &access,
        "/users",
        json!({"username": "alice", "password": "first password", "email": "alice@example.com"}),
    )
    .await;
    expect(&created, StatusCode::CREATED, None);
    let sub = created.body["sub"].as_str().unwrap().to_string();
    assert_eq!(
        created.headers[LOCATION],
        format!("{API}/users/{sub}").as_str()
    );
    assert_eq!(created.body["username"], "alice");
    assert_eq!(created.body["email"], "alice@example.com");
    assert!(created.body.get("password").is_none() && created.body.get("password_hash").is_none());
    let listed = cli_json(&server, &["user", "list"]).await;
    assert_eq!(listed[0]["sub"], sub.as_str());

    // Refusals: a taken name, a bad name, an empty password, stray members.
    let taken = post(
        &server,
        &access,
        "/users",
        json!({"username": "alice", "password": "x"}),
    )
    .await;
    expect(&taken, StatusCode::CONFLICT, Some("conflict"));
    for bad in [
        json!({"username": "bad name", "password": "x"}),
        json!({"username": "carol", "password": ""}),
        json!({"username": "carol", "password": "x", "admin": true}),
        json!({"username": "carol"}),
    ] {
        let refused = post(&server, &access, "/users", bad.clone()).await;
        expect(&refused, StatusCode::BAD_REQUEST, Some("invalid_request"));
    }

    // Update: given members change, null clears, the rest stays.
    let path = format!("/users/{sub}");
    let named = put(&server, &access, &path, json!({"name": "Alice Example"})).await;
    expect(&named, StatusCode::OK, None);
    assert_eq!(named.body["name"], "Alice Example");
    assert_eq!(named.body["email"], "alice@example.com");
    let cleared = put(&server, &access, &path, json!({"email": null})).await;
    expect(&cleared, StatusCode::OK, None);
    assert_eq!(cleared.body["email"], Value::Null);
    assert_eq!(cleared.body["name"], "Alice Example");
    let shown = get(&server, &access, &path).await;
    assert_eq!(shown.body, cleared.body);
    expect(
        &put(&server, &access, &path, json!({"username": "mallory"})).await,
        StatusCode::BAD_REQUEST,
        Some("invalid_request"),
    );
    let stored: User = server.state.store.user(&sub).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.username.as_str(),
            stored.email,
            stored.name.as_deref()
        ),
        ("alice", None, Some("Alice Example"))
    );

    // The password: set through the API, checked by a real sign-in.
    expect(
        &put(
            &server,
            &access,
            &format!("{path}/password"),
            json!({"password": ""}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        Some("invalid_request"),
    );
    let set = put(
        &server,
        &access,
        &format!("{path}/password"),
        json!({"password": PASSWORD}),
    )
    .await;
    expect(&set, StatusCode::NO_CONTENT, None);
    let app = rp(&server, web_app()).await;
    let code = Browser::new(&server)
        .code(&AuthRequest::new(&app), "alice")
        .await;
    assert!(!code.is_empty());

    // A user the CLI adds is seen by the API.
    let bob = run_cli_stdin(&server, &["user", "add", "bob", "--password-stdin"], "pw").await;
    let bob_sub = bob["sub"].as_str().unwrap();
    let bob_shown = get(&server, &access, &format!("/users/{bob_sub}")).await;
    expect(&bob_shown, StatusCode::OK, None);
    assert_eq!(bob_shown.body["username"], "bob");

    // Delete: gone for the API and the CLI.
    expect(
        &delete(&server, &access, &path).await,
        StatusCode::NO_CONTENT,
        None,
    );
    expect(
        &get(&server, &access, &path).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    expect(
        &delete(&server, &access, &path).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    let names: Vec<String> = cli_json(&server, &["user", "list"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["bob"]);
}

async fn run_cli_stdin(server: &TestServer, args: &[&str], stdin: &str) -> Value {
    let url = server.db.url.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::harness::cli_on(&url, &args, Some(&stdin))
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Alice signs in to the web app, consents, and exchanges the code: her
/// sub, the app, and the token response.
async fn alice_with_tokens(server: &TestServer) -> (String, browser::Rp, Browser, Value) {
    let sub = add_user(server, "alice").await;
    let app = rp(server, web_app()).await;
    let browser = Browser::new(server);
    let req = AuthRequest::new(&app);
    let code = browser.code(&req, "alice").await;
    let (status, tokens) = browser::exchange(server, &app, &code, &req.verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    (sub, app, browser, tokens)
}

async fn refresh(
    server: &TestServer,
    app: &browser::Rp,
    refresh_token: &str,
) -> (StatusCode, Value) {
    token_request(
        server,
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn a_revoked_grant_takes_its_refresh_token_along(backend: Backend) {
    let (server, _admin, access) = start(backend).await;
    let (sub, app, _browser, tokens) = alice_with_tokens(&server).await;
    let listed = get(&server, &access, &format!("/users/{sub}/grants")).await;
    expect(&listed, StatusCode::OK, None);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.body);
    let grant = &items[0];
    assert_eq!(grant["client_id"], app.id.as_str());
    assert_eq!(grant["active"], true);
    assert_eq!(grant["scope"], "email offline_access openid profile");
    let grant_id = grant["grant_id"].as_str().unwrap();
    assert_eq!(
        payload_of(tokens["access_token"].as_str().unwrap())["grant_id"],
        grant_id
    );
    // Nothing secret is listed.
    let text = listed.body.to_string();
    assert!(!text.contains(tokens["refresh_token"].as_str().unwrap()));

    // Someone else's grant, or none, is not found.
    let bob = add_user(&server, "bob").await;
    expect(
        &delete(&server, &access, &format!("/users/{bob}/grants/{grant_id}")).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    expect(
        &delete(&server, &access, &format!("/users/{sub}/grants/nope")).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    expect(
        &get(&server, &access, "/users/nobody/grants").await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );

    expect(
        &delete(&server, &access, &format!("/users/{sub}/grants/{grant_id}")).await,
        StatusCode::NO_CONTENT,
        None,
    );
    let (status, body) = refresh(&server, &app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let after = get(&server, &access, &format!("/users/{sub}/grants")).await;
    assert_eq!(after.body["items"][0]["active"], false);
    assert_eq!(after.body["items"][0]["revoked_at"], server.clock.now());
    // Revoking it again changes nothing.
    expect(
        &delete(&server, &access, &format!("/users/{sub}/grants/{grant_id}")).await,
        StatusCode::NO_CONTENT,
        None,
    );
}

async fn a_withdrawn_consent_is_asked_for_again(backend: Backend) {
    let (server, admin, access) = start(backend).await;
    let (sub, app, browser, tokens) = alice_with_tokens(&server).await;
    // Remembered: the next authorization needs no consent page.
    let again = browser.authorize(&AuthRequest::new(&app)).await;
    assert!(again.callback().contains_key("code"));

    let listed = get(&server, &access, &format!("/users/{sub}/consents")).await;
    expect(&listed, StatusCode::OK, None);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["client_id"], app.id.as_str());
    assert_eq!(
        listed.body["items"][0]["scope"],
        "email offline_access openid profile"
    );
    let one = get(
        &server,
        &access,
        &format!("/users/{sub}/consents/{}", app.id),
    )
    .await;
    expect(&one, StatusCode::OK, None);
    assert_eq!(one.body, listed.body["items"][0]);
    expect(
        &get(&server, &access, &format!("/users/{sub}/consents/other")).await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );

    expect(
        &delete(
            &server,
            &access,
            &format!("/users/{sub}/consents/{}", app.id),
        )
        .await,
        StatusCode::NO_CONTENT,
        None,
    );
    let asked = browser.authorize(&AuthRequest::new(&app)).await;
    assert!(asked.is_consent(), "{}", asked.body);
    // The grants given under it are revoked with their tokens.
    let (status, _) = refresh(&server, &app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    expect(
        &delete(
            &server,
            &access,
            &format!("/users/{sub}/consents/{}", app.id),
        )
        .await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );
    let empty = get(&server, &access, &format!("/users/{sub}/consents")).await;
    assert_eq!(empty.body, json!({"items": [], "next_cursor": null}));

    // Consent again, then withdraw every consent at once.
    let r = browser.decide(&asked, "allow").await;
    assert!(r.callback().contains_key("code"));
    expect(
        &delete(&server, &access, &format!("/users/{sub}/consents")).await,
        StatusCode::NO_CONTENT,
        None,
    );
    assert!(
        browser
            .authorize(&AuthRequest::new(&app))
            .await
            .is_consent()
    );

    // The audit trail: consents given by alice, withdrawn by the admin.
    let consents = audit_items(&server, &access, &format!("type=consent&user={sub}")).await;
    let kinds: Vec<(&str, &str)> = consents
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    let alice = format!("user:{sub}");
    let admin = format!("client:{admin}");
    assert_eq!(
        kinds,
        [
            ("consent.revoked", admin.as_str()),
            ("consent.given", alice.as_str()),
            ("consent.revoked", admin.as_str()),
            ("consent.given", alice.as_str()),
        ]
    );
    assert_eq!(
        consents[3]["detail"]["scope"],
        "email offline_access openid profile"
    );
    assert!(consents.iter().all(|e| e["client_id"] == app.id.as_str()));
}

async fn ending_sessions_signs_the_user_out_everywhere(backend: Backend) {
    let (server, admin, access) = start(backend).await;
    let alice = add_user(&server, "alice").await;
    add_user(&server, "bob").await;
    let app = rp(&server, web_app()).await;
    let (laptop, phone, bobs) = (
        Browser::new(&server),
        Browser::new(&server),
        Browser::new(&server),
    );
    for (browser, name) in [(&laptop, "alice"), (&phone, "alice"), (&bobs, "bob")] {
        browser.code(&AuthRequest::new(&app), name).await;
        // Signed in and consented: the next request needs nobody.
        let again = browser.authorize(&AuthRequest::new(&app)).await;
        assert!(again.callback().contains_key("code"), "{name}");
    }

    let ended = delete(&server, &access, &format!("/users/{alice}/sessions")).await;
    expect(&ended, StatusCode::NO_CONTENT, None);
    for browser in [&laptop, &phone] {
        let r = browser.authorize(&AuthRequest::new(&app)).await;
        assert!(r.is_login(), "{}", r.body);
    }
    let r = bobs.authorize(&AuthRequest::new(&app)).await;
    assert!(r.callback().contains_key("code"), "bob stays signed in");
    expect(
        &delete(&server, &access, "/users/nobody/sessions").await,
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );

    let events = audit_items(
        &server,
        &access,
        &format!("type=session.ended&user={alice}"),
    )
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["sessions"], 2);
    assert_eq!(events[0]["actor"], format!("client:{admin}").as_str());
}

async fn dynamic_registrations_are_audited(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.registration.open = true).await;
    let registered: Value = http()
        .post(server.url("/register"))
        .json(&json!({"client_name": "Self-made", "grant_types": ["client_credentials"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["client_id"].as_str().unwrap();
    let token = registered["registration_access_token"].as_str().unwrap();
    let deleted = http()
        .delete(server.url(&format!("/register/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let table = audit_table(&server).await;
    let kinds: Vec<(&str, &str)> = table
        .iter()
        .map(|r| (r.kind.as_str(), r.actor.as_str()))
        .collect();
    let actor = format!("client:{id}");
    assert_eq!(
        kinds,
        [
            ("client.deleted", actor.as_str()),
            ("client.registered", actor.as_str())
        ]
    );
    assert!(
        table
            .iter()
            .all(|r| r.address.as_deref() == Some("127.0.0.1"))
    );
    assert!(!format!("{table:?}").contains(token));
}

/// A client that registers itself can never reach the admin API: the
/// scope is refused at registration, and a self-registered client that
/// holds it anyway (stored by an older version) is still refused.
async fn self_registered_clients_never_get_admin_access(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.registration.open = true).await;
    let register = |scope: &str| {
        http()
            .post(server.url("/register"))
            .json(&json!({"client_name": "Sneaky", "grant_types": ["client_credentials"], "scope": scope}))
            .send()
    };
    let refused = register("read tessera:admin").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("scope: tessera:admin"),
        "{body}"
    );

    let registered: Value = register("read").await.unwrap().json().await.unwrap();
    let id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    let mut stored = server.state.store.client(id).await.unwrap().unwrap();
    stored.metadata.scope = tessera::domain::ScopeSet::parse("read tessera:admin").unwrap();
    assert!(server.state.store.replace_client(&stored).await.unwrap());
    server.state.clients.invalidate();
    let access = token(&server, id, secret).await;
    assert_eq!(payload_of(&access)["scope"], "read tessera:admin");
    let answer = get(&server, &access, "/users").await;
    expect(&answer, StatusCode::FORBIDDEN, Some("forbidden"));
}

async fn keys_rotate_through_the_api(backend: Backend) {
    let (server, admin, access) = start(backend).await;
    let listed = get(&server, &access, "/keys").await;
    expect(&listed, StatusCode::OK, None);
    let keys = listed.body["items"].as_array().unwrap();
    let state_of = |keys: &[Value], kid: &str| {
        keys.iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].as_str().unwrap().to_string())
    };
    let next_rs256 = keys
        .iter()
        .find(|k| k["alg"] == "RS256" && k["state"] == "next")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(keys.iter().all(|k| k.get("private_key").is_none()));

    let rotated = post(&server, &access, "/keys/rotate", json!({})).await;
    expect(&rotated, StatusCode::OK, None);
    let after = rotated.body["items"].as_array().unwrap();
    assert_eq!(state_of(after, &next_rs256).as_deref(), Some("current"));
    // The CLI sees the same keys, and this server signs with the new one.
    let cli = cli_json(&server, &["keys", "list"]).await;
    assert_eq!(
        state_of(cli.as_array().unwrap(), &next_rs256).as_deref(),
        Some("current")
    );
    let (admin_id, admin_secret) = server.machine_client("tessera:admin").await;
    assert_eq!(
        kid_of(&token(&server, &admin_id, &admin_secret).await),
        next_rs256
    );

    let events = audit_items(&server, &access, "type=keys.rotated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor"], format!("client:{admin}").as_str());
    assert_eq!(events[0]["detail"]["changed"][&next_rs256], "current");
}

async fn the_audit_log_records_sign_ins_tokens_and_admin_calls(backend: Backend) {
    let (server, admin, access) = start(backend).await;
    let alice = add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let browser = Browser::new(&server);
    let wrong_password = format!("wrong-{}", random_id());

    // A failed sign-in for an existing account and for an unknown name.
    let req = AuthRequest::new(&app);
    let page = browser.authorize(&req).await;
    let failed = browser.submit_login(&page, "alice", &wrong_password).await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let failed = browser
        .submit_login(&failed, "mallory", &wrong_password)
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let failures = audit_items(&server, &access, "type=signin.failed").await;
    assert_eq!(failures.len(), 2, "{failures:?}");
    let (mallory, alice_failure) = (&failures[0], &failures[1]);
    assert_eq!(
        alice_failure["detail"],
        json!({"reason": "bad_credentials", "username": "alice"})
    );
    assert_eq!(alice_failure["subject"], alice.as_str());
    assert_eq!(alice_failure["actor"], "anonymous");
    assert_eq!(alice_failure["client_id"], app.id.as_str());
    assert_eq!(alice_failure["address"], "127.0.0.1");
    assert!(
        alice_failure["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(mallory["detail"]["username"], "mallory");
    assert_eq!(mallory["subject"], Value::Null);
    // Filtered by the account.
    let about_alice = audit_items(&server, &access, &format!("user={alice}")).await;
    assert_eq!(about_alice.len(), 1);

    // A successful sign-in, consent and the token issued for the code.
    let signed_in = browser.login(&failed, "alice", PASSWORD).await;
    let code = browser.decide(&signed_in, "allow").await.callback()["code"].clone();
    let (status, tokens) = browser::exchange(&server, &app, &code, &req.verifier, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let kinds: Vec<String> = audit_items(&server, &access, &format!("user={alice}"))
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "token.issued",
            "consent.given",
            "signin.succeeded",
            "signin.failed"
        ]
    );
    let issued = &audit_items(
        &server,
        &access,
        &format!("type=token.issued&client={}", app.id),
    )
    .await[0];
    assert_eq!(issued["actor"], format!("client:{}", app.id).as_str());
    assert_eq!(issued["subject"], alice.as_str());
    assert_eq!(issued["detail"]["grant_type"], "authorization_code");
    assert_eq!(issued["detail"]["refresh_token"], true);

    // Client credentials, a refresh, a reused refresh token, a revocation.
    let (machine, machine_secret) = server.machine_client("read").await;
    let machine_token = token(&server, &machine, &machine_secret).await;
    let cc = audit_items(&server, &access, &format!("client={machine}")).await;
    assert_eq!(cc.len(), 1);
    assert_eq!(cc[0]["kind"], "token.issued");
    assert_eq!(
        cc[0]["detail"],
        json!({"grant_type": "client_credentials", "scope": "read", "refresh_token": false, "id_token": false})
    );
    assert_eq!(cc[0]["subject"], Value::Null);
    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = refresh(&server, &app, first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let (status, _) = refresh(&server, &app, first_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reused = audit_items(&server, &access, "type=token.refresh_reused").await;
    assert_eq!(reused.len(), 1);
    assert_eq!(reused[0]["client_id"], app.id.as_str());
    let response = crate::introspection::post_form(
        &server,
        "/revoke",
        Some((&machine, &machine_secret)),
        &[
            ("token", &machine_token),
            ("token_type_hint", "access_token"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let revoked = audit_items(&server, &access, "type=token.revoked").await;
    assert_eq!(revoked[0]["client_id"], machine.as_str());
    assert_eq!(
        revoked[0]["detail"],
        json!({"token_type_hint": "access_token"})
    );

    // An admin call, and the change it made, name the calling client.
    let created = post(
        &server,
        &access,
        "/users",
        json!({"username": "carol", "password": wrong_password}),
    )
    .await;
    expect(&created, StatusCode::CREATED, None);
    let carol = created.body["sub"].as_str().unwrap();
    let calls = audit_items(&server, &access, "type=admin&limit=3").await;
    let call = calls
        .iter()
        .find(|e| e["detail"]["method"] == "POST")
        .unwrap();
    assert_eq!(call["actor"], format!("client:{admin}").as_str());
    assert_eq!(call["detail"]["path"], format!("{API}/users").as_str());
    assert_eq!(call["detail"]["status"], 201);
    assert_eq!(call["address"], "127.0.0.1");
    let made = &audit_items(&server, &access, &format!("type=user.created&user={carol}")).await[0];
    assert_eq!(made["actor"], format!("client:{admin}").as_str());
    assert_eq!(made["request_id"], call["request_id"]);
    // A refused call is audited too.
    let (reader, reader_secret) = server.machine_client("read").await;
    let reader_token = token(&server, &reader, &reader_secret).await;
    get(&server, &reader_token, "/audit").await;
    let refused = audit_items(
        &server,
        &access,
        &format!("type=admin.call&client={reader}"),
    )
    .await;
    assert_eq!(refused[0]["detail"]["status"], 403);

    // Time filters.
    let now = server.clock.now();
    let since = tessera::service::audit::format_rfc3339(now + 1);
    assert!(
        audit_items(&server, &access, &format!("since={since}"))
            .await
            .is_empty()
    );
    let until = tessera::service::audit::format_rfc3339(now);
    assert!(
        audit_items(&server, &access, &format!("until={until}"))
            .await
            .is_empty()
    );
    assert!(
        !audit_items(
            &server,
            &access,
            &format!("since={}", tessera::service::audit::format_rfc3339(now))
        )
        .await
        .is_empty()
    );
    for bad in [
        "type=nope",
        "since=yesterday",
        "limit=0",
        "limit=abc",
        "colour=red",
        "cursor=zzz",
    ] {
        let answer = get(&server, &access, &format!("/audit?{bad}")).await;
        expect(&answer, StatusCode::BAD_REQUEST, Some("invalid_request"));
    }

    // Never a password, secret, code or token anywhere in the table.
    let table = format!("{:?}", audit_table(&server).await);
    for secret in [
        wrong_password.as_str(),
        PASSWORD,
        &machine_secret,
        &machine_token,
        &access,
        first_refresh,
        refreshed["refresh_token"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
        &code,
    ] {
        assert!(!table.contains(secret), "{secret:?} is in the audit table");
    }
}

async fn pagination_walks_25_users_in_pages_of_10(backend: Backend) {
    let (server, _admin, access) = start(backend).await;
    let hash = tessera::auth::password::hash_password("x".into())
        .await
        .unwrap();
    let now = server.clock.now();
    let mut expected = Vec::new();
    for i in 0..25 {
        let username = format!("user{:02}-{}", (i * 7) % 25, random_id());
        let user = User {
            sub: random_id(),
            username: username.clone(),
            password_hash: hash.clone(),
            email: None,
            name: None,
            created_at: now,
            updated_at: now,
        };
        server.state.store.insert_user(&user).await.unwrap();
        expected.push(username);
    }
    expected.sort();

    let mut seen: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/users?limit=10".to_string(),
            Some(c) => format!("/users?limit=10&cursor={c}"),
        };
        let page = get(&server, &access, &path).await;
        expect(&page, StatusCode::OK, None);
        let items = page.body["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(
            items
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_string()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        // A user added behind the cursor shifts nothing.
        if sizes.len() == 1 {
            let early = User {
                sub: random_id(),
                username: "aaa-early".into(),
                password_hash: hash.clone(),
                email: None,
                name: None,
                created_at: now,
                updated_at: now,
            };
            server.state.store.insert_user(&early).await.unwrap();
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(seen, expected, "every user once, in username order");

    // Cursors are opaque and belong to their list; limits are bounded.
    let first = get(&server, &access, "/users?limit=10").await;
    let users_cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    assert!(!users_cursor.contains("user"), "{users_cursor}");
    for bad in [
        format!("/clients?cursor={users_cursor}"),
        format!("/audit?cursor={users_cursor}"),
        "/users?cursor=%25%25".to_string(),
        "/users?limit=0".to_string(),
        "/users?limit=201".to_string(),
        "/users?page=2".to_string(),
    ] {
        expect(
            &get(&server, &access, &bad).await,
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
        );
    }

    // The audit log pages the same way, newest first.
    let all: Vec<i64> = audit_table(&server).await.iter().map(|r| r.id).collect();
    let mut walked: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/audit?limit=2".to_string(),
            Some(c) => format!("/audit?limit=2&cursor={c}"),
        };
        let page = get(&server, &access, &path).await;
        expect(&page, StatusCode::OK, None);
        walked.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    // The walk's own calls were audited after it started; the rest match.
    let walked_old: Vec<i64> = walked
        .iter()
        .copied()
        .filter(|id| all.contains(id))
        .collect();
    assert_eq!(walked_old, all);
    let mut unique = walked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), walked.len(), "no event twice");
}

async fn cli_audit_list_prints_json_lines(backend: Backend) {
    let server = browser::start(backend).await;
    run_cli_stdin(&server, &["user", "add", "dave", "--password-stdin"], "pw").await;
    run_cli_stdin(&server, &["user", "add", "erin", "--password-stdin"], "pw").await;
    let client = cli_json(&server, &["client", "add", "--name", "svc"]).await;
    cli_ok(
        &server,
        &["client", "delete", client["client_id"].as_str().unwrap()],
    )
    .await;
    cli_ok(&server, &["keys", "rotate"]).await;

    let lines = |out: Output| -> Vec<Value> {
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let all = lines(cli_ok(&server, &["audit", "list"]).await);
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "keys.rotated",
            "client.deleted",
            "client.registered",
            "user.created",
            "user.created"
        ]
    );
    assert!(all.iter().all(|e| e["actor"] == "cli"));
    let newest_user = lines(
        cli_ok(
            &server,
            &["audit", "list", "--type", "user", "--limit", "1"],
        )
        .await,
    );
    assert_eq!(newest_user.len(), 1);
    assert_eq!(newest_user[0]["kind"], "user.created");
    let erin = server
        .state
        .store
        .user_by_username("erin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest_user[0]["subject"], erin.sub.as_str());
    assert!(newest_user[0]["time"].as_str().unwrap().ends_with('Z'));
    let clients = lines(cli_ok(&server, &["audit", "list", "--type", "client.registered"]).await);
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["client_id"], client["client_id"]);

    // --since: the server's clock is the test's; the CLI's events carry
    // the real time, so a date far ahead leaves nothing, one long ago all.
    assert!(
        lines(
            cli_ok(
                &server,
                &["audit", "list", "--since", "2999-01-01T00:00:00Z"]
            )
            .await
        )
        .is_empty()
    );
    assert_eq!(
        lines(
            cli_ok(
                &server,
                &["audit", "list", "--since", "2000-01-01T00:00:00+02:00"]
            )
            .await
        )
        .len(),
        5
    );

    for (args, named) in [
        (&["audit", "list", "--type", "nope"][..], "nope"),
        (&["audit", "list", "--since", "yesterday"], "--since"),
        (&["audit", "list", "--limit", "0"], "--limit"),
        (&["audit", "list", "--limit", "x"], "--limit"),
    ] {
        let reason = cli_refuses(&server, args).await;
        assert!(reason.contains(named), "{args:?}: {reason}");
    }
}

async fn old_audit_events_are_pruned_by_the_upkeep(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.audit.retention_days = 30;
        c.keys.check_interval_secs = 1;
    })
    .await;
    let now = server.clock.now();
    let record = |at, kind: &str| AuditRecord {
        id: 0,
        at,
        kind: kind.into(),
        actor: "cli".into(),
        subject: None,
        client_id: None,
        address: None,
        request_id: None,
        detail: json!({}),
    };
    server
        .state
        .store
        .insert_audit_records(&[
            record(now - 30 * 86_400 - 1, "user.created"),
            record(now - 30 * 86_400, "user.deleted"),
        ])
        .await
        .unwrap();
    eventually("the old event is pruned", || async {
        audit_table(&server).await.len() == 1
    })
    .await;
    assert_eq!(audit_table(&server).await[0].kind, "user.deleted");
}

/// API keys through the admin API: created (the key shown once), listed
/// by cursor, shown, rotated and revoked, with the CLI seeing the same;
/// malformed bodies are refused and store nothing; audited.
async fn api_keys_are_managed_through_the_api(backend: Backend) {
    let (server, _, access) = start(backend).await;
    let (owner_id, _) = server.machine_client("reports:read").await;
    let made = post(
        &server,
        &access,
        "/apikeys",
        json!({
            "name": "exporter",
            "scope": "reports:read",
            "owner": owner_id,
            "rate_limit": "10/60",
            "meta": { "team": "ops" },
        }),
    )
    .await;
    expect(&made, StatusCode::CREATED, None);
    let id = made.body["id"].as_str().unwrap().to_string();
    let key = made.body["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("tsr_"));
    assert_eq!(
        made.headers[LOCATION].to_str().unwrap(),
        format!("{API}/apikeys/{id}")
    );
    assert_eq!(
        made.body["owner"],
        json!({ "type": "client", "id": owner_id })
    );
    assert_eq!(made.body["meta"], json!({ "team": "ops" }));

    let shown = get(&server, &access, &format!("/apikeys/{id}")).await;
    expect(&shown, StatusCode::OK, None);
    assert!(shown.body.get("key").is_none());
    assert_eq!(shown.body["name"], "exporter");
    let cli = cli_json(&server, &["apikey", "show", &id]).await;
    assert_eq!(cli, shown.body);

    for bad in [
        json!({ "name": "x" }),
        json!({ "name": "x", "scope": "a", "prefix": "NO" }),
        json!({ "name": "x", "scope": "a", "meta": [1] }),
        json!({ "name": "x", "scope": "a", "unknown": 1 }),
        json!({ "name": "x", "scope": "a", "owner": "nobody" }),
        json!({ "name": "x", "scope": "tessera:admin" }),
        json!({ "name": "x", "scope": "reports:write", "owner": owner_id }),
        json!({ "name": "x", "scope": "a", "rate_limit": "1/99999999999" }),
    ] {
        let refused = post(&server, &access, "/apikeys", bad.clone()).await;
        assert!(
            refused.status == StatusCode::BAD_REQUEST || refused.status == StatusCode::NOT_FOUND,
            "{bad}: {}",
            refused.body
        );
    }
    for n in 0..4 {
        let made = post(
            &server,
            &access,
            "/apikeys",
            json!({ "name": format!("k{n}"), "scope": "a" }),
        )
        .await;
        expect(&made, StatusCode::CREATED, None);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let page = get(
            &server,
            &access,
            &format!("/apikeys?limit=2&cursor={cursor}"),
        )
        .await;
        expect(&page, StatusCode::OK, None);
        for item in page.body["items"].as_array().unwrap() {
            assert!(item.get("key").is_none());
            assert!(seen.insert(item["id"].as_str().unwrap().to_string()));
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "every key once, nothing stored by a refusal");

    let rotated = post(
        &server,
        &access,
        &format!("/apikeys/{id}/rotate"),
        json!({ "overlap_secs": 30 }),
    )
    .await;
    expect(&rotated, StatusCode::OK, None);
    assert_eq!(rotated.body["rotated_from"], id.as_str());
    assert_ne!(rotated.body["key"], key.as_str());
    let revoked = post(
        &server,
        &access,
        &format!("/apikeys/{id}/revoke"),
        json!({}),
    )
    .await;
    expect(&revoked, StatusCode::OK, None);
    assert!(revoked.body["revoked_at"].is_i64());
    let again = post(
        &server,
        &access,
        &format!("/apikeys/{id}/revoke"),
        json!({}),
    )
    .await;
    expect(&again, StatusCode::CONFLICT, Some("conflict"));
    let missing = get(&server, &access, "/apikeys/key_nope").await;
    expect(&missing, StatusCode::NOT_FOUND, Some("not_found"));

    let kinds: Vec<String> = audit_table(&server)
        .await
        .into_iter()
        .map(|r| r.kind)
        .collect();
    for kind in ["apikey.created", "apikey.rotated", "apikey.revoked"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let listed = audit_table(&server).await;
    assert!(
        listed
            .iter()
            .all(|r| !r.detail.to_string().contains(&key[4..])),
        "the key is not in the audit log"
    );
}

crate::both_backends!(
    api_keys_are_managed_through_the_api,
    no_token_is_401_and_a_token_without_the_scope_is_403,
    clients_made_through_the_api_are_what_the_cli_sees,
    a_rotated_secret_replaces_the_old_one_at_once,
    users_made_through_the_api_are_what_the_cli_sees,
    a_revoked_grant_takes_its_refresh_token_along,
    a_withdrawn_consent_is_asked_for_again,
    ending_sessions_signs_the_user_out_everywhere,
    dynamic_registrations_are_audited,
    self_registered_clients_never_get_admin_access,
    keys_rotate_through_the_api,
    the_audit_log_records_sign_ins_tokens_and_admin_calls,
    pagination_walks_25_users_in_pages_of_10,
    cli_audit_list_prints_json_lines,
    old_audit_events_are_pruned_by_the_upkeep,
);
