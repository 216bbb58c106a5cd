//! OpenID Connect Back-Channel Logout 1.0: when a login session ends (the
//! person signs out, an operator ends their sessions, the account is
//! deleted), every client that got tokens in it and registered a
//! `backchannel_logout_uri` is sent a Logout Token, server to server.
//!
//! Ending the session queues the deliveries in the same transaction
//! (`store::BackchannelStore::end_sessions`); `Deliveries::run_once`, run
//! by the server's background worker, claims the due ones and POSTs them,
//! so a slow or dead client never holds up the person's logout page, and
//! a restart loses none. Each attempt signs a fresh token; none is stored.

use std::time::Duration;

use serde_json::json;

use super::id_token;
use crate::clock::UnixTime;
use crate::crypto;
use crate::domain::{BackchannelDelivery, Client, DeliveryOutcome, Grant};
use crate::error::AppError;
use crate::oauth::client_cache::ClientCache;
use crate::oauth::tokens::Tokens;
use crate::outbound::OutboundClient;
use crate::service::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use crate::store::{BackchannelStore, EndedSessions, EndingSessions, StoreError};

/// §2.4: the member of `events` that makes a JWT a Logout Token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// §2.4: the `typ` header, so that a Logout Token is never taken for an
/// ID token (RFC 8725 §3.11, explicit typing).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
/// §2.4 asks for a short lifetime: the token is sent at once.
pub const LOGOUT_TOKEN_TTL_SECS: i64 = 120;
/// Each POST, connecting included, must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per delivery before it is given up as failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// The wait after the first failed attempt; it doubles after each next
/// one (10 s, 20 s, 40 s, 80 s).
pub const FIRST_RETRY_AFTER_SECS: i64 = 10;
/// How long a worker's claim on a delivery lasts: well beyond
/// `REQUEST_TIMEOUT`, so only a worker that died loses it.
const CLAIM_SECS: i64 = 60;
/// Deliveries claimed (and sent side by side) at a time.
const BATCH: i64 = 32;
/// Finished deliveries are kept this long (their outcome is in the audit
/// log), then pruned by the upkeep.
pub const KEEP_FINISHED_SECS: i64 = 7 * 86_400;

/// Whether a grant given in a session ends with it. Back-Channel Logout
/// §2.7 and OIDC Core §11 leave it to the OP; Tessera revokes every grant
/// of the session (its access tokens, and its refresh tokens, stop
/// working) except one with `offline_access`, which is meant to outlive
/// the session: its refresh tokens keep working.
pub fn grant_ends_with_session(grant: &Grant) -> bool {
    !grant.scope.contains("offline_access")
}

/// Ends sessions: deletes them, revokes the grants that end with them
/// (`grant_ends_with_session`) and queues the Logout Tokens owed, in one
/// transaction. The caller wakes the worker.
pub async fn end_sessions(
    store: &dyn BackchannelStore,
    which: EndingSessions<'_>,
    now: UnixTime,
) -> Result<EndedSessions, StoreError> {
    store
        .end_sessions(which, &grant_ends_with_session, now)
        .await
}

/// §2.4: a Logout Token for `client` about the session `sid` of `sub`,
/// signed as the client's ID tokens are. It has no `nonce` (§2.4 forbids
/// one, so that it can never pass for an ID token).
pub fn logout_token(
    tokens: &Tokens<'_>,
    client: &Client,
    sub: &str,
    sid: &str,
) -> Result<String, AppError> {
    let now = tokens.now();
    let claims = json!({
        "iss": tokens.issuer,
        "sub": sub,
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL_SECS,
        "jti": crypto::random_token(),
        "events": { LOGOUT_EVENT: {} },
        "sid": sid,
    });
    id_token::sign_for_client(tokens, client, LOGOUT_TOKEN_TYPE, &claims)
}

/// What becomes of a delivery whose attempt number `attempts` failed for
/// `error` at `now`: retried with exponential backoff, or failed for good
/// once `MAX_ATTEMPTS` are used up.
pub fn after_failure(attempts: i64, now: UnixTime, error: String) -> DeliveryOutcome {
    if attempts >= MAX_ATTEMPTS {
        return DeliveryOutcome::Failed { error };
    }
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    DeliveryOutcome::Retry {
        at: now + FIRST_RETRY_AFTER_SECS * (1_i64 << doublings),
        error,
    }
}

/// What the delivery worker works with.
pub struct Deliveries<'a> {
    pub tokens: Tokens<'a>,
    pub store: &'a dyn BackchannelStore,
    pub clients: &'a ClientCache,
    pub outbound: &'a OutboundClient,
    pub audit: &'a dyn AuditSink,
}

/// How one attempt went.
enum Attempt {
    /// POSTed: a 2xx answer, or why not.
    Sent(Result<(), String>),
    /// Could not be made now (no token could be signed): retried.
    NotMade(String),
    /// Can never be made (the client is gone, or no longer has the URI).
    Impossible(String),
}

impl Deliveries<'_> {
    /// Claims the deliveries due now, sends them side by side (each within
    /// `REQUEST_TIMEOUT`), and records each outcome: in the store, the
    /// audit log (delivered, or failed for good) and the
    /// `tessera_backchannel_logout_total` counter. Returns how many were
    /// claimed (a full batch means more may be due).
    pub async fn run_once(&self) -> Result<usize, AppError> {
        let now = self.tokens.now();
        let claimed = self
            .store
            .claim_backchannel_deliveries(now, now + CLAIM_SECS, BATCH)
            .await?;
        let count = claimed.len();
        let mut attempts: Vec<(BackchannelDelivery, Attempt)> = Vec::with_capacity(count);
        let mut sends = tokio::task::JoinSet::new();
        for delivery in claimed {
            match self.prepare(&delivery).await {
                Ok((uri, token)) => {
                    let outbound = self.outbound.clone();
                    sends.spawn(async move {
                        // §2.5: the token as the form parameter `logout_token`.
                        let sent = outbound
                            .post_form(&uri, &[("logout_token", token.as_str())])
                            .await
                            .map_err(|e| e.to_string());
                        (delivery, Attempt::Sent(sent))
                    });
                }
                Err(attempt) => attempts.push((delivery, attempt)),
            }
        }
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok(done) => attempts.push(done),
                // Its claim lapses and another attempt follows.
                Err(e) => tracing::warn!(error = %e, "a back-channel logout send was lost"),
            }
        }
        for (delivery, attempt) in attempts {
            self.settle(&delivery, attempt).await?;
        }
        Ok(count)
    }

    /// The URI to POST to and a freshly signed Logout Token.
    async fn prepare(&self, delivery: &BackchannelDelivery) -> Result<(String, String), Attempt> {
        let client = match self.clients.get(&delivery.client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => return Err(Attempt::Impossible("the client was deleted".into())),
            Err(e) => return Err(Attempt::NotMade(format!("reading the client: {e}"))),
        };
        let Some(uri) = client.metadata.backchannel_logout_uri.clone() else {
            return Err(Attempt::Impossible(
                "the client no longer has a backchannel_logout_uri".into(),
            ));
        };
        match logout_token(&self.tokens, &client, &delivery.sub, &delivery.sid) {
            Ok(token) => Ok((uri, token)),
            Err(e) => Err(Attempt::NotMade(format!("signing the Logout Token: {e}"))),
        }
    }

    async fn settle(
        &self,
        delivery: &BackchannelDelivery,
        attempt: Attempt,
    ) -> Result<(), AppError> {
        let now = self.tokens.now();
        let outcome = match attempt {
            // §2.8: the RP answers 200 (or 204) once it has logged out.
            Attempt::Sent(Ok(())) => DeliveryOutcome::Delivered,
            Attempt::Sent(Err(error)) | Attempt::NotMade(error) => {
                after_failure(delivery.attempts, now, error)
            }
            Attempt::Impossible(error) => DeliveryOutcome::Failed { error },
        };
        if !self
            .store
            .finish_backchannel_delivery(delivery, &outcome, now)
            .await?
        {
            // The claim lapsed and another worker owns the delivery now.
            return Ok(());
        }
        let (label, kind, error) = match &outcome {
            DeliveryOutcome::Delivered => (
                "delivered",
                Some(AuditKind::BackchannelLogoutDelivered),
                None,
            ),
            DeliveryOutcome::Retry { error, .. } => ("retry", None, Some(error)),
            DeliveryOutcome::Failed { error } => (
                "failed",
                Some(AuditKind::BackchannelLogoutFailed),
                Some(error),
            ),
        };
        metrics::counter!("tessera_backchannel_logout_total", "outcome" => label).increment(1);
        match error {
            None => tracing::info!(
                client_id = %delivery.client_id,
                attempts = delivery.attempts,
                "back-channel logout delivered"
            ),
            Some(error) => tracing::warn!(
                client_id = %delivery.client_id,
                attempts = delivery.attempts,
                %error,
                outcome = label,
                "back-channel logout attempt failed"
            ),
        }
        if let Some(kind) = kind {
            let mut event = AuditEvent::user(kind, &Actor::System, &delivery.sub, now)
                .with_client(&delivery.client_id)
                .with_detail("sid", delivery.sid.as_str())
                .with_detail("attempts", delivery.attempts);
            if let Some(error) = error {
                event = event.with_detail("error", error.as_str());
            }
            self.audit.record(event).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_and_stop_after_the_last_attempt() {
        let at = |attempts| match after_failure(attempts, 1000, "x".into()) {
            DeliveryOutcome::Retry { at, .. } => Some(at - 1000),
            _ => None,
        };
        assert_eq!(
            (1..=MAX_ATTEMPTS).map(at).collect::<Vec<_>>(),
            [Some(10), Some(20), Some(40), Some(80), None]
        );
    }

    #[test]
    fn only_offline_access_outlives_the_session() {
        let grant = |scope: &str| Grant {
            grant_id: "g".into(),
            client_id: "c".into(),
            sub: "s".into(),
            scope: crate::domain::ScopeSet::parse(scope).unwrap(),
            auth_time: 0,
            sid: Some("sid".into()),
            created_at: 0,
            expires_at: 10,
            revoked_at: None,
            resources: vec![],
        };
        assert!(grant_ends_with_session(&grant("openid profile")));
        assert!(!grant_ends_with_session(&grant("openid offline_access")));
    }
}
