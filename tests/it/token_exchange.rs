//! Token exchange between services (RFC 8693, issue 11.2): a person's
//! access token, exchanged by the API it was meant for (which owns that
//! resource) for a token to call another API, with and without delegation
//! (`act`), and every refusal of the deny-by-default policy.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::oauth::client::ClientRegistration;
use tessera::store::{AuditQuery, AuditRecord};

use crate::browser::{self, ALL_SCOPES, AuthRequest, Browser, Rp, add_user, rp, token_request};
use crate::harness::{Backend, TestServer, verify_with_jwks};
use crate::introspection::{introspect, payload_of, token};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const BILLING: &str = "https://billing.example.com";
const LEDGER: &str = "https://ledger.example.com";
const REPORTS: &str = "https://reports.example.com";
/// An API none of alice's scopes is for.
const MAIL: &str = "https://mail.example.com";

/// A confidential service client that may exchange tokens (and get its own
/// client-credentials tokens to act with).
async fn service(server: &TestServer, name: &str, scope: &str) -> Rp {
    rp(
        server,
        ClientRegistration {
            client_name: name.into(),
            grant_types: vec![TOKEN_EXCHANGE.into(), "client_credentials".into()],
            scope: Some(scope.into()),
            ..Default::default()
        },
    )
    .await
}

/// Registers a resource through the CLI, as an operator would; its JSON.
fn add_resource(server: &TestServer, identifier: &str, scope: &str, owner: Option<&str>) -> Value {
    let mut args = vec![
        "resource",
        "add",
        "--identifier",
        identifier,
        "--name",
        identifier,
        "--scope",
        scope,
    ];
    if let Some(owner) = owner {
        args.extend(["--owner-client", owner]);
    }
    let out = server.cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The world most tests use: the billing API (owned by the billing
/// service), the ledger and reports APIs behind it, a web app, and alice's
/// access token for billing obtained through the browser flow.
struct World {
    server: TestServer,
    web: Rp,
    billing: Rp,
    ledger: Rp,
    alice: String,
    /// Alice's token for BILLING, from the web app's code flow.
    alice_token: String,
}

async fn world(backend: Backend) -> World {
    let server = browser::start(backend).await;
    // Each API defines the scopes it needs, its own and those it passes on
    // to the APIs behind it.
    let billing = service(
        &server,
        "billing service",
        "billing:read ledger:read reports:read",
    )
    .await;
    let ledger = service(&server, "ledger service", "ledger:read reports:read").await;
    add_resource(
        &server,
        BILLING,
        "billing:read ledger:read reports:read",
        Some(&billing.id),
    );
    add_resource(
        &server,
        LEDGER,
        "ledger:read reports:read",
        Some(&ledger.id),
    );
    add_resource(&server, REPORTS, "reports:read", None);
    add_resource(&server, MAIL, "mail:send", None);
    server.state.resources.invalidate();
    let alice = add_user(&server, "alice").await;
    let web = rp(
        &server,
        ClientRegistration {
            scope: Some(format!(
                "{ALL_SCOPES} billing:read ledger:read reports:read"
            )),
            ..browser::web_app()
        },
    )
    .await;
    let req = AuthRequest::new(&web)
        .set(
            "scope",
            "openid offline_access billing:read ledger:read reports:read",
        )
        .add("resource", BILLING);
    let code = Browser::new(&server).code(&req, "alice").await;
    let body = browser::tokens(&server, &web, &req, &code).await;
    let alice_token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(payload_of(&alice_token)["aud"], BILLING);
    World {
        server,
        web,
        billing,
        ledger,
        alice,
        alice_token,
    }
}

async fn exchange(server: &TestServer, client: &Rp, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", TOKEN_EXCHANGE)];
    form.extend_from_slice(extra);
    token_request(server, client, &form).await
}

/// Exchanges `subject` for LEDGER (and more `extra`); must work.
async fn exchanged(
    server: &TestServer,
    client: &Rp,
    subject: &str,
    extra: &[(&str, &str)],
) -> Value {
    let mut form = vec![
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    form.extend_from_slice(extra);
    let (status, body) = exchange(server, client, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// `base` and then `extra`, as one form.
fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = base.to_vec();
    form.extend_from_slice(extra);
    form
}

fn assert_error((status, body): &(StatusCode, Value), code: &str) {
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], code, "{body}");
}

/// The `token.exchanged` events, newest first.
async fn exchange_events(server: &TestServer) -> Vec<AuditRecord> {
    server.state.audit.flush().await;
    server
        .state
        .store
        .audit_records(&AuditQuery {
            kinds: Some(vec!["token.exchanged".into()]),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// The billing API passes alice's token on to the ledger API: a token for
/// LEDGER, still alice's, narrowed to the ledger's scope, never outliving
/// hers; then with delegation, the chain of actors grows at each hop.
async fn an_api_exchanges_its_callers_token_to_call_another(backend: Backend) {
    let w = world(backend).await;
    let server = &w.server;
    let subject = payload_of(&w.alice_token);

    // Ten minutes after alice's token was issued, a fresh one-hour token
    // would outlive hers; the exchange must cap it (RFC 8693 §2.2.1).
    server.clock.advance(600);

    // Impersonation: no actor token.
    let body = exchanged(server, &w.billing, &w.alice_token, &[("resource", LEDGER)]).await;
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let ledger_token = body["access_token"].as_str().unwrap();
    // A resource server verifies it against the JWKS like any other.
    let claims = verify_with_jwks(server, ledger_token, LEDGER).await;
    assert_eq!(claims["sub"], w.alice.as_str());
    assert_eq!(claims["aud"], LEDGER);
    assert_eq!(claims["client_id"], w.billing.id.as_str());
    // Only what both alice's token and the billing service hold (not
    // `openid`, which the service is not registered for), and what the
    // ledger defines.
    assert_eq!(claims["scope"], "ledger:read reports:read");
    assert_eq!(body["scope"], "ledger:read reports:read");
    assert!(claims.get("act").is_none(), "{claims}");
    assert_eq!(claims["exp"], subject["exp"]);
    assert_eq!(claims["auth_time"], subject["auth_time"]);
    assert_eq!(body["expires_in"], 3600 - 600, "{body}");

    // `audience` names a registered resource as well as `resource` does.
    let body = exchanged(
        server,
        &w.billing,
        &w.alice_token,
        &[("audience", LEDGER), ("scope", "ledger:read")],
    )
    .await;
    assert_eq!(
        payload_of(body["access_token"].as_str().unwrap())["aud"],
        LEDGER
    );

    // Delegation: the billing service acts, with its own token.
    let billing_own = token(server, &w.billing.id, w.billing.secret.as_deref().unwrap()).await;
    let body = exchanged(
        server,
        &w.billing,
        &w.alice_token,
        &[
            ("resource", LEDGER),
            ("actor_token", &billing_own),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .await;
    let delegated = body["access_token"].as_str().unwrap().to_string();
    let claims = payload_of(&delegated);
    assert_eq!(claims["sub"], w.alice.as_str());
    assert_eq!(claims["act"], json!({ "sub": w.billing.id }));

    // The ledger owns LEDGER: it passes the delegated token on to reports,
    // acting itself; the earlier actor nests inside (RFC 8693 §4.1).
    let ledger_own = token(server, &w.ledger.id, w.ledger.secret.as_deref().unwrap()).await;
    let body = exchanged(
        server,
        &w.ledger,
        &delegated,
        &[
            ("resource", REPORTS),
            ("actor_token", &ledger_own),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .await;
    let reports_token = body["access_token"].as_str().unwrap().to_string();
    let claims = payload_of(&reports_token);
    assert_eq!(claims["aud"], REPORTS);
    assert_eq!(
        claims["act"],
        json!({ "sub": w.ledger.id, "act": { "sub": w.billing.id } })
    );
    assert_eq!(claims["scope"], "reports:read");
    // Introspection by the client it was issued to shows the chain.
    let answer = introspect(
        server,
        &w.ledger.id,
        w.ledger.secret.as_deref().unwrap(),
        &reports_token,
    )
    .await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["act"]["act"]["sub"], w.billing.id.as_str());

    // Each exchange is in the audit log, with who exchanged whose token.
    let events = exchange_events(server).await;
    assert_eq!(events.len(), 4, "{events:?}");
    let last = &events[0];
    assert_eq!(last.client_id.as_deref(), Some(w.ledger.id.as_str()));
    assert_eq!(last.actor, format!("client:{}", w.ledger.id));
    assert_eq!(last.subject.as_deref(), Some(w.alice.as_str()));
    assert_eq!(last.detail["subject_client_id"], w.billing.id.as_str());
    assert_eq!(last.detail["actor"], w.ledger.id.as_str());
    assert_eq!(last.detail["delegated"], true);
    assert_eq!(last.detail["resources"], json!([REPORTS]));
    assert!(!format!("{events:?}").contains(&reports_token));

    // Each delegated exchange adds an actor; a chain longer than eight is a
    // loop between services and is refused.
    let actor = [
        ("actor_token", billing_own.as_str()),
        ("actor_token_type", ACCESS_TOKEN_TYPE),
    ];
    let mut chained = delegated.clone();
    for depth in 2..=8 {
        let body = exchanged(server, &w.billing, &chained, &actor).await;
        chained = body["access_token"].as_str().unwrap().to_string();
        let claims = payload_of(&chained);
        let mut act = &claims["act"];
        let mut named = 0;
        while act.is_object() {
            named += 1;
            act = &act["act"];
        }
        assert_eq!(named, depth);
    }
    let mut form = vec![
        ("subject_token", chained.as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    form.extend_from_slice(&actor);
    assert_error(&exchange(server, &w.billing, &form).await, "invalid_grant");

    // The exchanged tokens hang on alice's grant: when she ends it, they
    // end with it.
    let grant_id = subject["grant_id"].as_str().unwrap();
    server
        .state
        .store
        .revoke_grant(grant_id, server.state.clock.now())
        .await
        .unwrap();
    let answer = introspect(
        server,
        &w.ledger.id,
        w.ledger.secret.as_deref().unwrap(),
        &reports_token,
    )
    .await;
    assert_eq!(answer, json!({ "active": false }));
    assert_error(
        &exchange(
            server,
            &w.billing,
            &[
                ("subject_token", &w.alice_token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
        .await,
        "invalid_grant",
    );
    w.server.stop().await;
}

/// Deny by default: every request the policy or the RFC refuses, and
/// nothing is issued for any of them.
async fn exchanges_outside_the_policy_are_refused(backend: Backend) {
    let w = world(backend).await;
    let server = &w.server;
    let subject = [
        ("subject_token", w.alice_token.as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];

    // The ledger service neither got alice's token nor owns BILLING.
    assert_error(
        &exchange(server, &w.ledger, &with(&subject, &[("resource", LEDGER)])).await,
        "invalid_grant",
    );
    // A client registered without the grant type.
    let outsider = rp(
        server,
        ClientRegistration {
            client_name: "outsider".into(),
            grant_types: vec!["client_credentials".into()],
            scope: Some("ledger:read".into()),
            ..Default::default()
        },
    )
    .await;
    assert_error(
        &exchange(server, &outsider, &with(&subject, &[])).await,
        "unauthorized_client",
    );
    // No credentials at all: an access token is no credential by itself.
    let anonymous = crate::introspection::post_form(
        server,
        "/token",
        None,
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &w.alice_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Scope widening: beyond the subject token (alice never granted
    // billing:write), or beyond the client (the billing service is not
    // registered for openid, which alice's token holds).
    for scope in ["billing:write", "openid", "ledger:read billing:write"] {
        assert_error(
            &exchange(server, &w.billing, &with(&subject, &[("scope", scope)])).await,
            "invalid_scope",
        );
    }

    // Targets must be registered; a resource defining none of the
    // subject's scopes gets no token.
    assert_error(
        &exchange(
            server,
            &w.billing,
            &with(&subject, &[("audience", "https://unknown.example.com")]),
        )
        .await,
        "invalid_target",
    );
    assert_error(
        &exchange(server, &w.billing, &with(&subject, &[("resource", MAIL)])).await,
        "invalid_scope",
    );

    // The actor token must be the exchanging client's own, and well formed.
    let ledger_own = token(server, &w.ledger.id, w.ledger.secret.as_deref().unwrap()).await;
    assert_error(
        &exchange(
            server,
            &w.billing,
            &with(
                &subject,
                &[
                    ("actor_token", ledger_own.as_str()),
                    ("actor_token_type", ACCESS_TOKEN_TYPE),
                ],
            ),
        )
        .await,
        "invalid_grant",
    );
    assert_error(
        &exchange(server, &w.billing, &with(&subject, &[("actor_token", "x")])).await,
        "invalid_request",
    );
    assert_error(
        &exchange(
            server,
            &w.billing,
            &with(&subject, &[("actor_token_type", ACCESS_TOKEN_TYPE)]),
        )
        .await,
        "invalid_request",
    );
    assert_error(
        &exchange(
            server,
            &w.billing,
            &with(
                &subject,
                &[(
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                )],
            ),
        )
        .await,
        "invalid_request",
    );
    assert_error(
        &exchange(
            server,
            &w.billing,
            &[
                ("subject_token", &w.alice_token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        )
        .await,
        "invalid_request",
    );

    // Not a token, a tampered one, and an expired one.
    // One character of the signature changed.
    let mut tampered = w.alice_token.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in ["not-a-token", tampered.as_str()] {
        assert_error(
            &exchange(
                server,
                &w.billing,
                &[
                    ("subject_token", bad),
                    ("subject_token_type", ACCESS_TOKEN_TYPE),
                ],
            )
            .await,
            "invalid_grant",
        );
    }
    server.clock.advance(3601);
    assert_error(
        &exchange(server, &w.billing, &with(&subject, &[])).await,
        "invalid_grant",
    );

    // Nothing was issued for any refusal.
    assert!(exchange_events(server).await.is_empty());
    w.server.stop().await;
}

/// A configured rule lets one more client exchange another's tokens; the
/// owner of a resource loses its right when its client is deleted.
async fn config_rules_and_owners_extend_and_end_the_policy(backend: Backend) {
    let w = world(backend).await;
    let gateway = service(&w.server, "gateway", "billing:read ledger:read").await;
    // A second instance on the same database, configured with the rule.
    let (gateway_id, web_id) = (gateway.id.clone(), w.web.id.clone());
    let issuer = w.server.base.clone();
    let ruled = TestServer::start_on(w.server.db.clone(), w.server.clock.clone(), |c| {
        c.issuer = issuer;
        c.tokens.exchange_rules = vec![tessera::config::ExchangeRule {
            client_id: gateway_id,
            subject_client_ids: vec![web_id],
        }];
    })
    .await;
    let form = [
        ("subject_token", w.alice_token.as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("resource", LEDGER),
    ];
    assert_error(&exchange(&w.server, &gateway, &form).await, "invalid_grant");
    let (status, body) = exchange(&ruled, &gateway, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        payload_of(body["access_token"].as_str().unwrap())["client_id"],
        gateway.id.as_str()
    );

    // The CLI shows the owner; deleting the owning client disowns BILLING.
    let shown = w.server.cli(&["resource", "show", BILLING]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["owner_client_id"], w.billing.id.as_str());
    let out = w.server.cli(&["client", "delete", &w.billing.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = w.server.cli(&["resource", "show", BILLING]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["owner_client_id"], Value::Null, "{shown}");
    // An owner must be a registered client.
    let out = w.server.cli(&[
        "resource",
        "add",
        "--identifier",
        "urn:example:orphan",
        "--name",
        "Orphan",
        "--owner-client",
        "no-such-client",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("owner_client_id"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ruled.stop().await;
    w.server.stop().await;
}

/// Twenty parallel exchanges of one token all succeed independently (an
/// exchange consumes nothing), each with its own `jti`.
async fn parallel_exchanges_are_independent(backend: Backend) {
    let w = world(backend).await;
    let server = &w.server;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (base, id, secret, subject) = (
            server.base.clone(),
            w.billing.id.clone(),
            w.billing.secret.clone().unwrap(),
            w.alice_token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let response = crate::harness::http()
                .post(format!("{base}/token"))
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", TOKEN_EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", ACCESS_TOKEN_TYPE),
                    ("resource", LEDGER),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            payload_of(body["access_token"].as_str().unwrap())["jti"].clone()
        }));
    }
    let mut jtis = Vec::new();
    for task in tasks {
        jtis.push(task.await.unwrap());
    }
    jtis.sort_by_key(|j| j.to_string());
    jtis.dedup();
    assert_eq!(jtis.len(), 20);
    w.server.stop().await;
}

crate::both_backends!(
    an_api_exchanges_its_callers_token_to_call_another,
    exchanges_outside_the_policy_are_refused,
    config_rules_and_owners_extend_and_end_the_policy,
    parallel_exchanges_are_independent,
);
