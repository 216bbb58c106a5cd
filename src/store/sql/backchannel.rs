//! Ending login sessions, and the queue of Logout Tokens owed to clients
//! (`backchannel_deliveries`; OpenID Connect Back-Channel Logout 1.0).
//! Which grant ends with its session is the caller's rule
//! (`GrantEndsWithSession`); this only applies it.

use crate::domain::BackchannelDelivery;

/// A claimed `backchannel_deliveries` row.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct DeliveryRow {
    pub id: String,
    pub client_id: String,
    pub sub: String,
    pub sid: String,
    pub attempts: i64,
}

impl From<DeliveryRow> for BackchannelDelivery {
    fn from(row: DeliveryRow) -> Self {
        BackchannelDelivery {
            id: row.id,
            client_id: row.client_id,
            sub: row.sub,
            sid: row.sid,
            attempts: row.attempts,
        }
    }
}

/// The clients that hold a grant given in the session `$1` of `$2`.
pub(in crate::store) const CLIENTS_OF_SESSION: &str = "SELECT c.client_id, c.secret_hash, c.metadata, c.created_at FROM clients c \
     WHERE c.client_id IN (SELECT g.client_id FROM grants g WHERE g.sid = $1 AND g.sub = $2)";

pub(in crate::store) const INSERT_DELIVERY: &str = "INSERT INTO backchannel_deliveries \
     (id, client_id, sub, sid, state, attempts, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)";

/// On a transaction's connection `$conn` (`&mut *tx`): queues a delivery,
/// due at `$now`, for every client with a `backchannel_logout_uri` that holds a grant given
/// in the session `$sid` of `$sub`. Evaluates to how many were queued.
/// Shared by every path that ends sessions, so each queues in the
/// transaction that ends them.
macro_rules! queue_logout_deliveries {
    ($conn:expr, $sub:expr, $sid:expr, $now:expr) => {{
        use $crate::domain::Client;
        use $crate::store::sql::backchannel::{CLIENTS_OF_SESSION, INSERT_DELIVERY};
        use $crate::store::sql::clients::ClientRow;
        let rows: Vec<ClientRow> = sqlx::query_as(CLIENTS_OF_SESSION)
            .bind($sid)
            .bind($sub)
            .fetch_all($conn)
            .await?;
        let mut queued: u64 = 0;
        for row in rows {
            let client = Client::try_from(row)?;
            if client.metadata.backchannel_logout_uri.is_none() {
                continue;
            }
            sqlx::query(INSERT_DELIVERY)
                .bind($crate::crypto::random_hex::<16>())
                .bind(&client.client_id)
                .bind($sub)
                .bind($sid)
                .bind($now)
                .execute($conn)
                .await?;
            queued += 1;
        }
        queued
    }};
}
pub(crate) use queue_logout_deliveries;

/// Ends every session of `$sub` but the one whose id hashes to `$keep_hash`
/// (`None`: all of them) and queues Logout Tokens for the clients that got
/// tokens in them (OIDC Back-Channel Logout §2.5), inside the caller's
/// transaction `$conn`.
macro_rules! end_sessions_and_queue_logouts {
    ($conn:expr, $sub:expr, $keep_hash:expr, $now:expr) => {{
        let sids: Vec<Option<String>> =
            sqlx::query_scalar($crate::store::sql::sessions::END_SESSIONS_OF_SUB)
                .bind($sub)
                .bind($keep_hash)
                .fetch_all($conn)
                .await?;
        // Rows written before schema 10 have no sid.
        for sid in sids.iter().flatten() {
            $crate::store::sql::backchannel::queue_logout_deliveries!(
                $conn,
                $sub,
                sid.as_str(),
                $now
            );
        }
    }};
}
pub(crate) use end_sessions_and_queue_logouts;

/// `BackchannelStore`. `$skip_locked` ends the subquery that picks due
/// deliveries: PostgreSQL's `FOR UPDATE SKIP LOCKED`, so that workers of
/// many instances never claim the same row; SQLite runs one writer at a
/// time, so its single UPDATE is atomic as it stands.
macro_rules! backchannel_sql {
    ($store:ty, $skip_locked:literal) => {
        const _: () = {
            use $crate::clock::UnixTime;
            use $crate::domain::{BackchannelDelivery, DeliveryOutcome, Grant};
            use $crate::store::sql::backchannel::{DeliveryRow, queue_logout_deliveries};
            use $crate::store::sql::grants::GrantRow;
            use $crate::store::{
                BackchannelStore, EndedSessions, EndingSessions, GrantEndsWithSession, StoreError,
            };

            #[async_trait::async_trait]
            impl BackchannelStore for $store {
                async fn end_sessions(
                    &self,
                    which: EndingSessions<'_>,
                    ends_with_session: &GrantEndsWithSession<'_>,
                    now: UnixTime,
                ) -> Result<EndedSessions, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let (sub, ended, sids) = match which {
                        EndingSessions::One { id, sub, sid } => {
                            let deleted = sqlx::query("DELETE FROM sessions WHERE id = $1")
                                .bind($crate::crypto::hash_secret(id))
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                            // None deleted: a racing request ended it, and
                            // queued for it.
                            let sids = if deleted > 0 { vec![sid.to_string()] } else { vec![] };
                            (sub, deleted, sids)
                        }
                        EndingSessions::AllOf { sub } => {
                            let sids: Vec<Option<String>> = sqlx::query_scalar(
                                $crate::store::sql::sessions::END_SESSIONS_OF_SUB,
                            )
                            .bind(sub)
                            .bind(None::<String>)
                            .fetch_all(&mut *tx)
                            .await?;
                            let ended = sids.len() as u64;
                            // Rows written before schema 10 have no sid.
                            let mut sids: Vec<String> = sids.into_iter().flatten().collect();
                            sids.sort();
                            sids.dedup();
                            (sub, ended, sids)
                        }
                    };
                    let queued = end_sids(&mut tx, sub, &sids, ends_with_session, now).await?;
                    tx.commit().await?;
                    Ok(EndedSessions {
                        sessions: ended,
                        deliveries: queued,
                    })
                }

                async fn claim_backchannel_deliveries(
                    &self,
                    now: UnixTime,
                    claimed_until: UnixTime,
                    limit: i64,
                ) -> Result<Vec<BackchannelDelivery>, StoreError> {
                    let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
                        "UPDATE backchannel_deliveries \
                         SET attempts = attempts + 1, next_attempt_at = $2 \
                         WHERE state = 'pending' AND next_attempt_at <= $1 AND id IN \
                         (SELECT id FROM backchannel_deliveries \
                          WHERE state = 'pending' AND next_attempt_at <= $1 \
                          ORDER BY next_attempt_at LIMIT $3",
                        $skip_locked,
                        ") RETURNING id, client_id, sub, sid, attempts"
                    ))
                    .bind(now)
                    .bind(claimed_until)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(BackchannelDelivery::from).collect())
                }

                async fn finish_backchannel_delivery(
                    &self,
                    delivery: &BackchannelDelivery,
                    outcome: &DeliveryOutcome,
                    now: UnixTime,
                ) -> Result<bool, StoreError> {
                    let (state, next_attempt_at, finished_at, error) = match outcome {
                        DeliveryOutcome::Delivered => ("delivered", now, Some(now), None),
                        DeliveryOutcome::Retry { at, error } => ("pending", *at, None, Some(error)),
                        DeliveryOutcome::Failed { error } => ("failed", now, Some(now), Some(error)),
                    };
                    // Only the claim that made this attempt may finish it:
                    // after its lease lapsed, another worker owns the row.
                    Ok(sqlx::query(
                        "UPDATE backchannel_deliveries \
                         SET state = $3, next_attempt_at = $4, finished_at = $5, last_error = $6 \
                         WHERE id = $1 AND attempts = $2 AND state = 'pending'",
                    )
                    .bind(&delivery.id)
                    .bind(delivery.attempts)
                    .bind(state)
                    .bind(next_attempt_at)
                    .bind(finished_at)
                    .bind(error)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                        == 1)
                }

                async fn prune_backchannel_deliveries(
                    &self,
                    before: UnixTime,
                ) -> Result<u64, StoreError> {
                    Ok(sqlx::query(
                        "DELETE FROM backchannel_deliveries \
                         WHERE state <> 'pending' AND finished_at < $1",
                    )
                    .bind(before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
                }
            }

            /// Inside `tx`: for each ended session of `sub`, revokes the
            /// grants given in it that end with it, and queues the
            /// deliveries owed for it.
            async fn end_sids(
                tx: &mut sqlx::Transaction<'static, <$store as $crate::store::sql::BackendDb>::Db>,
                sub: &str,
                sids: &[String],
                ends_with_session: &GrantEndsWithSession<'_>,
                now: UnixTime,
            ) -> Result<u64, StoreError> {
                let mut queued = 0;
                for sid in sids {
                    let rows: Vec<GrantRow> = sqlx::query_as(
                        "SELECT grant_id, client_id, sub, scope, auth_time, sid, created_at, \
                         expires_at, revoked_at, resources FROM grants \
                         WHERE sid = $1 AND sub = $2 AND revoked_at IS NULL",
                    )
                    .bind(sid)
                    .bind(sub)
                    .fetch_all(&mut **tx)
                    .await?;
                    for row in rows {
                        let grant = Grant::try_from(row)?;
                        if ends_with_session(&grant) {
                            sqlx::query(
                                "UPDATE grants SET revoked_at = $2 \
                                 WHERE grant_id = $1 AND revoked_at IS NULL",
                            )
                            .bind(&grant.grant_id)
                            .bind(now)
                            .execute(&mut **tx)
                            .await?;
                        }
                    }
                    queued += queue_logout_deliveries!(&mut **tx, sub, sid.as_str(), now);
                }
                Ok(queued)
            }
        };
    };
}
pub(crate) use backchannel_sql;
