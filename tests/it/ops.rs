//! Operating Tessera (issue 8 points 3, 5, 6, 7; issue 7 points 11 and 12):
//! health and readiness probes, Prometheus metrics, JSON logs, trusted
//! proxies, an issuer with a path, unreadable signing keys and start-up
//! failures. Some tests run the real binary, as an operator would.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, TokenResponse,
};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, SET_COOKIE};
use serde_json::{Value, json};
use tessera::clock::{Clock, SystemClock};
use tessera::config::{Config, parse_network};
use tessera::domain::User;
use tessera::jose::rotation::{KeyChanges, Trigger};
use tessera::jose::{KeyState, MasterKey, SigningAlg, keys};
use tessera::oauth::client::{self, ClientRegistration};
use tessera::store::{self, SharedStore};

use crate::browser::{AuthRequest, Browser, PASSWORD, REDIRECT, Rp, add_user, rp, web_app};
use crate::harness::{Backend, TestDatabase, TestServer, eventually, http, random_id};
use crate::introspection::kid_of;

// ---------------------------------------------------------------------------
// Helpers.

async fn get_json(url: &str) -> (StatusCode, HeaderMap, Value) {
    let response = http().get(url).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

/// Runs one SQL statement on the database at `url`, behind the server's back.
async fn execute(url: &str, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// A browser whose requests come through two proxies (10.1.2.3, then this
/// test's loopback peer) that say they are from `client_ip`.
fn behind_proxy(server: &TestServer, client_ip: &str) -> Browser {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(&format!("{client_ip}, 10.1.2.3")).unwrap(),
    );
    Browser::with_headers(&server.base, headers)
}

/// The sum of the samples of `name` whose labels include all of `labels`,
/// in Prometheus text format; `None` when there is no such sample.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

/// Makes a key sealed under another key-encryption key the current ES256
/// key, as an instance or command with the wrong key would; its kid.
async fn plant_unreadable_es256_key(store: &SharedStore) -> String {
    let foreign = MasterKey::from_bytes(&[7u8; 32]).unwrap();
    let now = SystemClock.now();
    let mut record = keys::generate(SigningAlg::ES256, &foreign, now).unwrap();
    record.state = KeyState::Current;
    record.activated_at = Some(now);
    let kid = record.kid.clone();
    store
        .update_signing_keys(&move |stored| {
            let update = stored
                .iter()
                .filter(|k| k.alg == SigningAlg::ES256 && k.state == KeyState::Current)
                .cloned()
                .map(|mut k| {
                    k.state = KeyState::Retired;
                    k.retired_at = Some(now);
                    k
                })
                .collect();
            Ok(KeyChanges {
                insert: vec![record.clone()],
                update,
                ..KeyChanges::default()
            })
        })
        .await
        .unwrap();
    kid
}

/// Undoes [`plant_unreadable_es256_key`]: the unreadable key is deleted and
/// `previous` signs again.
async fn remove_unreadable_key(store: &SharedStore, unreadable: &str, previous: &str) {
    let (unreadable, previous) = (unreadable.to_string(), previous.to_string());
    store
        .update_signing_keys(&move |stored| {
            let update = stored
                .iter()
                .filter(|k| k.kid == previous)
                .cloned()
                .map(|mut k| {
                    k.state = KeyState::Current;
                    k.retired_at = None;
                    k
                })
                .collect();
            Ok(KeyChanges {
                update,
                delete: vec![unreadable.clone()],
                ..KeyChanges::default()
            })
        })
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// In-process servers.

async fn health_and_readiness_follow_the_database(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, headers, body) = get_json(&server.url("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(body, json!({"status": "ok"}));
    let (status, headers, body) = get_json(&server.url("/readyz")).await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &json!({"status": "ready"}))
    );
    assert_eq!(headers[CACHE_CONTROL], "no-store");

    // The database stops answering the readiness query.
    execute(&server.db.url, "DROP TABLE change_counters").await;
    let (status, headers, body) = get_json(&server.url("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(
        body,
        json!({"status": "not_ready", "reason": "database unavailable"})
    );
    // The process itself is fine.
    let (status, _, _) = get_json(&server.url("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// 7.2 / 8.6: failed sign-ins lock the address they came from. Behind a
/// trusted proxy that is the forwarded address, so a guesser locks only
/// itself; from any other peer the header is ignored (or anyone could
/// pick the address they are throttled as).
async fn forwarded_for_counts_only_behind_a_trusted_proxy(backend: Backend) {
    for trusted in [true, false] {
        let server = TestServer::start_with(backend, |c| {
            c.login.failure_delay_ms = 0;
            // An address may fail 4 x 2 = 8 times; an account twice.
            c.login.max_failures = 2;
            if trusted {
                // The proxy in front (this test's loopback peer) and the
                // one before it (10.1.2.3 in the header).
                c.proxy.trusted = vec![
                    parse_network("127.0.0.0/8").unwrap(),
                    parse_network("10.0.0.0/8").unwrap(),
                ];
            }
        })
        .await;
        add_user(&server, "alice").await;
        let app = rp(&server, web_app()).await;

        let guesser = behind_proxy(&server, "203.0.113.9");
        let page = guesser.authorize(&AuthRequest::new(&app)).await;
        let mut statuses = Vec::new();
        for i in 0..8 {
            let r = guesser.login(&page, &format!("guess{i}"), "wrong").await;
            statuses.push(r.status);
        }
        assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
        assert!(statuses[..7].iter().all(|s| *s == StatusCode::UNAUTHORIZED));

        let alice = behind_proxy(&server, "198.51.100.7");
        let page = alice.authorize(&AuthRequest::new(&app)).await;
        let r = alice.login(&page, "alice", PASSWORD).await;
        if trusted {
            assert!(r.is_consent(), "another address signs in: {}", r.body);
        } else {
            assert_eq!(
                r.status,
                StatusCode::TOO_MANY_REQUESTS,
                "the proxy's own address was locked: {}",
                r.body
            );
        }
        server.stop().await;
    }
}

/// 8.6: an issuer with a path is served under that path: discovery, every
/// endpoint, every page link and form, the session cookie; a relying
/// party that knows only the issuer signs a person in.
async fn an_issuer_with_a_path_serves_everything_under_it(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.issuer = format!("{}/auth", c.issuer);
        c.login.failure_delay_ms = 0;
    })
    .await;
    let issuer = server.url("/auth");
    for document in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, _, metadata) = get_json(&format!("{issuer}{document}")).await;
        assert_eq!(status, StatusCode::OK, "{document}");
        assert_eq!(metadata["issuer"], issuer.as_str());
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
        let (status, _, _) = get_json(&server.url(document)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{document} outside the path");
    }
    // RFC 8414 §3.1: the well-known path with the issuer's path appended.
    let (status, _, metadata) =
        get_json(&server.url("/.well-known/oauth-authorization-server/auth")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metadata["issuer"], issuer.as_str());
    // Probes answer at the root (for the orchestrator) and under the path.
    for probe in ["/healthz", "/readyz", "/auth/healthz", "/auth/readyz"] {
        let (status, _, _) = get_json(&server.url(probe)).await;
        assert_eq!(status, StatusCode::OK, "{probe}");
    }

    let sub = add_user(&server, "alice").await;
    let app = rp(&server, web_app()).await;
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http())
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.id.clone()),
        app.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        url.as_str().starts_with(&format!("{issuer}/authorize?")),
        "{url}"
    );

    let browser = Browser::new(&server);
    let login = browser.follow(browser.get(url.as_str()).await).await;
    assert!(login.is_login(), "{}", login.body);
    assert!(
        login.action().starts_with("/auth/login?"),
        "{}",
        login.action()
    );
    assert!(
        login
            .body
            .contains("<link rel=\"stylesheet\" href=\"/auth/static/tessera.css\">"),
        "{}",
        login.body
    );
    let css = browser.get("/auth/static/tessera.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header(CONTENT_TYPE).starts_with("text/css"));

    let signed_in = browser.submit_login(&login, "alice", PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert!(
        signed_in
            .location()
            .unwrap()
            .starts_with("/auth/authorize?")
    );
    let session_cookie = signed_in
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("tessera_session="))
        .expect("a session cookie");
    assert!(session_cookie.contains("Path=/auth"), "{session_cookie}");
    let consent = browser.follow(signed_in).await;
    assert!(consent.is_consent(), "{}", consent.body);
    assert!(consent.action().starts_with("/auth/authorize?"));
    let params = browser.decide(&consent, "allow").await.callback();
    assert_eq!(params["state"], *csrf_state.secret());
    assert_eq!(params["iss"], issuer);

    // The crate checks `iss` against the path issuer and the signature
    // against the JWKS it found under the path.
    let response = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap();
    let id_token = response.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.subject().as_str(), sub);

    // The logout confirmation posts back under the path too.
    let confirm = browser.get("/auth/logout").await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert_eq!(confirm.action(), "/auth/logout");
    server.stop().await;
}

/// The key rotation counter, read from a metrics listener in this process
/// (the recorder is the process's, shared by every server in it).
async fn key_rotations_are_counted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(tessera::http::metrics::serve(
        listener,
        Config::default().http,
        || {},
        std::future::pending(),
    ));
    let scrape = || async {
        http()
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = metric(
        &scrape().await,
        "tessera_key_rotations_total",
        &[("trigger", "manual")],
    )
    .unwrap_or(0.0);
    let changes = server.state.rotate_keys(Trigger::Manual).await.unwrap();
    assert!(!changes.is_empty());
    let after = metric(
        &scrape().await,
        "tessera_key_rotations_total",
        &[("trigger", "manual")],
    )
    .unwrap_or(0.0);
    assert!(after > before, "{before} -> {after}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// The binary.

/// A `tessera serve` process; killed when dropped.
struct Serving {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Serving {
    fn start(database_url: &str, config: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .arg("serve")
            .env_remove("TESSERA_CONFIG")
            .env_remove("RUST_LOG")
            .env("TESSERA_DATABASE_URL", database_url)
            .env("TESSERA_MASTER_KEY", crate::harness::test_master_key())
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = config {
            command.arg("--config").arg(path);
        }
        let mut child = command.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stdout.take().unwrap());
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The first log line that `matches`, waiting for it up to 60 s.
    async fn wait_for_line(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| matches(l)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tessera exited ({status}) before logging {what}: {}",
                    self.stderr.lock().unwrap()
                );
            }
            assert!(Instant::now() < deadline, "no log line for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-ops-{}", random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
}

async fn register(store: &SharedStore, registration: ClientRegistration) -> Rp {
    let (client, secret) = client::register(registration, SystemClock.now()).unwrap();
    store.insert_client(&client).await.unwrap();
    Rp {
        id: client.client_id,
        secret,
    }
}

async fn client_credentials_token(base: &str, rp: &Rp) -> String {
    let response = http()
        .post(format!("{base}/token"))
        .basic_auth(&rp.id, rp.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// 8.3, 8.5, 7.11 and 7.12 on the real binary: JSON log lines carrying
/// the request id (and a trusted proxy's id as its own field), the probes,
/// the metrics listener with the named metrics after a token request and
/// a sign-in, and a key that cannot be opened: reported once, by /readyz
/// and a gauge, while the last good keys keep signing, until it is gone.
async fn the_binary_logs_json_and_reports_health_and_metrics(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let dir = TempDir::new();
    let config = dir.file(
        "tessera.toml",
        "[cache]\nrefresh_interval_ms = 200\n[keys]\ncheck_interval_secs = 3600\n\
         [login]\nfailure_delay_ms = 0\n",
    );
    let mut serving = Serving::start(
        &db.url,
        Some(&config),
        &[
            ("TESSERA_LOG_FORMAT", "json"),
            ("TESSERA_METRICS_LISTEN", "127.0.0.1:0"),
            ("TESSERA_TRUSTED_PROXIES", "127.0.0.1"),
            ("RUST_LOG", "info,tower_http=debug"),
        ],
    );
    let address = |line: &str| {
        json_line(line)["fields"]["address"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let listening = serving
        .wait_for_line("the main listener", |l| l.contains("tessera is listening"))
        .await;
    let base = format!("http://{}", address(&listening));
    let metrics_line = serving
        .wait_for_line("the metrics listener", |l| l.contains("serving metrics"))
        .await;
    let metrics_url = format!("http://{}/metrics", address(&metrics_line));
    let scrape = || async {
        let response = http().get(&metrics_url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        response.text().await.unwrap()
    };

    // Probes.
    let (status, _, body) = get_json(&format!("{base}/healthz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, _, body) = get_json(&format!("{base}/readyz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));

    // Request ids: ours in the header and on every line of the request;
    // the (trusted) proxy's as a separate field, only when it is short.
    let mut ids = Vec::new();
    for sent in ["proxy-trace-1", &"x".repeat(65)] {
        let response = http()
            .get(format!("{base}/healthz"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_ne!(id, sent);
        ids.push(id);
    }
    for (id, proxy_id) in ids.iter().zip([Some("proxy-trace-1"), None]) {
        let id = id.clone();
        serving
            .wait_for_line("the request's lines", |l| l.contains(&id))
            .await;
        let lines: Vec<Value> = serving
            .lines()
            .iter()
            .map(|l| json_line(l))
            .filter(|l| l["span"]["id"] == id.as_str())
            .collect();
        assert!(!lines.is_empty());
        for line in &lines {
            assert_eq!(line["span"]["name"], "request", "{line}");
            assert_eq!(line["span"]["path"], "/healthz", "{line}");
            assert_eq!(
                line["span"]["proxy_request_id"].as_str(),
                proxy_id,
                "{line}"
            );
        }
    }

    // A token request and a sign-in, then the metrics they leave.
    let store = store::connect(&db.url).await.unwrap();
    let machine = register(
        &store,
        ClientRegistration {
            client_name: "machine".into(),
            scope: Some("read".into()),
            ..Default::default()
        },
    )
    .await;
    let es256_machine = register(
        &store,
        ClientRegistration {
            client_name: "machine es256".into(),
            scope: Some("read".into()),
            access_token_signed_response_alg: Some(SigningAlg::ES256),
            ..Default::default()
        },
    )
    .await;
    let web = register(&store, web_app()).await;
    let now = SystemClock.now();
    store
        .insert_user(&User {
            sub: random_id(),
            username: "alice".into(),
            password_hash: tessera::auth::password::hash_password(PASSWORD.into())
                .await
                .unwrap(),
            email: None,
            name: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    client_credentials_token(&base, &machine).await;
    let es256_kid = kid_of(&client_credentials_token(&base, &es256_machine).await);
    let browser = Browser::at(&base);
    let request = AuthRequest::new(&web);
    let login = browser.authorize(&request).await;
    let wrong = browser.login(&login, "alice", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let code = browser.code(&request, "alice").await;
    let response = http()
        .post(format!("{base}/token"))
        .basic_auth(&web.id, web.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", request.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // An API key checked twice: once valid, once unknown.
    let store_ref = &*store;
    let key = tessera::service::api_keys::create(
        store_ref,
        store_ref,
        store_ref,
        &SystemClock,
        &tessera::service::audit::LogAuditSink,
        &tessera::service::audit::Actor::Cli,
        tessera::service::api_keys::NewApiKey {
            name: "metrics".into(),
            scope: "read".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for presented in [key.key.as_str(), "tsr_unknown"] {
        let response = http()
            .post(format!("{base}/apikeys/verify"))
            .basic_auth(&machine.id, machine.secret.as_deref())
            .json(&serde_json::json!({ "key": presented }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    let text = scrape().await;
    let at_least_one = |name: &str, labels: &[(&str, &str)]| {
        let value = metric(&text, name, labels);
        assert!(
            value.is_some_and(|v| v >= 1.0),
            "{name} {labels:?} = {value:?} in:\n{text}"
        );
    };
    at_least_one(
        "tessera_http_requests_total",
        &[("method", "POST"), ("route", "/token"), ("status", "200")],
    );
    at_least_one(
        "tessera_http_requests_total",
        &[("route", "/authorize"), ("status", "303")],
    );
    at_least_one(
        "tessera_http_request_duration_seconds_count",
        &[("route", "/token"), ("status", "200")],
    );
    at_least_one(
        "tessera_http_request_duration_seconds_bucket",
        &[("route", "/token"), ("le", "+Inf")],
    );
    at_least_one(
        "tessera_tokens_issued_total",
        &[
            ("grant_type", "client_credentials"),
            ("token", "access_token"),
            ("alg", "RS256"),
        ],
    );
    at_least_one(
        "tessera_tokens_issued_total",
        &[("grant_type", "client_credentials"), ("alg", "ES256")],
    );
    at_least_one(
        "tessera_tokens_issued_total",
        &[("grant_type", "authorization_code"), ("token", "id_token")],
    );
    at_least_one("tessera_logins_total", &[("outcome", "success")]);
    at_least_one("tessera_api_key_verifications_total", &[("code", "VALID")]);
    at_least_one(
        "tessera_api_key_verifications_total",
        &[("code", "NOT_FOUND")],
    );
    at_least_one("tessera_logins_total", &[("outcome", "bad_credentials")]);
    at_least_one("tessera_signing_keys_active", &[("alg", "RS256")]);
    at_least_one("tessera_signing_keys_active", &[("alg", "ES256")]);
    assert_eq!(
        metric(&text, "tessera_signing_keys_unreadable", &[]),
        Some(0.0)
    );
    // The pool gauges are read at the scrape: this instance has served
    // requests, so it holds at least one connection, never more than its
    // limit (8 on SQLite, 16 on PostgreSQL).
    let pool_max = metric(&text, "tessera_db_pool_max_connections", &[]);
    let expected_max = match backend {
        Backend::Sqlite => 8.0,
        Backend::Postgres => 16.0,
    };
    assert_eq!(pool_max, Some(expected_max), "{text}");
    let in_use = metric(&text, "tessera_db_pool_connections", &[("state", "in_use")]);
    let idle = metric(&text, "tessera_db_pool_connections", &[("state", "idle")]);
    match (in_use, idle) {
        (Some(in_use), Some(idle)) => {
            assert!(in_use >= 0.0 && idle >= 0.0, "{text}");
            assert!(in_use + idle >= 1.0, "no connection open: {text}");
            assert!(in_use + idle <= expected_max, "{text}");
        }
        other => panic!("pool gauges missing ({other:?}) in:\n{text}"),
    }
    // Raw paths never become labels.
    assert!(!text.contains("interaction="), "{text}");

    // 7.11: a key this instance cannot open.
    let unreadable = plant_unreadable_es256_key(&store).await;
    let readyz = format!("{base}/readyz");
    eventually("readyz reports the unreadable key", || async {
        get_json(&readyz).await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (_, _, body) = get_json(&readyz).await;
    assert_eq!(body["status"], "not_ready");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.starts_with("signing keys unreadable"), "{reason}");
    assert!(reason.contains(&unreadable), "{reason}");
    assert_eq!(
        metric(&scrape().await, "tessera_signing_keys_unreadable", &[]),
        Some(1.0)
    );
    // The last good keys still sign.
    assert_eq!(
        kid_of(&client_credentials_token(&base, &es256_machine).await),
        es256_kid
    );
    // Logged once, not on every poll of the change counters.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let reports = serving
        .lines()
        .iter()
        .filter(|l| l.contains("stored signing keys cannot be loaded"))
        .count();
    assert_eq!(reports, 1, "{:#?}", serving.lines());

    // Fixed: ready again.
    remove_unreadable_key(&store, &unreadable, &es256_kid).await;
    eventually("readyz recovers", || async {
        get_json(&readyz).await.0 == StatusCode::OK
    })
    .await;
    assert_eq!(
        metric(&scrape().await, "tessera_signing_keys_unreadable", &[]),
        Some(0.0)
    );

    // Every line is one JSON object.
    for line in serving.lines() {
        let line = json_line(&line);
        assert!(line["timestamp"].is_string() && line["level"].is_string());
    }
    drop(serving);
}

/// Text stays the default format, and a client that is not a trusted
/// proxy cannot put its own request id into the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_are_the_default_and_ignore_an_untrusted_request_id() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let mut serving = Serving::start(&db.url, None, &[("RUST_LOG", "info,tower_http=debug")]);
    let listening = serving
        .wait_for_line("the main listener", |l| l.contains("tessera is listening"))
        .await;
    assert!(!listening.starts_with('{'), "{listening}");
    assert!(
        !listening.contains('\u{1b}'),
        "no colours into a pipe: {listening}"
    );
    let address = listening
        .split_whitespace()
        .find_map(|word| word.strip_prefix("address="))
        .expect("the address field");
    let response = http()
        .get(format!("http://{address}/healthz"))
        .header("x-request-id", "client-trace-7")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    serving
        .wait_for_line("the request's lines", |l| l.contains(&id))
        .await;
    let lines = serving.lines();
    assert!(
        !lines.iter().any(|l| l.contains("client-trace-7")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("proxy_request_id")));
}

/// Runs `tessera serve` that must fail to start: its exit code and stderr.
fn serve_must_fail(database_url: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA_DATABASE_URL", database_url)
        .env("TESSERA_MASTER_KEY", crate::harness::test_master_key())
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tessera serve with {env:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// 8.7: what stops `tessera serve` from starting (a database it cannot
/// reach, a bad setting, keys its key-encryption key cannot open) exits 2
/// with one line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_that_cannot_start_exits_2_with_one_line() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    // Keys sealed under the test key-encryption key.
    {
        let mut config = Config {
            database_url: db.url.clone(),
            master_key: Some(crate::harness::test_master_key()),
            ..Config::default()
        };
        config.validate().unwrap();
        let store = store::connect(&db.url).await.unwrap();
        let master = tessera::state::load_master_key(&config).unwrap();
        tessera::state::run_rotation(
            &store,
            &master,
            &config,
            SystemClock.now(),
            Trigger::Scheduled,
        )
        .await
        .unwrap();
    }
    let other_master_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([9u8; 32])
    };
    let unreachable = "postgres://tessera@127.0.0.1:1/tessera";
    // What is wrong, the database URL, the environment.
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("an unreachable database", unreachable, vec![]),
        ("an unknown database scheme", "mysql://localhost/x", vec![]),
        (
            "a bad log format",
            &db.url,
            vec![("TESSERA_LOG_FORMAT", "xml")],
        ),
        (
            "a bad trusted proxy",
            &db.url,
            vec![("TESSERA_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")],
        ),
        (
            "a bad metrics address",
            &db.url,
            vec![("TESSERA_METRICS_LISTEN", "nowhere")],
        ),
        (
            "an issuer path that is a pattern",
            &db.url,
            vec![("TESSERA_ISSUER", "https://example.com/{tenant}")],
        ),
        (
            "a malformed key-encryption key",
            &db.url,
            vec![("TESSERA_MASTER_KEY", "c2hvcnQ=")],
        ),
        (
            "another deployment's key-encryption key",
            &db.url,
            vec![("TESSERA_MASTER_KEY", other_master_key.as_str())],
        ),
    ];
    for (what, url, env) in cases {
        let url = url.to_string();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (code, stderr) = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            serve_must_fail(&url, &env)
        })
        .await
        .unwrap();
        assert_eq!(code, Some(2), "{what}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr:?}");
        assert!(stderr.starts_with("tessera: "), "{what}: {stderr:?}");
    }
}

crate::both_backends!(
    health_and_readiness_follow_the_database,
    forwarded_for_counts_only_behind_a_trusted_proxy,
    an_issuer_with_a_path_serves_everything_under_it,
    key_rotations_are_counted,
    the_binary_logs_json_and_reports_health_and_metrics,
);
