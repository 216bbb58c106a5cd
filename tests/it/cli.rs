//! `tessera client …` against the database of a running server: what the
//! operator sees, what is stored, and what the server makes of it.

use std::collections::BTreeSet;
use std::process::Output;

use reqwest::StatusCode;
use serde_json::Value;
use tessera::clock::Clock;
use tessera::crypto::hash_secret;
use tessera::oauth::client::ClientRegistration;
use tessera::service::ServiceError;
use tessera::service::audit::{Actor, AuditEvent, AuditKind};
use tessera::service::clients;

use crate::harness::{Backend, TestServer, cli_on, eventually, verify_with_jwks};
use crate::introspection::{introspect, kid_of, request_token, start, token};
use crate::users::RecordedEvents;

/// Runs the `tessera` binary on the server's database, off the async
/// workers (the server under test runs on them).
pub(crate) async fn run_cli(server: &TestServer, args: &[&str]) -> Output {
    let url = server.db.url.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_on(&url, &args, None)
    })
    .await
    .unwrap()
}

/// Runs a command that must succeed and print JSON.
pub(crate) async fn cli_json(server: &TestServer, args: &[&str]) -> Value {
    let out = run_cli(server, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stderr}"))
}

/// Runs a command that must fail with exit code 2 and a one-line reason.
pub(crate) async fn cli_refuses(server: &TestServer, args: &[&str]) -> String {
    let out = run_cli(server, args).await;
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(
        stderr.trim().len() > "tessera:".len(),
        "{args:?}: no reason given"
    );
    stderr
}

fn scopes(value: &Value) -> BTreeSet<&str> {
    value.as_str().unwrap().split(' ').collect()
}

async fn client_add_prints_the_registration_and_stores_only_a_hash(backend: Backend) {
    let server = start(backend).await;
    let info = cli_json(
        &server,
        &[
            "client",
            "add",
            "--name",
            "Billing job",
            "--scope",
            "read billing:write",
        ],
    )
    .await;
    let client_id = info["client_id"].as_str().unwrap().to_string();
    let secret = info["client_secret"].as_str().unwrap().to_string();
    assert!(!client_id.is_empty());
    assert!(secret.len() >= 43, "a 256-bit secret: {secret}");
    assert_eq!(info["client_secret_expires_at"], 0);
    assert_eq!(info["client_name"], "Billing job");
    assert_eq!(
        info["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        scopes(&info["scope"]),
        BTreeSet::from(["read", "billing:write"])
    );
    assert!(info["client_id_issued_at"].is_i64());

    // Stored: the SHA-256 of the secret, never the secret.
    let stored = server
        .state
        .store
        .client(&client_id)
        .await
        .unwrap()
        .unwrap();
    let hash = stored.secret_hash.clone().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    assert_eq!(hash, hash_secret(&secret));
    assert_ne!(hash, secret);
    let metadata = serde_json::to_string(&stored.metadata).unwrap();
    assert!(!metadata.contains(&secret), "{metadata}");

    // The running server accepts the new client at once.
    let (status, body) = request_token(&server, &client_id, &secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        scopes(&body["scope"]),
        BTreeSet::from(["read", "billing:write"])
    );
    let claims = verify_with_jwks(
        &server,
        body["access_token"].as_str().unwrap(),
        &server.base,
    )
    .await;
    assert_eq!(claims["client_id"], client_id.as_str());
    let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "the default");

    let (wrong, _) = request_token(&server, &client_id, &hash).await;
    assert_eq!(
        wrong,
        StatusCode::UNAUTHORIZED,
        "the hash is not a password"
    );
}

async fn client_list_and_show_print_no_secrets(backend: Backend) {
    let server = start(backend).await;
    let mut registered = Vec::new();
    for name in ["first", "second"] {
        let info = cli_json(
            &server,
            &["client", "add", "--name", name, "--scope", "read"],
        )
        .await;
        registered.push((
            info["client_id"].as_str().unwrap().to_string(),
            info["client_secret"].as_str().unwrap().to_string(),
        ));
    }
    let hashes: Vec<String> = registered.iter().map(|(_, s)| hash_secret(s)).collect();

    let list = run_cli(&server, &["client", "list"]).await;
    assert_eq!(list.status.code(), Some(0));
    let text = String::from_utf8(list.stdout).unwrap();
    let listed: Vec<Value> = serde_json::from_str(&text).unwrap();
    let ids: BTreeSet<&str> = listed
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        registered
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<BTreeSet<_>>()
    );
    for entry in &listed {
        assert!(entry.get("client_secret").is_none(), "{entry}");
        assert!(entry.get("client_secret_expires_at").is_none(), "{entry}");
        assert!(entry["client_name"].is_string());
        assert_eq!(
            entry["grant_types"],
            serde_json::json!(["client_credentials"])
        );
    }

    let (id, secret) = &registered[1];
    let shown = cli_json(&server, &["client", "show", "--", id]).await;
    assert_eq!(shown["client_id"], id.as_str());
    assert_eq!(shown["client_name"], "second");
    assert_eq!(shown["scope"], "read");
    assert!(shown.get("client_secret").is_none(), "{shown}");
    let shown_text = shown.to_string();

    for (secret, hash) in registered.iter().map(|(_, s)| s).zip(&hashes) {
        for output in [&text, &shown_text] {
            assert!(!output.contains(secret.as_str()), "a secret was printed");
            assert!(!output.contains(hash.as_str()), "a secret hash was printed");
        }
    }
    // Listing did not disturb the secret.
    token(&server, id, secret).await;
}

async fn client_delete_locks_the_client_out_of_a_running_server(backend: Backend) {
    let server = start(backend).await;
    let info = cli_json(
        &server,
        &["client", "add", "--name", "doomed", "--scope", "read"],
    )
    .await;
    let id = info["client_id"].as_str().unwrap().to_string();
    let secret = info["client_secret"].as_str().unwrap().to_string();
    let (keeper, keeper_secret) = server.machine_client("read").await;
    // The server now holds the client in its cache.
    let issued = token(&server, &id, &secret).await;

    let deleted = cli_json(&server, &["client", "delete", "--", &id]).await;
    assert_eq!(deleted["deleted"], id.as_str());
    assert!(server.state.store.client(&id).await.unwrap().is_none());

    eventually("the running server forgets the deleted client", || {
        let (server, id, secret) = (&server, &id, &secret);
        async move {
            let (status, body) = request_token(server, id, secret).await;
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(body["error"], "invalid_client");
                true
            } else {
                false
            }
        }
    })
    .await;
    // Nor can it introspect any more; other clients are unaffected.
    let (status, _) = request_token(&server, &keeper, &keeper_secret).await;
    assert_eq!(status, StatusCode::OK);
    let response = crate::introspection::post_form(
        &server,
        "/introspect",
        Some((&id, &secret)),
        &[("token", &issued)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    cli_refuses(&server, &["client", "show", "--", &id]).await;
    cli_refuses(&server, &["client", "delete", "--", &id]).await;
}

async fn bad_input_exits_2_with_a_one_line_reason(backend: Backend) {
    let server = start(backend).await;
    let refused: &[&[&str]] = &[
        &["client", "add", "--name", "x", "--grant-type", "implicit"],
        &["client", "add", "--name", "x", "--grant-type", "password"],
        &[
            "client",
            "add",
            "--name",
            "x",
            "--public",
            "--grant-type",
            "client_credentials",
        ],
        // A public client with no redirect URI could only be a machine client.
        &["client", "add", "--name", "x", "--public"],
        &[
            "client",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        &["client", "add", "--name", "x", "--scope", "bad\"scope"],
        &["client", "add", "--name", "  "],
        &["client", "show", "no-such-client"],
        &["client", "delete", "no-such-client"],
    ];
    for args in refused {
        let stderr = cli_refuses(&server, args).await;
        assert!(stderr.starts_with("tessera: "), "{args:?}: {stderr}");
    }
    let stderr = cli_refuses(
        &server,
        &["client", "add", "--name", "x", "--grant-type", "implicit"],
    )
    .await;
    assert!(stderr.contains("implicit"), "names the culprit: {stderr}");
    assert!(
        server.state.store.clients().await.unwrap().is_empty(),
        "nothing was stored"
    );
}

async fn unsupported_signing_algorithm_exits_2(backend: Backend) {
    let server = start(backend).await;
    for flag in [
        "--access-token-signed-response-alg",
        "--id-token-signed-response-alg",
    ] {
        for alg in ["HS256", "none", "es256"] {
            let out = run_cli(&server, &["client", "add", "--name", "x", flag, alg]).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {alg}: {stderr}");
            assert!(out.stdout.is_empty());
            assert!(stderr.contains(alg), "{stderr}");
        }
    }
    assert!(server.state.store.clients().await.unwrap().is_empty());
}

async fn es256_client_gets_es256_tokens(backend: Backend) {
    let server = start(backend).await;
    let info = cli_json(
        &server,
        &[
            "client",
            "add",
            "--name",
            "ec",
            "--scope",
            "read",
            "--access-token-signed-response-alg",
            "ES256",
        ],
    )
    .await;
    assert_eq!(info["access_token_signed_response_alg"], "ES256");
    let id = info["client_id"].as_str().unwrap();
    let secret = info["client_secret"].as_str().unwrap();
    let access_token = token(&server, id, secret).await;
    let header = jsonwebtoken::decode_header(&access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(
        Some(kid_of(&access_token).as_str()),
        server
            .state
            .keys()
            .current_kid(tessera::jose::SigningAlg::ES256)
    );
    let claims = verify_with_jwks(&server, &access_token, &server.base).await;
    assert_eq!(claims["client_id"], id);
    assert_eq!(
        introspect(&server, id, secret, &access_token).await["active"],
        true
    );
    let shown = cli_json(&server, &["client", "show", "--", id]).await;
    assert_eq!(shown["access_token_signed_response_alg"], "ES256");
}

async fn public_client_has_no_secret(backend: Backend) {
    let server = start(backend).await;
    let info = cli_json(
        &server,
        &[
            "client",
            "add",
            "--name",
            "spa",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
        ],
    )
    .await;
    assert!(info.get("client_secret").is_none(), "{info}");
    assert!(info.get("client_secret_expires_at").is_none(), "{info}");
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert_eq!(
        info["redirect_uris"],
        serde_json::json!(["http://127.0.0.1/cb"])
    );
    assert_eq!(
        info["grant_types"],
        serde_json::json!(["authorization_code"])
    );
    let id = info["client_id"].as_str().unwrap();
    let stored = server.state.store.client(id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, None);
    assert!(stored.is_public());
}

/// The service behind `tessera client`: each change is audited once, with
/// the actor and the client's id and never its secret; a refused one is
/// not, and stores nothing.
async fn client_service_audits_each_change_and_nothing_else(backend: Backend) {
    let server = start(backend).await;
    let store = server.state.store.as_ref();
    let clock = server.clock.as_ref();
    let audit = RecordedEvents::default();
    let event =
        |kind, client_id: &str| AuditEvent::client(kind, &Actor::Cli, client_id, clock.now());

    let registration = ClientRegistration {
        client_name: "svc".into(),
        scope: Some("read".into()),
        ..Default::default()
    };
    let registered = clients::register(store, clock, &audit, &Actor::Cli, registration)
        .await
        .unwrap();
    let id = registered.client.client_id.clone();
    let secret = registered.secret.clone().unwrap();
    assert_eq!(audit.take(), [event(AuditKind::ClientRegistered, &id)]);
    let info = registered.information_response();
    assert_eq!(info["client_id"], id.as_str());
    assert_eq!(info["client_secret"], secret.as_str());
    let shown = clients::show(store, &id).await.unwrap();
    assert_eq!(
        shown.secret_hash.as_deref(),
        Some(hash_secret(&secret).as_str())
    );
    assert_eq!(shown.created_at, clock.now());
    token(&server, &id, &secret).await;

    let refused = ClientRegistration {
        client_name: "x".into(),
        grant_types: vec!["implicit".into()],
        ..Default::default()
    };
    let result = clients::register(store, clock, &audit, &Actor::Cli, refused).await;
    assert!(
        matches!(&result, Err(ServiceError::Invalid(m)) if m.contains("implicit")),
        "{result:?}"
    );
    assert!(audit.take().is_empty());
    let ids: Vec<String> = clients::list(store)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, [id.as_str()]);

    server.clock.advance(10);
    clients::delete(store, clock, &audit, &Actor::Cli, &id)
        .await
        .unwrap();
    assert_eq!(audit.take(), [event(AuditKind::ClientDeleted, &id)]);
    for result in [
        clients::show(store, &id).await.map(|_| ()),
        clients::delete(store, clock, &audit, &Actor::Cli, &id).await,
    ] {
        assert!(
            matches!(&result, Err(ServiceError::NotFound(m)) if m.contains(&id)),
            "{result:?}"
        );
    }
    assert!(audit.take().is_empty());
}

mod arguments {
    use tessera::oauth::client::{self, ClientRegistration};

    use crate::harness::{Backend, random_id};
    use crate::introspection::start;

    fn machine() -> ClientRegistration {
        ClientRegistration {
            client_name: "machine".into(),
            ..Default::default()
        }
    }

    /// `tessera client show ID` as the operator types it, for a stored
    /// client whose id begins with '-' (one generated id in 64 does).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cli_accepts_a_client_id_starting_with_a_hyphen() {
        let server = start(Backend::Sqlite).await;
        let (mut stored, _) = client::register(machine(), 0).unwrap();
        stored.client_id = format!("-{}", &stored.client_id[1..]);
        server.state.store.insert_client(&stored).await.unwrap();
        let shown = super::cli_json(&server, &["client", "show", &stored.client_id]).await;
        assert_eq!(shown["client_id"], stored.client_id.as_str());
        let deleted = super::cli_json(&server, &["client", "delete", &stored.client_id]).await;
        assert_eq!(deleted["deleted"], stored.client_id.as_str());
    }

    #[test]
    fn client_ids_never_start_with_a_hyphen() {
        let ids: Vec<String> = (0..2000)
            .map(|_| client::register(machine(), 0).unwrap().0.client_id)
            .collect();
        let hyphenated: Vec<&String> = ids.iter().filter(|id| id.starts_with('-')).collect();
        assert!(
            hyphenated.is_empty(),
            "{} of 2000, e.g. {:?}",
            hyphenated.len(),
            hyphenated.first()
        );
    }

    #[test]
    fn rejected_arguments_get_a_one_line_reason() {
        let dir = std::env::temp_dir().join(format!("tessera-cli-{}", random_id()));
        let url = format!("sqlite://{}/tessera.db", dir.display());
        for args in [
            &[
                "client",
                "add",
                "--name",
                "x",
                "--access-token-signed-response-alg",
                "HS256",
            ][..],
            &["client", "add"],
            &["client", "frobnicate"],
        ] {
            let out = crate::harness::cli_on(&url, args, None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

crate::both_backends!(
    client_add_prints_the_registration_and_stores_only_a_hash,
    client_list_and_show_print_no_secrets,
    client_delete_locks_the_client_out_of_a_running_server,
    bad_input_exits_2_with_a_one_line_reason,
    unsupported_signing_algorithm_exits_2,
    es256_client_gets_es256_tokens,
    public_client_has_no_secret,
    client_service_audits_each_change_and_nothing_else,
);
