//! Change counters: versions of the cached data (clients, keys, resources),
//! bumped in the same transaction as every change and polled by each server.

/// A `change_counters` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct CounterRow {
    pub name: String,
    pub version: i64,
}

/// `ChangeStore`, and the `bump` that `clients_sql!` and `keys_sql!` call.
macro_rules! change_counters_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::store::sql::BackendDb;
            use $crate::store::sql::change_counters::CounterRow;
            use $crate::store::{ChangeStore, ChangeVersions, StoreError};

            impl $store {
                /// Bumps `counter` inside `tx`, so that readers see the change
                /// and the new version together.
                async fn bump(
                    tx: &mut sqlx::Transaction<'_, <Self as BackendDb>::Db>,
                    counter: &'static str,
                ) -> Result<(), StoreError> {
                    sqlx::query("UPDATE change_counters SET version = version + 1 WHERE name = $1")
                        .bind(counter)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl ChangeStore for $store {
                async fn change_versions(&self) -> Result<ChangeVersions, StoreError> {
                    let rows: Vec<CounterRow> =
                        sqlx::query_as("SELECT name, version FROM change_counters")
                            .fetch_all(&self.pool)
                            .await?;
                    let mut versions = ChangeVersions::default();
                    for row in rows {
                        match row.name.as_str() {
                            "clients" => versions.clients = row.version,
                            "keys" => versions.keys = row.version,
                            "resources" => versions.resources = row.version,
                            _ => {}
                        }
                    }
                    Ok(versions)
                }
            }
        };
    };
}
pub(crate) use change_counters_sql;
