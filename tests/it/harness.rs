//! Test harness: start Tessera on port 0 against a fresh database.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use tessera::AppState;
use tessera::clock::{Clock, FixedClock, SystemClock};
use tessera::config::Config;
use tessera::domain::Client;
use tessera::oauth::client::{self, ClientRegistration};
use tessera::state;
use tessera::store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_url() -> Option<String> {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Runs each named `async fn(Backend)` as two tests, `sqlite::NAME` and
/// `postgres::NAME`; the latter is skipped without TESSERA_TEST_POSTGRES_URL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::harness::postgres_url().is_none() {
                        eprintln!("skipped: TESSERA_TEST_POSTGRES_URL is not set");
                        return;
                    }
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A fresh, empty database: a temporary SQLite file, or a new schema in
/// the test PostgreSQL database. Removed when dropped (SQLite).
pub struct TestDatabase {
    pub url: String,
    dir: Option<PathBuf>,
}

impl TestDatabase {
    /// A database the test manages itself (nothing is removed on drop).
    pub fn at(url: String) -> Self {
        Self { url, dir: None }
    }

    pub async fn new(backend: Backend) -> Self {
        let id = random_id();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("tessera-test-{id}"));
                std::fs::create_dir_all(&dir).unwrap();
                Self {
                    url: format!("sqlite://{}/tessera.db", dir.display()),
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = postgres_url().expect("TESSERA_TEST_POSTGRES_URL");
                let schema = format!("tessera_test_{id}");
                let pool = sqlx::PgPool::connect(&base)
                    .await
                    .expect("connect to TESSERA_TEST_POSTGRES_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                Self {
                    url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                    dir: None,
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn random_id() -> String {
    let bytes: [u8; 8] = tessera::crypto::random_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fixed 32-byte key-encryption key for tests, base64.
pub fn test_master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}

pub struct TestServer {
    pub base: String,
    pub state: AppState,
    pub clock: Arc<FixedClock>,
    pub db: Arc<TestDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let db = Arc::new(TestDatabase::new(backend).await);
        Self::start_on(db, Arc::new(FixedClock::new(SystemClock.now())), configure).await
    }

    /// Another instance on the same database (and clock), as behind a load
    /// balancer.
    pub async fn start_on(
        db: Arc<TestDatabase>,
        clock: Arc<FixedClock>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config {
            issuer: base.clone(),
            database_url: db.url.clone(),
            master_key: Some(test_master_key()),
            ..Config::default()
        };
        config.cache.refresh_interval_ms = 200;
        // Tests rotate keys and prune by calling `AppState` directly, at
        // clock times they choose; keep the schedule out of their way.
        config.keys.check_interval_secs = 86_400;
        configure(&mut config);
        config.validate().unwrap();
        let store = store::connect(&config.database_url).await.unwrap();
        let master = state::load_master_key(&config).unwrap();
        let state = AppState::new(config, store, clock.clone(), master)
            .await
            .unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let serving = state.clone();
        let handle = tokio::spawn(async move {
            tessera::serve(listener, serving, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            base,
            state,
            clock,
            db,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers a client straight into the store; returns it and its secret.
    pub async fn register(&self, registration: ClientRegistration) -> (Client, Option<String>) {
        let (client, secret) = client::register(registration, self.clock.now()).unwrap();
        self.state.store.insert_client(&client).await.unwrap();
        (client, secret)
    }

    /// A confidential machine client with the given scopes.
    pub async fn machine_client(&self, scope: &str) -> (String, String) {
        let (client, secret) = self
            .register(ClientRegistration {
                client_name: "machine".into(),
                scope: Some(scope.into()),
                ..Default::default()
            })
            .await;
        (client.client_id, secret.unwrap())
    }

    /// Runs the `tessera` binary against this server's database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        cli_on(&self.db.url, args, None)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn cli_on(database_url: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_DATABASE_URL", database_url)
        .env("TESSERA_MASTER_KEY", test_master_key())
        .env_remove("TESSERA_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // A command that refuses its arguments exits without reading its
        // input: the pipe may already be closed, which is not a failure.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn http() -> reqwest::Client {
    tessera::outbound::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Polls `check` until it holds or 15 s pass: for changes another process
/// makes that a server picks up asynchronously (not for expiry).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// GETs `path` and reads the answer as JSON; panics on a transport error or
/// a body that is not that JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(server: &TestServer, path: &str) -> T {
    http()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies a JWT as a resource server would: JWKS fetched over HTTP, key
/// found by `kid`, signature, `iss`, `aud` and `exp` checked.
pub async fn verify_with_jwks(
    server: &TestServer,
    token: &str,
    audience: &str,
) -> serde_json::Value {
    let jwks: jsonwebtoken::jwk::JwkSet = get_json(server, "/jwks").await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.expect("kid in header");
    let jwk = jwks.find(&kid).expect("kid published in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[&server.base]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .unwrap()
        .claims
}
