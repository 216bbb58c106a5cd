//! Issue 8: a real `tessera serve` process at debug log level runs every
//! flow; no password, secret, code, token or cookie it handled may appear
//! in what it logged.

use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{AuthRequest, Browser, PASSWORD, REDIRECT, Rp};
use crate::harness::{Backend, TestDatabase, cli_on, eventually, http, test_master_key};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The value of the `name=` cookie a response set.
fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}

fn json_of(output: std::process::Output) -> Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &TestDatabase, log: std::path::PathBuf) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env("TESSERA_DATABASE_URL", &db.url)
        .env("TESSERA_MASTER_KEY", test_master_key())
        .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA_ISSUER", &base)
        .env("RUST_LOG", "debug")
        .env_remove("TESSERA_CONFIG")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    Server { child, base }
}

async fn no_secret_reaches_the_logs(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let migrate = cli_on(&db.url, &["migrate"], None);
    assert!(migrate.status.success(), "{migrate:?}");
    let added = cli_on(
        &db.url,
        &["user", "add", "alice", "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(added.status.success(), "{added:?}");
    let web = json_of(cli_on(
        &db.url,
        &[
            "client",
            "add",
            "--name",
            "web",
            "--redirect-uri",
            REDIRECT,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid profile email offline_access",
        ],
        None,
    ));
    let machine = json_of(cli_on(
        &db.url,
        &["client", "add", "--name", "machine", "--scope", "read"],
        None,
    ));
    let device = json_of(cli_on(
        &db.url,
        &[
            "client",
            "add",
            "--name",
            "tv",
            "--public",
            "--grant-type",
            DEVICE_GRANT,
            "--scope",
            "openid",
        ],
        None,
    ));
    let device_client_id = device["client_id"].as_str().unwrap().to_string();
    let app = Rp {
        id: web["client_id"].as_str().unwrap().to_string(),
        secret: Some(web["client_secret"].as_str().unwrap().to_string()),
    };
    let (machine_id, machine_secret) = (
        machine["client_id"].as_str().unwrap().to_string(),
        machine["client_secret"].as_str().unwrap().to_string(),
    );
    let dir = std::env::temp_dir().join(format!("tessera-log-{}", crate::harness::random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = serve(&db, dir.join("server.log"));
    let base = server.base.clone();
    eventually("the server answers", || async {
        http()
            .get(format!("{base}/jwks"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;

    let mut secrets: Vec<String> = vec![
        PASSWORD.into(),
        "a wrong password, guessed".into(),
        app.secret.clone().unwrap(),
        machine_secret.clone(),
    ];
    // Sign in (once wrong, then right), consent, code.
    let browser = Browser::at(&base);
    let req = AuthRequest::new(&app);
    let page = browser.authorize(&req).await;
    assert!(page.is_login(), "{}", page.body);
    secrets.push(page.csrf());
    secrets.extend(set_cookie(&page.headers, "tessera_browser"));
    let failed = browser
        .submit_login(&page, "alice", "a wrong password, guessed")
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let signed_in = browser.submit_login(&page, "alice", PASSWORD).await;
    secrets.extend(set_cookie(&signed_in.headers, "tessera_session"));
    let consent = browser.follow(signed_in).await;
    assert!(consent.is_consent(), "{}", consent.body);
    let code = browser.decide(&consent, "allow").await.callback()["code"].clone();
    secrets.push(code.clone());
    secrets.push(req.verifier.clone());

    // Tokens, refresh, userinfo, introspection, revocation.
    let post =
        |form: Vec<(&'static str, String)>, id: String, secret: String, path: &'static str| {
            let base = base.clone();
            async move {
                let response = http()
                    .post(format!("{base}{path}"))
                    .basic_auth(id, Some(secret))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let text = response.text().await.unwrap();
                (
                    status,
                    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                )
            }
        };
    let web_secret = app.secret.clone().unwrap();
    let (status, tokens) = post(
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", req.verifier.clone()),
        ],
        app.id.clone(),
        web_secret.clone(),
        "/token",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    for name in ["access_token", "refresh_token", "id_token"] {
        secrets.push(tokens[name].as_str().unwrap().to_string());
    }
    let (status, refreshed) = post(
        vec![
            ("grant_type", "refresh_token".into()),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().unwrap().into(),
            ),
        ],
        app.id.clone(),
        web_secret.clone(),
        "/token",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    for name in ["access_token", "refresh_token", "id_token"] {
        secrets.push(refreshed[name].as_str().unwrap().to_string());
    }
    let access = refreshed["access_token"].as_str().unwrap().to_string();
    let userinfo = http()
        .get(format!("{base}/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let (status, _) = post(
        vec![("token", access.clone())],
        app.id.clone(),
        web_secret.clone(),
        "/introspect",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        vec![("token", refreshed["refresh_token"].as_str().unwrap().into())],
        app.id.clone(),
        web_secret.clone(),
        "/revoke",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A replayed (already rotated) refresh token, a wrong client secret.
    let (status, _) = post(
        vec![
            ("grant_type", "refresh_token".into()),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().unwrap().into(),
            ),
        ],
        app.id.clone(),
        web_secret.clone(),
        "/token",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(
        vec![("grant_type", "client_credentials".into())],
        machine_id.clone(),
        "not-the-secret".into(),
        "/token",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, machine_token) = post(
        vec![("grant_type", "client_credentials".into())],
        machine_id.clone(),
        machine_secret.clone(),
        "/token",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    secrets.push(machine_token["access_token"].as_str().unwrap().to_string());

    // Issue 9: a resource with a secret (made by the CLI), a token for it
    // (with the resource named), introspected by the resource as itself,
    // once with a wrong secret.
    const API: &str = "https://api.example.com";
    let resource = json_of(cli_on(
        &db.url,
        &[
            "resource",
            "add",
            "--identifier",
            API,
            "--name",
            "API",
            "--scope",
            "read",
            "--with-secret",
        ],
        None,
    ));
    let resource_secret = resource["secret"].as_str().unwrap().to_string();
    secrets.push(resource_secret.clone());
    let for_api = || {
        post(
            vec![
                ("grant_type", "client_credentials".into()),
                ("resource", API.into()),
            ],
            machine_id.clone(),
            machine_secret.clone(),
            "/token",
        )
    };
    eventually("the server knows the resource", || async {
        for_api().await.0 == StatusCode::OK
    })
    .await;
    let (_, for_api) = for_api().await;
    let api_token = for_api["access_token"].as_str().unwrap().to_string();
    secrets.push(api_token.clone());
    let (status, body) = post(
        vec![("token", api_token.clone())],
        API.into(),
        resource_secret.clone(),
        "/introspect",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true);
    let (status, _) = post(
        vec![("token", api_token)],
        API.into(),
        "not-the-resource-secret".into(),
        "/introspect",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An API key: created by the CLI, verified by the resource, exchanged
    // for a token, introspected, and presented once tampered with.
    let created = json_of(cli_on(
        &db.url,
        &["apikey", "create", "--name", "export", "--scope", "read"],
        None,
    ));
    let api_key = created["key"].as_str().unwrap().to_string();
    secrets.push(api_key.clone());
    // The part after the prefix, on its own, must not appear either.
    secrets.push(api_key["tsr_".len()..].to_string());
    let verified = http()
        .post(format!("{base}/apikeys/verify"))
        .basic_auth(API, Some(&resource_secret))
        .json(&serde_json::json!({ "key": api_key, "scopes": ["read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
    assert_eq!(verified.json::<Value>().await.unwrap()["code"], "VALID");
    let exchanged = http()
        .post(format!("{base}/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                "subject_token_type",
                "urn:tessera:params:oauth:token-type:api-key",
            ),
            ("subject_token", api_key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(exchanged.status(), StatusCode::OK);
    let exchanged: Value = exchanged.json().await.unwrap();
    secrets.push(exchanged["access_token"].as_str().unwrap().to_string());
    let (status, body) = post(
        vec![("token", api_key.clone())],
        machine_id.clone(),
        machine_secret.clone(),
        "/introspect",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true);
    let last = if api_key.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &api_key[..api_key.len() - 1]);
    secrets.push(tampered.clone());
    let refused = http()
        .post(format!("{base}/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                "subject_token_type",
                "urn:tessera:params:oauth:token-type:api-key",
            ),
            ("subject_token", tampered.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // The device flow (RFC 8628): the device code, the user code (as shown
    // and as stored), the code form's CSRF token and the tokens.
    let started: Value = http()
        .post(format!("{base}/device_authorization"))
        .form(&[
            ("client_id", device_client_id.as_str()),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device_code = started["device_code"].as_str().unwrap().to_string();
    let user_code = started["user_code"].as_str().unwrap().to_string();
    secrets.extend([
        device_code.clone(),
        user_code.clone(),
        user_code.replace('-', ""),
    ]);
    let poll = || {
        http()
            .post(format!("{base}/token"))
            .form(&[
                ("client_id", device_client_id.as_str()),
                ("grant_type", DEVICE_GRANT),
                ("device_code", device_code.as_str()),
            ])
            .send()
    };
    assert_eq!(poll().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let page = browser
        .get(started["verification_uri_complete"].as_str().unwrap())
        .await;
    secrets.push(page.csrf());
    let entered = browser
        .post(
            &page.action(),
            &[("csrf_token", &page.csrf()), ("user_code", &user_code)],
        )
        .await;
    let consent = browser.follow(entered).await;
    let done = browser.decide(&consent, "allow").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let device_tokens: Value = poll().await.unwrap().json().await.unwrap();
    for name in ["access_token", "id_token"] {
        secrets.push(device_tokens[name].as_str().unwrap().to_string());
    }

    drop(server);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(
        log.contains("DEBUG"),
        "the server logged at debug level: {log}"
    );
    let audit = audit_table_text(&db).await;
    assert!(
        audit.contains("signin.failed"),
        "the audit table recorded the flows: {audit}"
    );
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !log.contains(secret.as_str()),
            "a secret of {} characters appears in the log",
            secret.len()
        );
        assert!(
            !audit.contains(secret.as_str()),
            "a secret of {} characters appears in the audit table",
            secret.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every audit row, all columns, as one text.
async fn audit_table_text(db: &TestDatabase) -> String {
    const SQL: &str = "SELECT kind, actor, COALESCE(subject, ''), COALESCE(client_id, ''), \
                       COALESCE(address, ''), COALESCE(request_id, ''), CAST(detail AS TEXT) \
                       FROM audit_events";
    type Row = (String, String, String, String, String, String, String);
    let rows: Vec<Row> = if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    };
    rows.iter()
        .map(|r| format!("{} {} {} {} {} {} {}\n", r.0, r.1, r.2, r.3, r.4, r.5, r.6))
        .collect()
}

crate::both_backends!(no_secret_reaches_the_logs);
