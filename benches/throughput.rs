//! Throughput figures for the hot paths, printed as a table:
//! `cargo bench --bench throughput`. Runs the real server in-process on a
//! temporary SQLite database and drives it over loopback HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use tessera::AppState;
use tessera::clock::{Clock, SystemClock};
use tessera::config::Config;
use tessera::jose::SigningAlg;
use tessera::oauth::client::{self, ClientRegistration};
use tessera::service::api_keys::{self, NewApiKey};
use tessera::service::audit::{Actor, LogAuditSink};
use tessera::{state, store};

const CONCURRENCY: usize = 32;
const DURATION: Duration = Duration::from_secs(5);

fn report(name: &str, count: u64, elapsed: Duration) {
    println!(
        "{name:<44} {:>10.0} /s   ({count} in {:.2} s)",
        count as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

/// Runs `make_request` from CONCURRENCY tasks for DURATION; every response
/// must have `expect` status.
async fn load<F, Fut>(name: &str, expect: u16, make_request: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = reqwest::Response> + Send,
{
    let make_request = Arc::new(make_request);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let f = make_request.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < DURATION {
                let r = f().await;
                assert_eq!(r.status().as_u16(), expect);
                let _ = r.bytes().await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    report(name, total, start.elapsed());
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config {
        issuer: base.clone(),
        database_url: format!("sqlite://{}/bench.db", dir.display()),
        master_key: Some(base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
        ..Config::default()
    };
    config.validate().unwrap();
    let store = store::connect(&config.database_url).await.unwrap();
    let master = state::load_master_key(&config).unwrap();
    let state = AppState::new(config, store, Arc::new(SystemClock), master)
        .await
        .unwrap();

    println!(
        "tessera throughput, {} cores, concurrency {CONCURRENCY}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let keys = state.keys();
    let claims = serde_json::json!({"iss": base, "sub": "bench", "exp": SystemClock.now() + 60});
    for alg in SigningAlg::ALL {
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(2) {
            keys.sign(alg, "at+jwt", &claims).unwrap();
            n += 1;
        }
        report(&format!("sign {alg} JWT (one core)"), n, start.elapsed());
    }

    let mut ids = Vec::new();
    for alg in SigningAlg::ALL {
        let (client, secret) = client::register(
            ClientRegistration {
                client_name: format!("bench-{alg}"),
                scope: Some("read".into()),
                access_token_signed_response_alg: Some(alg),
                ..Default::default()
            },
            SystemClock.now(),
        )
        .unwrap();
        state.store.insert_client(&client).await.unwrap();
        ids.push((alg, client.client_id, secret.unwrap()));
    }
    let serving = state.clone();
    tokio::spawn(async move {
        tessera::serve(listener, serving, std::future::pending())
            .await
            .unwrap();
    });
    let http = reqwest::Client::new();

    for (alg, id, secret) in ids.clone() {
        let (http, url) = (http.clone(), format!("{base}/token"));
        load(
            &format!("POST /token client_credentials {alg}"),
            200,
            move || {
                http.post(&url)
                    .basic_auth(&id, Some(&secret))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials&scope=read")
                    .send()
                    .map(|r| r.unwrap())
            },
        )
        .await;
    }

    let (_, id, secret) = ids[0].clone();
    let token: serde_json::Value = http
        .post(format!("{base}/token"))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = format!("token={}", token["access_token"].as_str().unwrap());
    {
        let (http, url) = (http.clone(), format!("{base}/introspect"));
        load("POST /introspect (active RS256 token)", 200, move || {
            http.post(&url)
                .basic_auth(&id, Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .map(|r| r.unwrap())
        })
        .await;
    }
    // Issue 12: API key verification, for a key without and with a rate
    // limit (the limit is far above what the run can reach, so every
    // answer is VALID and each use is counted in the database).
    for (what, rate_limit) in [
        ("no rate limit", None),
        ("rate-limited", Some("1000000000/3600")),
    ] {
        let store = &*state.store;
        let created = api_keys::create(
            store,
            store,
            store,
            &SystemClock,
            &LogAuditSink,
            &Actor::Cli,
            NewApiKey {
                name: format!("bench {what}"),
                scope: "read".into(),
                rate_limit: rate_limit.map(str::to_string),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let body = serde_json::json!({ "key": created.key, "scopes": ["read"] }).to_string();
        let (http, url) = (http.clone(), format!("{base}/apikeys/verify"));
        let (id, secret) = (ids[0].1.clone(), ids[0].2.clone());
        load(&format!("POST /apikeys/verify ({what})"), 200, move || {
            http.post(&url)
                .basic_auth(&id, Some(&secret))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .map(|r| r.unwrap())
        })
        .await;
    }
    let etag = http
        .get(format!("{base}/jwks"))
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    {
        let (http, url) = (http.clone(), format!("{base}/jwks"));
        load("GET /jwks", 200, move || {
            http.get(&url).send().map(|r| r.unwrap())
        })
        .await;
    }
    {
        let (http, url) = (http.clone(), format!("{base}/jwks"));
        load("GET /jwks with If-None-Match (304)", 304, move || {
            http.get(&url)
                .header("if-none-match", etag.clone())
                .send()
                .map(|r| r.unwrap())
        })
        .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

trait MapResult: std::future::Future + Sized {
    fn map<T, F: FnOnce(Self::Output) -> T>(self, f: F) -> impl std::future::Future<Output = T> {
        async move { f(self.await) }
    }
}
impl<F: std::future::Future> MapResult for F {}
