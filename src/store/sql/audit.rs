//! The audit log: one row per event, `detail` stored as JSON text (the same
//! on both backends, like client metadata).

use crate::store::{AuditQuery, AuditRecord, StoreError};

/// An `audit_events` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;

    /// A detail that is not JSON is corrupt, never an empty object.
    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        let detail = serde_json::from_str(&row.detail)
            .map_err(|e| StoreError::Corrupt(format!("audit event {}: detail: {e}", row.id)))?;
        Ok(AuditRecord {
            id: row.id,
            at: row.at,
            kind: row.kind,
            actor: row.actor,
            subject: row.subject,
            client_id: row.client_id,
            address: row.address,
            request_id: row.request_id,
            detail,
        })
    }
}

/// A value bound to a placeholder of the filtered SELECT.
pub(in crate::store) enum AuditBind<'a> {
    Text(&'a str),
    Number(i64),
}

/// The SELECT for `query` and the values of its placeholders, in order.
/// Only fixed fragments go into the SQL; every value is bound, and only
/// the conditions asked for appear (so each can use its index).
pub(in crate::store) fn audit_select(query: &AuditQuery) -> (String, Vec<AuditBind<'_>>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds: Vec<AuditBind<'_>> = Vec::new();
    // The placeholder of the value just pushed: `$N` works on both backends.
    fn placeholder(binds: &[AuditBind<'_>]) -> String {
        format!("${}", binds.len())
    }
    if let Some(kinds) = &query.kinds {
        if kinds.is_empty() {
            conditions.push("1 = 0".into());
        } else {
            let mut list = Vec::new();
            for kind in kinds {
                binds.push(AuditBind::Text(kind));
                list.push(placeholder(&binds));
            }
            conditions.push(format!("kind IN ({})", list.join(", ")));
        }
    }
    if let Some(subject) = &query.subject {
        binds.push(AuditBind::Text(subject));
        conditions.push(format!("subject = {}", placeholder(&binds)));
    }
    if let Some(client_id) = &query.client_id {
        binds.push(AuditBind::Text(client_id));
        conditions.push(format!("client_id = {}", placeholder(&binds)));
    }
    if let Some(since) = query.since {
        binds.push(AuditBind::Number(since));
        conditions.push(format!("at >= {}", placeholder(&binds)));
    }
    if let Some(until) = query.until {
        binds.push(AuditBind::Number(until));
        conditions.push(format!("at < {}", placeholder(&binds)));
    }
    if let Some(before) = query.before_id {
        binds.push(AuditBind::Number(before));
        conditions.push(format!("id < {}", placeholder(&binds)));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    binds.push(AuditBind::Number(query.limit.max(0)));
    let sql = format!(
        "SELECT id, at, kind, actor, subject, client_id, address, request_id, detail \
         FROM audit_events{filter} ORDER BY id DESC LIMIT {}",
        placeholder(&binds)
    );
    (sql, binds)
}

/// `AuditStore`.
macro_rules! audit_sql {
    ($store:ty) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::store::sql::audit::{AuditBind, AuditRow, audit_select};
            use $crate::store::{AuditQuery, AuditRecord, AuditStore, StoreError};

            #[async_trait::async_trait]
            impl AuditStore for $store {
                async fn insert_audit_records(
                    &self,
                    records: &[AuditRecord],
                ) -> Result<(), StoreError> {
                    if records.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.pool.begin().await?;
                    for r in records {
                        let detail = serde_json::to_string(&r.detail)
                            .map_err(|e| StoreError::Unstorable(format!("audit detail: {e}")))?;
                        sqlx::query(
                            "INSERT INTO audit_events (at, kind, actor, subject, client_id, \
                             address, request_id, detail) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(r.at)
                        .bind(&r.kind)
                        .bind(&r.actor)
                        .bind(&r.subject)
                        .bind(&r.client_id)
                        .bind(&r.address)
                        .bind(&r.request_id)
                        .bind(detail)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn audit_records(
                    &self,
                    query: &AuditQuery,
                ) -> Result<Vec<AuditRecord>, StoreError> {
                    let (sql, binds) = audit_select(query);
                    let mut select = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql));
                    for bind in binds {
                        select = match bind {
                            AuditBind::Text(text) => select.bind(text),
                            AuditBind::Number(number) => select.bind(number),
                        };
                    }
                    let rows = select.fetch_all(&self.pool).await?;
                    rows.into_iter().map(AuditRecord::try_from).collect()
                }

                async fn prune_audit_records(&self, before: UnixTime) -> Result<u64, StoreError> {
                    Ok(sqlx::query("DELETE FROM audit_events WHERE at < $1")
                        .bind(before)
                        .execute(&self.pool)
                        .await?
                        .rows_affected())
                }
            }
        };
    };
}
pub(crate) use audit_sql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_asked_conditions_appear_and_every_value_is_bound() {
        let query = AuditQuery {
            limit: 10,
            ..Default::default()
        };
        let (sql, binds) = audit_select(&query);
        assert!(
            sql.ends_with("FROM audit_events ORDER BY id DESC LIMIT $1"),
            "{sql}"
        );
        assert_eq!(binds.len(), 1);

        let query = AuditQuery {
            kinds: Some(vec!["a.b".into(), "a.c".into()]),
            subject: Some("s' OR 1=1 --".into()),
            client_id: Some("c".into()),
            since: Some(5),
            until: Some(9),
            before_id: Some(100),
            limit: 3,
        };
        let (sql, binds) = audit_select(&query);
        assert!(
            sql.contains(
                " WHERE kind IN ($1, $2) AND subject = $3 AND client_id = $4 AND at >= $5 \
                 AND at < $6 AND id < $7 ORDER BY id DESC LIMIT $8"
            ),
            "{sql}"
        );
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert_eq!(binds.len(), 8);
    }

    #[test]
    fn an_empty_kind_list_matches_nothing() {
        let query = AuditQuery {
            kinds: Some(Vec::new()),
            limit: 1,
            ..Default::default()
        };
        let (sql, _) = audit_select(&query);
        assert!(sql.contains(" WHERE 1 = 0 "), "{sql}");
    }
}
