//! A minimal embedded migrator: the SQL files are compiled into the binary,
//! and each backend applies the missing ones inside its exclusive
//! transaction, so concurrent first starts do not race.
//!
//! Each applied migration is recorded with the SHA-256 of its SQL. A file
//! edited after it was applied is refused at start-up and nothing is
//! applied: the database would otherwise silently differ from what the
//! file now says. A change to the schema is always a new file.

use super::StoreError;

pub struct Migration {
    pub version: i64,
    /// Path under `migrations/`, named in errors.
    pub file: &'static str,
    pub sql: &'static str,
}

/// Names the file, not its whole SQL.
impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("version", &self.version)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Migration {
    /// Hex SHA-256 of the SQL, with CRLF read as LF so that a checkout with
    /// Windows line endings is not mistaken for an edit.
    pub fn checksum(&self) -> String {
        let digest = crate::crypto::sha256(self.sql.replace("\r\n", "\n").as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A migration compiled in from `migrations/BACKEND/FILE`.
macro_rules! migration {
    ($backend:literal, $file:literal, $version:literal) => {
        Migration {
            version: $version,
            file: concat!($backend, "/", $file),
            sql: include_str!(concat!("../../migrations/", $backend, "/", $file)),
        }
    };
}

pub const SQLITE: &[Migration] = &[
    migration!("sqlite", "0001_init.sql", 1),
    migration!("sqlite", "0002_interactions.sql", 2),
    migration!("sqlite", "0003_hashed_session_ids.sql", 3),
    migration!("sqlite", "0004_revocation.sql", 4),
    migration!("sqlite", "0005_client_registration.sql", 5),
    migration!("sqlite", "0006_audit.sql", 6),
    migration!("sqlite", "0007_resources.sql", 7),
    migration!("sqlite", "0008_api_keys.sql", 8),
    migration!("sqlite", "0009_device_codes.sql", 9),
    migration!("sqlite", "0010_backchannel_logout.sql", 10),
    migration!("sqlite", "0011_resource_owner.sql", 11),
    migration!("sqlite", "0012_client_assertion_jtis.sql", 12),
    migration!("sqlite", "0013_pushed_authorization_requests.sql", 13),
];

pub const POSTGRES: &[Migration] = &[
    migration!("postgres", "0001_init.sql", 1),
    migration!("postgres", "0002_interactions.sql", 2),
    migration!("postgres", "0003_hashed_session_ids.sql", 3),
    migration!("postgres", "0004_revocation.sql", 4),
    migration!("postgres", "0005_client_registration.sql", 5),
    migration!("postgres", "0006_audit.sql", 6),
    migration!("postgres", "0007_resources.sql", 7),
    migration!("postgres", "0008_api_keys.sql", 8),
    migration!("postgres", "0009_device_codes.sql", 9),
    migration!("postgres", "0010_backchannel_logout.sql", 10),
    migration!("postgres", "0011_resource_owner.sql", 11),
    migration!("postgres", "0012_client_assertion_jtis.sql", 12),
    migration!("postgres", "0013_pushed_authorization_requests.sql", 13),
];

/// `checksum` is NULL only in rows written before checksums were recorded;
/// the first start after the upgrade fills them in.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tessera_migrations (\
     version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, checksum TEXT)";

/// A `tessera_migrations` row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppliedMigration {
    pub version: i64,
    pub checksum: Option<String>,
}

/// What to do to bring a database up to date.
#[derive(Debug, Default)]
pub struct MigrationPlan<'a> {
    /// Applied before checksums were recorded: `(version, checksum)` to record.
    pub record_checksums: Vec<(i64, String)>,
    /// Not applied yet, in order.
    pub apply: Vec<&'a Migration>,
}

/// Compares the compiled-in migrations with the recorded ones. An applied
/// migration whose recorded checksum differs from its file is
/// `MigrationChanged`, and then nothing at all is to be done. Versions
/// recorded but unknown to this binary (a newer Tessera migrated the
/// database) are left alone, as before.
pub fn plan_migrations<'a>(
    migrations: &'a [Migration],
    applied: &[AppliedMigration],
) -> Result<MigrationPlan<'a>, StoreError> {
    let mut plan = MigrationPlan::default();
    for m in migrations {
        let checksum = m.checksum();
        match applied.iter().find(|a| a.version == m.version) {
            None => plan.apply.push(m),
            Some(AppliedMigration { checksum: None, .. }) => {
                plan.record_checksums.push((m.version, checksum))
            }
            Some(AppliedMigration {
                checksum: Some(recorded),
                ..
            }) if *recorded != checksum => {
                return Err(StoreError::MigrationChanged {
                    version: m.version,
                    file: m.file,
                });
            }
            Some(_) => {}
        }
    }
    Ok(plan)
}

/// Applies `migrations` not yet recorded, in a transaction `$tx` that the
/// caller opened with an exclusive lock, after creating the table and
/// giving it its `checksum` column. Returns early (the transaction rolls
/// back when dropped) when an applied file was changed.
macro_rules! run_migrations {
    ($tx:expr, $migrations:expr) => {{
        use $crate::store::migrate::{AppliedMigration, plan_migrations};
        let applied: Vec<AppliedMigration> =
            sqlx::query_as("SELECT version, checksum FROM tessera_migrations")
                .fetch_all(&mut *$tx)
                .await?;
        let plan = plan_migrations($migrations, &applied)?;
        for (version, checksum) in plan.record_checksums {
            sqlx::query("UPDATE tessera_migrations SET checksum = $2 WHERE version = $1")
                .bind(version)
                .bind(checksum)
                .execute(&mut *$tx)
                .await?;
        }
        for m in plan.apply {
            sqlx::raw_sql(m.sql).execute(&mut *$tx).await?;
            sqlx::query(
                "INSERT INTO tessera_migrations (version, applied_at, checksum) \
                 VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind($crate::clock::Clock::now(&$crate::clock::SystemClock))
            .bind(m.checksum())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use run_migrations;

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i64, checksum: Option<String>) -> AppliedMigration {
        AppliedMigration { version, checksum }
    }

    #[test]
    fn a_fresh_database_gets_every_migration() {
        let plan = plan_migrations(SQLITE, &[]).unwrap();
        assert_eq!(plan.apply.len(), SQLITE.len());
        assert!(plan.record_checksums.is_empty());
    }

    #[test]
    fn rows_without_checksum_get_one_and_are_not_reapplied() {
        let plan = plan_migrations(POSTGRES, &[applied(1, None)]).unwrap();
        assert_eq!(plan.record_checksums, [(1, POSTGRES[0].checksum())]);
        let versions: Vec<i64> = plan.apply.iter().map(|m| m.version).collect();
        let later: Vec<i64> = POSTGRES[1..].iter().map(|m| m.version).collect();
        assert_eq!(versions, later);
    }

    #[test]
    fn an_edited_applied_file_is_refused() {
        let err = plan_migrations(SQLITE, &[applied(1, Some("0".repeat(64)))]).unwrap_err();
        assert!(matches!(
            err,
            StoreError::MigrationChanged {
                version: 1,
                file: "sqlite/0001_init.sql"
            }
        ));
        assert!(err.to_string().contains("sqlite/0001_init.sql"), "{err}");
    }

    #[test]
    fn both_backends_have_the_same_versions_in_order() {
        let sqlite: Vec<i64> = SQLITE.iter().map(|m| m.version).collect();
        let postgres: Vec<i64> = POSTGRES.iter().map(|m| m.version).collect();
        assert_eq!(sqlite, postgres);
        assert!(sqlite.windows(2).all(|w| w[0] < w[1]), "{sqlite:?}");
    }

    #[test]
    fn checksums_are_hex_sha256_and_ignore_crlf() {
        let lf = Migration {
            version: 9,
            file: "x",
            sql: "SELECT 1;\nSELECT 2;\n",
        };
        let crlf = Migration {
            sql: "SELECT 1;\r\nSELECT 2;\r\n",
            ..lf
        };
        assert_eq!(lf.checksum().len(), 64);
        assert_eq!(lf.checksum(), crlf.checksum());
        assert_ne!(lf.checksum(), SQLITE[0].checksum());
    }
}
