//! Registered clients: register, list, show, delete. The RFC 7591 metadata
//! rules stay in `oauth::client::register`; this adds storage, the audit
//! hook and the error mapping, for the CLI and the admin API alike.
//!
//! A running server notices a deleted client through the change counter
//! the store bumps in the same transaction, so nothing here touches a cache.

use std::fmt;

use super::ServiceError;
use super::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use crate::clock::Clock;
use crate::domain::Client;
use crate::oauth::client::{self, ClientRegistration};
use crate::store::ClientStore;

/// A client just registered, with its secret in clear: the only time the
/// secret is known (the store keeps its SHA-256). `Debug` never shows it.
pub struct RegisteredClient {
    pub client: Client,
    /// `None` for a public client.
    pub secret: Option<String>,
}

impl RegisteredClient {
    /// The RFC 7591 §3.2.1 client information response, secret included.
    pub fn information_response(&self) -> serde_json::Value {
        self.client.information_response(self.secret.as_deref())
    }
}

impl fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client", &self.client)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn no_client_with_id(client_id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no client with id {client_id:?}"))
}

/// Checks `registration` against the metadata rules (a breach is `Invalid`,
/// naming the field), then stores the client.
pub async fn register(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    registration: ClientRegistration,
) -> Result<RegisteredClient, ServiceError> {
    let now = clock.now();
    let (client, secret) =
        client::register(registration, now).map_err(|e| ServiceError::Invalid(e.0))?;
    store.insert_client(&client).await?;
    audit
        .record(AuditEvent::client(
            AuditKind::ClientRegistered,
            actor,
            &client.client_id,
            now,
        ))
        .await;
    Ok(RegisteredClient { client, secret })
}

pub async fn list(store: &dyn ClientStore) -> Result<Vec<Client>, ServiceError> {
    Ok(store.clients().await?)
}

/// The client `client_id`, or `NotFound`.
pub async fn show(store: &dyn ClientStore, client_id: &str) -> Result<Client, ServiceError> {
    store
        .client(client_id)
        .await?
        .ok_or_else(|| no_client_with_id(client_id))
}

/// Deletes the client `client_id`, or answers `NotFound`. Its grants are
/// revoked with it, and every token issued to it stops working at once on
/// every instance (`access_token::validate` asks the store, not a cache).
pub async fn delete(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    client_id: &str,
) -> Result<(), ServiceError> {
    let now = clock.now();
    if !store.delete_client(client_id, now).await? {
        return Err(no_client_with_id(client_id));
    }
    audit
        .record(AuditEvent::client(
            AuditKind::ClientDeleted,
            actor,
            client_id,
            now,
        ))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    #[test]
    fn registered_client_debug_hides_the_secret() {
        let (client, secret) = client::register(
            ClientRegistration {
                client_name: "svc".into(),
                ..Default::default()
            },
            5,
        )
        .unwrap();
        let secret = secret.unwrap();
        let registered = RegisteredClient {
            client,
            secret: Some(secret.clone()),
        };
        let shown = format!("{registered:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains(&secret), "{shown}");
        assert_eq!(registered.information_response()["client_secret"], secret);
    }

    /// A store that fails the test if anything reaches it.
    struct UntouchedStore;

    #[async_trait::async_trait]
    impl ClientStore for UntouchedStore {
        async fn insert_client(&self, _: &Client) -> Result<(), crate::store::StoreError> {
            panic!("an invalid registration reached the store")
        }
        async fn client(&self, _: &str) -> Result<Option<Client>, crate::store::StoreError> {
            panic!("unexpected read")
        }
        async fn clients(&self) -> Result<Vec<Client>, crate::store::StoreError> {
            panic!("unexpected read")
        }
        async fn delete_client(
            &self,
            _: &str,
            _: crate::clock::UnixTime,
        ) -> Result<bool, crate::store::StoreError> {
            panic!("unexpected delete")
        }
    }

    /// Fails the test if an event is recorded.
    struct NoEvents;

    #[async_trait::async_trait]
    impl AuditSink for NoEvents {
        async fn record(&self, event: AuditEvent) {
            panic!("a refused change was audited: {event:?}")
        }
    }

    #[tokio::test]
    async fn invalid_metadata_is_refused_before_storage_and_audit() {
        let registration = ClientRegistration {
            client_name: "x".into(),
            grant_types: vec!["implicit".into()],
            ..Default::default()
        };
        let result = register(
            &UntouchedStore,
            &FixedClock::new(5),
            &NoEvents,
            &Actor::Cli,
            registration,
        )
        .await;
        match result {
            Err(ServiceError::Invalid(reason)) => assert!(reason.contains("implicit"), "{reason}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
