//! What the fuzz targets share: a server state over an in-memory SQLite
//! database with three registered clients, generated signing keys and a
//! fixed clock, built once per fuzzing process. Client ids are fixed so
//! that the seed inputs in `seeds/` can name them.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tessera::AppState;
use tessera::clock::FixedClock;
use tessera::config::Config;
use tessera::domain::{AuthorizationCode, Client, Grant, ScopeSet};
use tessera::jose::{MasterKey, SigningAlg};
use tessera::oauth::client::{self, ClientRegistration};
use tessera::store::sqlite::SqliteStore;
use tessera::store::{SharedStore, StoreError};
use tokio::runtime::Runtime;

pub const ISSUER: &str = "https://issuer.example";
pub const NOW: i64 = 1_750_000_000;

/// A confidential web application (client_secret_basic, https redirects).
pub const WEB_CLIENT: &str = "fuzz-web";
/// A public native application (PKCE required, loopback redirect).
pub const NATIVE_CLIENT: &str = "fuzz-native";
/// A machine client (client credentials only, no redirect URI).
pub const MACHINE_CLIENT: &str = "fuzz-machine";

/// Grants that access tokens may name: one live, one revoked.
pub const LIVE_GRANT: &str = "grant-live";
pub const REVOKED_GRANT: &str = "grant-revoked";
/// An access token `jti` on the revocation list.
pub const REVOKED_JTI: &str = "jti-revoked";
/// The `sub` of the ID token the authorize target offers as a valid hint.
pub const HINT_SUB: &str = "user-hinted";

pub struct Fixture {
    pub runtime: Runtime,
    pub state: AppState,
    pub clock: Arc<FixedClock>,
    pub web: Client,
    pub native: Client,
    pub machine: Client,
    /// A valid ID token (RS256, already expired, as a hint may be) for `HINT_SUB`.
    pub id_token_hint: String,
}

impl Fixture {
    /// The process-wide fixture; built on first use.
    pub fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| match Fixture::build() {
            Ok(f) => f,
            Err(e) => panic!("cannot build the fuzz fixture: {e}"),
        })
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A registered client by id.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        [&self.web, &self.native, &self.machine]
            .into_iter()
            .find(|c| c.client_id == client_id)
    }

    fn build() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let clock = Arc::new(FixedClock::new(NOW));
        let fixture = runtime.block_on(async {
            let store = memory_store().await.map_err(|e| e.to_string())?;
            let config = Config {
                issuer: ISSUER.into(),
                database_url: "sqlite::memory:".into(),
                ..Config::default()
            };
            let master = MasterKey::from_bytes(&[42u8; 32]).map_err(|e| e.to_string())?;
            let web = register(
                WEB_CLIENT,
                ClientRegistration {
                    client_name: "web".into(),
                    // Exactly one, so a request may omit it (RFC 6749 §3.1.2.3).
                    redirect_uris: vec!["https://app.example/cb".into()],
                    grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                    scope: Some("openid profile email offline_access read write".into()),
                    ..Default::default()
                },
            )?;
            let native = register(
                NATIVE_CLIENT,
                ClientRegistration {
                    client_name: "native".into(),
                    redirect_uris: vec![
                        "http://127.0.0.1/cb".into(),
                        "http://[::1]:8400/cb".into(),
                        "com.example.app:/oauth?from=app".into(),
                    ],
                    public: true,
                    scope: Some("openid read".into()),
                    ..Default::default()
                },
            )?;
            let machine = register(
                MACHINE_CLIENT,
                ClientRegistration {
                    client_name: "machine".into(),
                    scope: Some("read write".into()),
                    access_token_signed_response_alg: Some(SigningAlg::ES256),
                    ..Default::default()
                },
            )?;
            for c in [&web, &native, &machine] {
                store.insert_client(c).await.map_err(|e| e.to_string())?;
            }
            for (grant_id, revoked_at) in [(LIVE_GRANT, None), (REVOKED_GRANT, Some(NOW - 10))] {
                insert_grant(&store, grant_id, revoked_at)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            store
                .revoke_access_token(REVOKED_JTI, NOW + 86_400 * 365 * 100)
                .await
                .map_err(|e| e.to_string())?;
            let state = AppState::new(config, store, clock.clone(), master)
                .await
                .map_err(|e| e.to_string())?;
            let id_token_hint = state
                .keys()
                .sign(
                    SigningAlg::RS256,
                    "JWT",
                    &serde_json::json!({
                        "iss": ISSUER,
                        "sub": HINT_SUB,
                        "aud": WEB_CLIENT,
                        "iat": NOW - 7200,
                        "exp": NOW - 3600,
                    }),
                )
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((state, web, native, machine, id_token_hint))
        })?;
        let (state, web, native, machine, id_token_hint) = fixture;
        Ok(Self {
            runtime,
            state,
            clock,
            web,
            native,
            machine,
            id_token_hint,
        })
    }
}

/// A migrated in-memory SQLite database. sqlx gives every pool connection
/// the same shared in-memory database, which lives only while one of them
/// is open: one connection is kept for the life of the process so that
/// the pool's idle timeout can never drop the database mid-run.
async fn memory_store() -> Result<SharedStore, StoreError> {
    let store = SqliteStore::connect("sqlite::memory:").await?;
    let keep_alive = store.pool().acquire().await?;
    std::mem::forget(keep_alive);
    Ok(Arc::new(store))
}

fn register(client_id: &str, registration: ClientRegistration) -> Result<Client, String> {
    let (mut client, _secret) = client::register(registration, NOW).map_err(|e| e.to_string())?;
    client.client_id = client_id.into();
    Ok(client)
}

async fn insert_grant(
    store: &SharedStore,
    grant_id: &str,
    revoked_at: Option<i64>,
) -> Result<(), StoreError> {
    let grant = Grant {
        grant_id: grant_id.into(),
        client_id: WEB_CLIENT.into(),
        sub: "user-1".into(),
        scope: ScopeSet::parse("openid read").unwrap_or_default(),
        auth_time: NOW - 60,
        sid: None,
        created_at: NOW - 60,
        expires_at: NOW + 86_400,
        revoked_at,
        resources: vec![],
    };
    let code = AuthorizationCode {
        code_hash: format!("code-of-{grant_id}"),
        grant_id: grant_id.into(),
        client_id: WEB_CLIENT.into(),
        redirect_uri: String::new(),
        code_challenge: None,
        nonce: None,
        created_at: NOW - 60,
        expires_at: NOW - 1,
    };
    store.insert_grant_with_code(&grant, &code).await
}
