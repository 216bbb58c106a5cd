//! The SQL both backends share, one module per aggregate. Placeholders are
//! `$N`, which SQLite and PostgreSQL both accept; the schema is the same on
//! both. Each module holds its row types (`#[derive(sqlx::FromRow)]`, read
//! by column name, each converted to its domain record in one place) and a
//! `macro_rules!` that implements its trait for a backend type providing a
//! `pool` field and `begin_locked()`. `sqlite.rs` and `postgres.rs` invoke
//! every one of them; an error inside points at the line in the aggregate's
//! own file.
//!
//! Each macro expands inside `const _: () = { … };` so that its `use` lines
//! stay private to it and never depend on what the invoking file imports.

pub(super) mod api_keys;
pub(super) mod audit;
pub(super) mod backchannel;
pub(super) mod change_counters;
pub(super) mod client_assertions;
pub(super) mod clients;
pub(super) mod consents;
pub(super) mod device_codes;
pub(super) mod grants;
pub(super) mod interactions;
pub(super) mod keys;
pub(super) mod login_throttle;
pub(super) mod pushed_requests;
pub(super) mod resources;
pub(super) mod revocations;
pub(super) mod sessions;
pub(super) mod users;

pub(super) use api_keys::api_keys_sql;
pub(super) use audit::audit_sql;
pub(super) use backchannel::backchannel_sql;
pub(super) use change_counters::change_counters_sql;
pub(super) use client_assertions::client_assertions_sql;
pub(super) use clients::clients_sql;
pub(super) use consents::consents_sql;
pub(super) use device_codes::device_codes_sql;
pub(super) use grants::grants_sql;
pub(super) use interactions::interactions_sql;
pub(super) use keys::keys_sql;
pub(super) use login_throttle::login_throttle_sql;
pub(super) use pushed_requests::pushed_requests_sql;
pub(super) use resources::resources_sql;
pub(super) use revocations::revocations_sql;
pub(super) use sessions::sessions_sql;
pub(super) use users::users_sql;

use super::StoreError;
use crate::domain::ScopeSet;

/// A stored scope that does not parse is corrupt data, never an empty scope.
pub(super) fn scope_from_column(text: &str, what: &str, id: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse(text).map_err(|e| StoreError::Corrupt(format!("{what} {id}: scope: {e}")))
}

/// A unique-constraint violation becomes `Conflict(message)`.
pub(super) fn conflict(e: sqlx::Error, message: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(message.into())
        }
        _ => StoreError::Database(e),
    }
}

/// What a sqlx pool reports of itself, as [`super::PoolUse`].
pub(super) fn pool_use<Db: sqlx::Database>(pool: &sqlx::Pool<Db>) -> super::PoolUse {
    super::PoolUse {
        open: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}

/// Names the sqlx database type of a backend, for the shared SQL.
pub(super) trait BackendDb {
    type Db: sqlx::Database;
}
