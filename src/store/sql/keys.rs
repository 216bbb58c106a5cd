//! Signing keys, and their rotation under the backend's lock.

use crate::jose::{KeyState, SigningAlg, SigningKeyRecord};
use crate::store::StoreError;

/// A `signing_keys` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

/// Every key, oldest first.
pub(in crate::store) const SELECT_KEYS: &str = "SELECT kid, alg, state, private_key, public_jwk, \
     created_at, activated_at, retired_at FROM signing_keys ORDER BY created_at, kid";

impl TryFrom<KeyRow> for SigningKeyRecord {
    type Error = StoreError;

    /// An algorithm or state this build does not know is corrupt data.
    fn try_from(row: KeyRow) -> Result<Self, StoreError> {
        let alg = SigningAlg::parse(&row.alg).ok_or_else(|| {
            StoreError::Corrupt(format!("key {}: algorithm {:?}", row.kid, row.alg))
        })?;
        let state = KeyState::parse(&row.state).ok_or_else(|| {
            StoreError::Corrupt(format!("key {}: state {:?}", row.kid, row.state))
        })?;
        Ok(SigningKeyRecord {
            kid: row.kid,
            alg,
            state,
            private_key: row.private_key,
            public_jwk: row.public_jwk,
            created_at: row.created_at,
            activated_at: row.activated_at,
            retired_at: row.retired_at,
        })
    }
}

/// `KeyStore`. Changes bump the `keys` change counter
/// (`change_counters_sql!`) in the same transaction.
macro_rules! keys_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::jose::SigningKeyRecord;
            use $crate::jose::rotation::KeyChanges;
            use $crate::store::sql::keys::{KeyRow, SELECT_KEYS};
            use $crate::store::{KeyPlanner, KeyStore, StoreError};

            #[async_trait::async_trait]
            impl KeyStore for $store {
                async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                    let rows: Vec<KeyRow> = sqlx::query_as(SELECT_KEYS).fetch_all(&self.pool).await?;
                    rows.into_iter().map(SigningKeyRecord::try_from).collect()
                }

                async fn update_signing_keys(
                    &self,
                    plan: &KeyPlanner<'_>,
                ) -> Result<KeyChanges, StoreError> {
                    let mut tx = self.begin_locked().await?;
                    let rows: Vec<KeyRow> = sqlx::query_as(SELECT_KEYS).fetch_all(&mut *tx).await?;
                    let keys = rows
                        .into_iter()
                        .map(SigningKeyRecord::try_from)
                        .collect::<Result<Vec<_>, _>>()?;
                    let changes = plan(&keys)?;
                    if changes.is_empty() {
                        tx.rollback().await?;
                        return Ok(changes);
                    }
                    for kid in &changes.delete {
                        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                            .bind(kid)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for k in &changes.update {
                        sqlx::query(
                            "UPDATE signing_keys SET state = $2, activated_at = $3, retired_at = $4 \
                             WHERE kid = $1",
                        )
                        .bind(&k.kid)
                        .bind(k.state.as_str())
                        .bind(k.activated_at)
                        .bind(k.retired_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for k in &changes.insert {
                        sqlx::query(
                            "INSERT INTO signing_keys (kid, alg, state, private_key, public_jwk, \
                             created_at, activated_at, retired_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(&k.kid)
                        .bind(k.alg.as_str())
                        .bind(k.state.as_str())
                        .bind(&k.private_key)
                        .bind(&k.public_jwk)
                        .bind(k.created_at)
                        .bind(k.activated_at)
                        .bind(k.retired_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Self::bump(&mut tx, "keys").await?;
                    tx.commit().await?;
                    Ok(changes)
                }
            }
        };
    };
}
pub(crate) use keys_sql;
