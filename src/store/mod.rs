//! Storage: small async traits, one implementation per backend
//! (`sqlite.rs`, `postgres.rs`). Both share their SQL through the
//! `sql_store!` macro in `sql.rs`; only locking and connection set-up differ.

mod migrate;
pub mod postgres;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::jose::KeyError;
use crate::jose::SigningKeyRecord;
use crate::jose::rotation::KeyChanges;
use crate::oauth::client::Client;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Conflict(String),
}

/// Versions of the data that servers cache; bumped in the same transaction
/// as every change, polled by each server to invalidate its caches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeVersions {
    pub clients: i64,
    pub keys: i64,
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError>;
    async fn clients(&self) -> Result<Vec<Client>, StoreError>;
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
}

/// The function that decides key changes from the stored keys; it runs
/// while the store holds the rotation lock.
pub type KeyPlanner<'a> =
    dyn Fn(&[SigningKeyRecord]) -> Result<KeyChanges, KeyError> + Send + Sync + 'a;

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Reads the keys and applies what `plan` decides in one transaction,
    /// under a lock that makes concurrent callers (other instances on the
    /// same database) take turns, so that each sees the other's result.
    async fn update_signing_keys(&self, plan: &KeyPlanner<'_>) -> Result<KeyChanges, StoreError>;
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Adds an access token's `jti` to the revocation list until it expires.
    async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError>;
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Drops revocation entries of tokens that have expired anyway.
    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait ChangeStore: Send + Sync {
    async fn change_versions(&self) -> Result<ChangeVersions, StoreError>;
}

pub trait Store: ClientStore + KeyStore + RevocationStore + ChangeStore {}
impl<T: ClientStore + KeyStore + RevocationStore + ChangeStore> Store for T {}

pub type SharedStore = Arc<dyn Store>;

/// Opens (creating if needed) and migrates the database at `url`.
pub async fn connect(url: &str) -> Result<SharedStore, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}
