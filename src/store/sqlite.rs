//! SQLite backend: the zero-configuration default. WAL mode lets readers
//! proceed during writes; `BEGIN IMMEDIATE` serialises writers that must
//! read-then-write (key rotation, migrations), also across processes.
//!
//! The database holds sealed keys and hashed secrets, so its file and the
//! `-wal`/`-shm` files beside it are readable by their owner only (0600 on
//! Unix), whatever the process umask.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::migrate::{self, run_migrations};
use super::sql::{
    BackendDb, api_keys_sql, audit_sql, backchannel_sql, change_counters_sql,
    client_assertions_sql, clients_sql, consents_sql, device_codes_sql, grants_sql,
    interactions_sql, keys_sql, login_throttle_sql, pool_use, pushed_requests_sql, resources_sql,
    revocations_sql, sessions_sql, users_sql,
};
use super::{PendingKeyUses, PoolMonitor, PoolUse, StoreError};

pub struct SqliteStore {
    pool: SqlitePool,
    /// Uses of API keys without a rate limit, written in batches.
    api_key_uses: PendingKeyUses,
}

impl BackendDb for SqliteStore {
    type Db = Sqlite;
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = (!is_in_memory(url)).then(|| options.get_filename().to_path_buf());
        if let Some(path) = &file {
            create_private_file(path)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            api_key_uses: PendingKeyUses::default(),
        };
        store.migrate().await?;
        // An open WAL database has its -wal and -shm files by now. SQLite
        // gives them the database file's mode; this also covers files left
        // by an older version, created under the umask.
        if let Some(path) = &file {
            for path in [
                path.clone(),
                with_suffix(path, "-wal"),
                with_suffix(path, "-shm"),
            ] {
                restrict_to_owner(&path);
            }
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_locked().await?;
        sqlx::query(migrate::CREATE_TABLE).execute(&mut *tx).await?;
        // Databases migrated before checksums were recorded lack the column
        // (SQLite has no ADD COLUMN IF NOT EXISTS).
        let has_checksum: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pragma_table_info('tessera_migrations') WHERE name = 'checksum'",
        )
        .fetch_one(&mut *tx)
        .await?;
        if has_checksum == 0 {
            sqlx::query("ALTER TABLE tessera_migrations ADD COLUMN checksum TEXT")
                .execute(&mut *tx)
                .await?;
        }
        run_migrations!(tx, migrate::SQLITE);
        tx.commit().await?;
        Ok(())
    }

    /// A write transaction that holds the database's write lock from its
    /// first statement.
    async fn begin_locked(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl PoolMonitor for SqliteStore {
    fn pool_use(&self) -> PoolUse {
        pool_use(&self.pool)
    }
}

api_keys_sql!(SqliteStore);
change_counters_sql!(SqliteStore);
clients_sql!(SqliteStore);
client_assertions_sql!(SqliteStore);
resources_sql!(SqliteStore);
keys_sql!(SqliteStore);
revocations_sql!(SqliteStore);
users_sql!(SqliteStore);
grants_sql!(SqliteStore);
consents_sql!(SqliteStore);
login_throttle_sql!(SqliteStore);
sessions_sql!(SqliteStore);
interactions_sql!(SqliteStore);
pushed_requests_sql!(SqliteStore);
device_codes_sql!(SqliteStore);
audit_sql!(SqliteStore);
backchannel_sql!(SqliteStore, "");

/// `sqlite::memory:` and `?mode=memory` databases have no file.
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates the database file (and its directory) for the owner only, before
/// SQLite would create it under the umask. An existing file is left as it
/// is here: it may be read-only on purpose.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let failed = |what: &str, path: &Path, e: std::io::Error| {
        StoreError::File(format!("cannot {what} {}: {e}", path.display()))
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(parent)
            .map_err(|e| failed("create", parent, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => {
            // The umask may have removed bits; the mode must be exact.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| failed("set the mode of", path, e))?;
            }
            Ok(())
        }
        // Already there, or created by another process just now.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed("create", path, e)),
    }
}

/// Takes every permission away from group and others on `path`, if it
/// exists; never adds any (a read-only file stays read-only).
#[cfg(unix)]
fn restrict_to_owner(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot restrict the database file to its owner");
    }
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) {}
