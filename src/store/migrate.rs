//! A minimal embedded migrator: the SQL files are compiled into the binary,
//! and each backend applies the missing ones inside its exclusive
//! transaction, so concurrent first starts do not race.

pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/sqlite/0002_interactions.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/postgres/0002_interactions.sql"),
    },
];

pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tessera_migrations (\
     version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Applies `migrations` not yet recorded, in a transaction `$tx` that the
/// caller opened with an exclusive lock.
macro_rules! run_migrations {
    ($tx:expr, $migrations:expr) => {{
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM tessera_migrations")
            .fetch_all(&mut *$tx)
            .await?;
        for m in $migrations {
            if applied.contains(&m.version) {
                continue;
            }
            sqlx::raw_sql(m.sql).execute(&mut *$tx).await?;
            sqlx::query("INSERT INTO tessera_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(m.version)
                .bind(crate::clock::Clock::now(&crate::clock::SystemClock))
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use run_migrations;
