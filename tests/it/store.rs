//! Storage: interactions, corrupt rows, migration checksums, hashed session
//! ids and SQLite file modes, read back through the store traits and
//! straight from the tables.

use std::sync::Arc;

use tessera::clock::{Clock, SystemClock, UnixTime};
use tessera::crypto::{hash_secret, random_token};
use tessera::domain::{AuthorizationCode, Grant, Interaction, ScopeSet};
use tessera::jose::rotation::KeyChanges;
use tessera::jose::{KeyState, SigningAlg, SigningKeyRecord};
use tessera::store::{self, SharedStore, StoreError};

use reqwest::header::COOKIE;

use crate::both_backends;
use crate::browser::{self, AuthRequest, Browser};
use crate::harness::{Backend, TestDatabase, cli_on, http};

/// A second, plain connection to a test database, to read and damage the
/// tables behind the store's back.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn open(db: &TestDatabase) -> Self {
        if db.url.starts_with("sqlite:") {
            Raw::Sqlite(sqlx::SqlitePool::connect(&db.url).await.unwrap())
        } else {
            Raw::Postgres(sqlx::PgPool::connect(&db.url).await.unwrap())
        }
    }

    async fn execute(&self, sql: &'static str) -> u64 {
        let affected = match self {
            Raw::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        affected.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of every row, as text (NULL as `None`).
    async fn texts(&self, sql: &'static str) -> Result<Vec<Option<String>>, sqlx::Error> {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
    }

    async fn blobs(&self, sql: &'static str) -> Vec<Vec<u8>> {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn count(&self, sql: &'static str) -> i64 {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn close(self) {
        match self {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::Postgres(pool) => pool.close().await,
        }
    }
}

async fn fresh(backend: Backend) -> (TestDatabase, SharedStore) {
    let db = TestDatabase::new(backend).await;
    let store = store::connect(&db.url).await.unwrap();
    (db, store)
}

fn interaction(now: UnixTime, lifetime: i64) -> Interaction {
    Interaction {
        id: random_token(),
        client_id: "client-1".into(),
        request: r#"{"response_type":"code","state":"s"}"#.into(),
        browser_hash: hash_secret("browser cookie"),
        csrf_hash: hash_secret("csrf token"),
        sub: None,
        auth_time: None,
        amr: Vec::new(),
        acr: None,
        created_at: now,
        expires_at: now + lifetime,
    }
}

async fn interaction_is_read_back_until_it_expires(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let now = SystemClock.now();
    let pending = interaction(now, 600);
    store.insert_interaction(&pending).await.unwrap();

    assert_eq!(
        store.interaction(&pending.id, now).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        store.interaction(&pending.id, now + 599).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        store.interaction(&pending.id, now + 600).await.unwrap(),
        None
    );
    assert_eq!(store.interaction("no-such-id", now).await.unwrap(), None);
}

async fn interaction_records_who_signed_in(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let now = SystemClock.now();
    let pending = interaction(now, 600);
    store.insert_interaction(&pending).await.unwrap();
    let amr = vec!["pwd".to_string(), "otp".to_string()];

    let recorded = store
        .record_interaction_login(
            &pending.id,
            "sub-1",
            now + 5,
            &amr,
            Some("urn:acr:2"),
            now + 5,
        )
        .await
        .unwrap();
    assert!(recorded);
    let signed_in = store
        .interaction(&pending.id, now + 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        signed_in,
        Interaction {
            sub: Some("sub-1".into()),
            auth_time: Some(now + 5),
            amr: amr.clone(),
            acr: Some("urn:acr:2".into()),
            ..pending.clone()
        }
    );

    // Unknown or expired: nothing recorded.
    let unknown = store
        .record_interaction_login("no-such-id", "sub-1", now, &amr, None, now)
        .await
        .unwrap();
    assert!(!unknown);
    let expired = store
        .record_interaction_login(&pending.id, "sub-2", now + 600, &amr, None, now + 600)
        .await
        .unwrap();
    assert!(!expired);
    let still = store
        .interaction(&pending.id, now + 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.sub.as_deref(), Some("sub-1"));

    // A value that could not be read back as itself is refused.
    let spaced = vec!["pwd otp".to_string()];
    let refused = store
        .record_interaction_login(&pending.id, "sub-1", now, &spaced, None, now)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unstorable(_))),
        "{refused:?}"
    );
}

async fn racing_finishes_of_one_interaction_have_one_winner(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let now = SystemClock.now();
    let pending = interaction(now, 600);
    store.insert_interaction(&pending).await.unwrap();

    let id = Arc::new(pending.id.clone());
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move { store.finish_interaction(&id).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        if racer.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(store.interaction(&pending.id, now).await.unwrap(), None);
    assert!(!store.finish_interaction(&pending.id).await.unwrap());
}

async fn prune_drops_only_expired_interactions(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let now = SystemClock.now();
    let short = interaction(now, 60);
    let shorter = interaction(now, 30);
    let long = interaction(now, 600);
    for i in [&short, &shorter, &long] {
        store.insert_interaction(i).await.unwrap();
    }

    assert_eq!(store.prune_interactions(now + 60).await.unwrap(), 2);
    let raw = Raw::open(&db).await;
    assert_eq!(raw.count("SELECT COUNT(*) FROM interactions").await, 1);
    raw.close().await;
    assert_eq!(
        store.interaction(&long.id, now + 60).await.unwrap(),
        Some(long)
    );
    assert_eq!(store.prune_interactions(now + 60).await.unwrap(), 0);
}

async fn corrupt_rows_are_errors_not_defaults(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let now = SystemClock.now();
    let grant = Grant {
        grant_id: "grant-1".into(),
        client_id: "client-1".into(),
        sub: "sub-1".into(),
        scope: ScopeSet::parse("openid read").unwrap(),
        auth_time: now,
        sid: None,
        created_at: now,
        expires_at: now + 3600,
        revoked_at: None,
        resources: vec![],
    };
    let code = AuthorizationCode {
        code_hash: hash_secret("code"),
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: String::new(),
        code_challenge: None,
        nonce: None,
        created_at: now,
        expires_at: now + 60,
    };
    store.insert_grant_with_code(&grant, &code).await.unwrap();
    assert_eq!(store.grant("grant-1").await.unwrap(), Some(grant));
    let key = SigningKeyRecord {
        kid: "kid-1".into(),
        alg: SigningAlg::RS256,
        state: KeyState::Next,
        private_key: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: now,
        activated_at: None,
        retired_at: None,
    };
    store
        .update_signing_keys(&|_| {
            Ok(KeyChanges {
                insert: vec![key.clone()],
                ..KeyChanges::default()
            })
        })
        .await
        .unwrap();
    let (client, _) = tessera::oauth::client::register(
        tessera::oauth::client::ClientRegistration {
            client_name: "app".into(),
            ..Default::default()
        },
        now,
    )
    .unwrap();
    store.insert_client(&client).await.unwrap();

    let raw = Raw::open(&db).await;
    // A scope token may not hold a backslash (RFC 6749 §3.3).
    raw.execute("UPDATE grants SET scope = 'openid re\\ad' WHERE grant_id = 'grant-1'")
        .await;
    raw.execute("UPDATE signing_keys SET alg = 'HS256' WHERE kid = 'kid-1'")
        .await;
    raw.execute("UPDATE clients SET metadata = '{\"client_name\": 7}'")
        .await;
    raw.close().await;

    let grant = store.grant("grant-1").await;
    assert!(
        matches!(&grant, Err(StoreError::Corrupt(m)) if m.contains("grant-1")),
        "{grant:?}"
    );
    let keys = store.signing_keys().await;
    assert!(
        matches!(&keys, Err(StoreError::Corrupt(m)) if m.contains("HS256")),
        "{keys:?}"
    );
    let found = store.client(&client.client_id).await;
    assert!(matches!(found, Err(StoreError::Corrupt(_))), "{found:?}");
}

async fn an_edited_applied_migration_is_refused(backend: Backend) {
    let (db, store) = fresh(backend).await;
    drop(store);
    let raw = Raw::open(&db).await;
    let recorded = raw
        .texts("SELECT checksum FROM tessera_migrations ORDER BY version")
        .await
        .unwrap();
    assert!(
        recorded
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.len() == 64)),
        "{recorded:?}"
    );
    // As if 0001 had been edited after it was applied, and 0002 were new.
    raw.execute(
        "UPDATE tessera_migrations SET checksum = \
         '0000000000000000000000000000000000000000000000000000000000000000' WHERE version = 1",
    )
    .await;
    raw.execute("DELETE FROM tessera_migrations WHERE version = 2")
        .await;
    raw.execute("DROP TABLE interactions").await;

    let refused = store::connect(&db.url).await.map(|_| ());
    let file = match backend {
        Backend::Sqlite => "sqlite/0001_init.sql",
        Backend::Postgres => "postgres/0001_init.sql",
    };
    match &refused {
        Err(
            e @ StoreError::MigrationChanged {
                version: 1,
                file: f,
            },
        ) if *f == file => {
            assert!(e.to_string().contains(file), "{e}");
        }
        other => panic!("expected MigrationChanged for {file}, got {other:?}"),
    }
    // Nothing was applied: 0002 is neither recorded nor run.
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM tessera_migrations WHERE version = 2")
            .await,
        0
    );
    assert!(raw.texts("SELECT id FROM interactions").await.is_err());

    // The operator sees it from the CLI: exit 1, the file named on stderr.
    let out = cli_on(&db.url, &["migrate"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(file), "{stderr}");
    raw.close().await;
}

async fn checksums_are_recorded_for_databases_that_predate_them(backend: Backend) {
    let (db, store) = fresh(backend).await;
    drop(store);
    let raw = Raw::open(&db).await;
    let applied = raw.count("SELECT COUNT(*) FROM tessera_migrations").await;
    raw.execute("ALTER TABLE tessera_migrations DROP COLUMN checksum")
        .await;

    store::connect(&db.url).await.unwrap();
    let recorded = raw
        .texts("SELECT checksum FROM tessera_migrations ORDER BY version")
        .await
        .unwrap();
    assert_eq!(recorded.len() as i64, applied);
    assert!(
        recorded
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.len() == 64)),
        "{recorded:?}"
    );
    // And the next start accepts them.
    store::connect(&db.url).await.unwrap();
    raw.close().await;
}

async fn the_session_table_holds_no_raw_session_id(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let now = SystemClock.now();
    let id = random_token();
    let data = br#"{"data":{"sub":"sub-1"}}"#;
    assert!(
        store
            .create_session(&id, Some("sub-1"), None, data, now + 3600)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_session(&id, Some("sub-1"), None, data, now + 3600)
            .await
            .unwrap()
    );

    let raw = Raw::open(&db).await;
    let ids = raw.texts("SELECT id FROM sessions").await.unwrap();
    assert_eq!(ids, [Some(hash_secret(&id))]);
    for blob in raw.blobs("SELECT data FROM sessions").await {
        let text = String::from_utf8_lossy(&blob);
        assert!(!text.contains(&id), "{text}");
    }

    // The raw id finds the session; what the table holds finds nothing.
    assert_eq!(
        store.load_session(&id, now).await.unwrap(),
        Some(data.to_vec())
    );
    let stored = hash_secret(&id);
    assert_eq!(store.load_session(&stored, now).await.unwrap(), None);

    store
        .save_session(&id, Some("sub-1"), None, b"{}", now + 7200)
        .await
        .unwrap();
    assert_eq!(
        store.load_session(&id, now + 3600).await.unwrap(),
        Some(b"{}".to_vec())
    );
    assert_eq!(raw.count("SELECT COUNT(*) FROM sessions").await, 1);
    store.delete_session(&id).await.unwrap();
    assert_eq!(raw.count("SELECT COUNT(*) FROM sessions").await, 0);
    raw.close().await;
}

async fn a_session_id_copied_from_the_database_signs_nobody_in(backend: Backend) {
    let server = browser::start(backend).await;
    browser::add_user(&server, "alice").await;
    let rp = browser::rp(&server, browser::web_app()).await;
    let person = Browser::new(&server);
    person.code(&AuthRequest::new(&rp), "alice").await;
    // Signed in: her browser gets the next code without a login page.
    let again = person.authorize(&AuthRequest::new(&rp)).await;
    assert!(again.callback().contains_key("code"));

    let raw = Raw::open(&server.db).await;
    let stored = raw.texts("SELECT id FROM sessions").await.unwrap();
    raw.close().await;
    assert!(!stored.is_empty());
    for copied in stored.into_iter().flatten() {
        // Whoever presents what the table holds is asked to sign in.
        let mut url = server.url(&format!("/authorize?{}", AuthRequest::new(&rp).query()));
        let page = loop {
            let response = http()
                .get(&url)
                .header(COOKIE, format!("tessera_session={copied}"))
                .send()
                .await
                .unwrap();
            let r = Browser::read(response).await;
            match r.location() {
                Some(next) if next.starts_with('/') => url = server.url(next),
                _ => break r,
            }
        };
        assert!(page.is_login(), "{} {:?}", page.status, page.location());
    }
    server.stop().await;
}

both_backends!(
    interaction_is_read_back_until_it_expires,
    interaction_records_who_signed_in,
    racing_finishes_of_one_interaction_have_one_winner,
    prune_drops_only_expired_interactions,
    corrupt_rows_are_errors_not_defaults,
    an_edited_applied_migration_is_refused,
    checksums_are_recorded_for_databases_that_predate_them,
    the_session_table_holds_no_raw_session_id,
    a_session_id_copied_from_the_database_signs_nobody_in,
);

#[cfg(unix)]
mod sqlite_files {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use tessera::store;

    use crate::harness::{Backend, TestDatabase};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    fn database_path(db: &TestDatabase) -> String {
        db.url.trim_start_matches("sqlite://").to_string()
    }

    #[tokio::test]
    async fn database_wal_and_shm_files_are_private() {
        let db = TestDatabase::new(Backend::Sqlite).await;
        let path = database_path(&db);
        let store = store::connect(&db.url).await.unwrap();
        store.revoke_access_token("jti-1", 1).await.unwrap();
        for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
            assert_eq!(mode(Path::new(&file)), 0o600, "{file}");
        }
    }

    #[tokio::test]
    async fn a_new_data_directory_is_private() {
        let db = TestDatabase::new(Backend::Sqlite).await;
        let dir = format!("{}-data", database_path(&db));
        let url = format!("sqlite://{dir}/nested/tessera.db");
        store::connect(&url).await.unwrap();
        assert_eq!(mode(Path::new(&format!("{dir}/nested"))), 0o700);
        assert_eq!(mode(Path::new(&format!("{dir}/nested/tessera.db"))), 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_readable_database_from_an_older_version_is_made_private() {
        let db = TestDatabase::new(Backend::Sqlite).await;
        let path = database_path(&db);
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        store::connect(&db.url).await.unwrap();
        assert_eq!(mode(Path::new(&path)), 0o600);
    }
}
