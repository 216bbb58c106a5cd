//! Registered clients: register, list, show, delete. The RFC 7591 metadata
//! rules stay in `oauth::client::register`; this adds storage, the audit
//! hook and the error mapping, for the CLI and the admin API alike.
//!
//! Clients that register themselves over HTTP (RFC 7591 `/register`) go
//! through `register_dynamic`, and manage their registration (RFC 7592)
//! with the registration access token it issues: `read_registration`,
//! `update_registration`, `delete_registration`.
//!
//! A running server notices a deleted client through the change counter
//! the store bumps in the same transaction, so nothing here touches a cache.

use std::fmt;

use super::ServiceError;
use super::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use super::page::{CursorList, Page, PageRequest, split_key};
use crate::clock::Clock;
use crate::crypto;
use crate::domain::Client;
use crate::oauth::client::{self, ClientRegistration, DynamicRegistrationPolicy};
use crate::oauth::client_auth;
use crate::oauth::registration::{ClientUpdate, RegistrationError};
use crate::store::{ClientStore, StoreError};

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

/// A client that registered itself over HTTP, with what it is shown once:
/// its secret (confidential clients) and its registration access token.
/// `Debug` shows neither.
pub struct DynamicRegistration {
    pub registered: RegisteredClient,
    pub registration_access_token: String,
}

impl fmt::Debug for DynamicRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicRegistration")
            .field("registered", &self.registered)
            .field("registration_access_token", &"<redacted>")
            .finish()
    }
}

/// Why a registration over HTTP, or a request to manage one, was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationFailure {
    /// RFC 7592 §2: the registration access token is missing or wrong, or
    /// the client does not exist, or was not registered over HTTP. Which
    /// one is never said: an unknown client answers like a wrong token.
    #[error("the registration access token is not valid for this client")]
    InvalidToken,
    /// The metadata or the request breaks a rule (RFC 7591 §3.2.2).
    #[error(transparent)]
    Refused(#[from] RegistrationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// RFC 7591 §3: checks `registration` on the rules for self-registered
/// clients (`client::register_dynamic`), stores the client with the
/// SHA-256 of a new registration access token, and returns both secrets in
/// clear, the only time they are known. The registrant is the client
/// itself, so the audit names it as the actor.
pub async fn register_dynamic(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    registration: ClientRegistration,
    policy: &DynamicRegistrationPolicy,
) -> Result<DynamicRegistration, RegistrationFailure> {
    let now = clock.now();
    let (client, secret) = client::register_dynamic(registration, policy, now)?;
    let token = crypto::random_token();
    store
        .insert_client_with_registration_token(&client, &crypto::hash_secret(&token))
        .await?;
    let actor = Actor::Client(client.client_id.clone());
    audit
        .record(AuditEvent::client(
            AuditKind::ClientRegistered,
            &actor,
            &client.client_id,
            now,
        ))
        .await;
    Ok(DynamicRegistration {
        registered: RegisteredClient { client, secret },
        registration_access_token: token,
    })
}

/// RFC 7592 §2.1: the client `client_id`, when `presented` is its
/// registration access token.
pub async fn read_registration(
    store: &dyn ClientStore,
    client_id: &str,
    presented: &str,
) -> Result<Client, RegistrationFailure> {
    check_registration_token(store, client_id, presented).await?;
    store
        .client(client_id)
        .await?
        .ok_or(RegistrationFailure::InvalidToken)
}

/// RFC 7592 §2.2: replaces the client's metadata as a whole
/// (`client::replace_dynamic`). The body must name the same client, and a
/// `client_secret` in it must be the current one. The returned client
/// carries a secret only when one was created by this update.
pub async fn update_registration(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    client_id: &str,
    presented: &str,
    update: ClientUpdate,
    policy: &DynamicRegistrationPolicy,
) -> Result<RegisteredClient, RegistrationFailure> {
    let existing = read_registration(store, client_id, presented).await?;
    if update.client_id != existing.client_id {
        return Err(RegistrationError::request(
            "client_id does not match the client being updated (RFC 7592 §2.2)",
        )
        .into());
    }
    if let Some(sent) = &update.client_secret {
        let current = existing.secret_hash.as_deref().unwrap_or("");
        if !crypto::secret_matches(sent, current) {
            return Err(RegistrationError::request(
                "client_secret does not match the client's current secret (RFC 7592 §2.2)",
            )
            .into());
        }
    }
    let now = clock.now();
    let (client, secret) = client::replace_dynamic(&existing, update.registration, policy, now)?;
    if !store.replace_client(&client).await? {
        // Deleted meanwhile.
        return Err(RegistrationFailure::InvalidToken);
    }
    audit
        .record(AuditEvent::client(
            AuditKind::ClientUpdated,
            &Actor::Client(client.client_id.clone()),
            &client.client_id,
            now,
        ))
        .await;
    Ok(RegisteredClient { client, secret })
}

/// RFC 7592 §2.3: deletes the client (through `delete`, as the CLI does),
/// when `presented` is its registration access token.
pub async fn delete_registration(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    client_id: &str,
    presented: &str,
) -> Result<(), RegistrationFailure> {
    check_registration_token(store, client_id, presented).await?;
    let actor = Actor::Client(client_id.to_string());
    match delete(store, clock, audit, &actor, client_id).await {
        Err(ServiceError::NotFound(_)) => Err(RegistrationFailure::InvalidToken),
        other => Ok(other?),
    }
}

/// Compares `presented` with the stored hash of the client's registration
/// access token in constant time. An unknown client, or one without a
/// token, is compared with a hash that nothing matches, and answers the
/// same as a wrong token.
async fn check_registration_token(
    store: &dyn ClientStore,
    client_id: &str,
    presented: &str,
) -> Result<(), RegistrationFailure> {
    let stored = store.registration_token_hash(client_id).await?;
    if crypto::secret_matches(presented, stored.as_deref().unwrap_or("")) {
        Ok(())
    } else {
        Err(RegistrationFailure::InvalidToken)
    }
}

/// A page of clients in registration order.
pub async fn page(
    store: &dyn ClientStore,
    request: &PageRequest,
) -> Result<Page<Client>, ServiceError> {
    let after = request.after(CursorList::Clients)?;
    let after = after.as_deref().map(split_key).transpose()?;
    let clients = store.clients_page(after, request.fetch()).await?;
    Ok(Page::from_fetched(
        clients,
        request,
        CursorList::Clients,
        |c| format!("{}:{}", c.created_at, c.client_id),
    ))
}

/// Replaces the metadata of `client_id` with `registration`, checked by
/// the same rules as `register` (a breach is `Invalid`). The client keeps
/// its id and its secret; one that becomes confidential gets a secret
/// (returned, shown once), one that becomes public loses its secret.
pub async fn update(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    client_id: &str,
    registration: ClientRegistration,
) -> Result<RegisteredClient, ServiceError> {
    let existing = show(store, client_id).await?;
    let (mut client, fresh_secret) = client::register(registration, existing.created_at)
        .map_err(|e| ServiceError::Invalid(e.0))?;
    client.client_id = existing.client_id;
    let secret = match (fresh_secret, existing.secret_hash) {
        (Some(_), Some(kept)) => {
            client.secret_hash = Some(kept);
            None
        }
        (fresh, _) => fresh,
    };
    if !store.replace_client(&client).await? {
        return Err(no_client_with_id(client_id));
    }
    audit
        .record(AuditEvent::client(
            AuditKind::ClientUpdated,
            actor,
            client_id,
            clock.now(),
        ))
        .await;
    Ok(RegisteredClient { client, secret })
}

/// Gives `client_id` a new secret (returned, shown once); the old one
/// stops working at once. A client whose authentication method uses no
/// secret (a public client) is `Invalid`.
pub async fn rotate_secret(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    client_id: &str,
) -> Result<RegisteredClient, ServiceError> {
    let mut client = show(store, client_id).await?;
    let method = &client.metadata.token_endpoint_auth_method;
    if !client_auth::find(method).is_some_and(|m| m.issues_secret()) {
        return Err(ServiceError::Invalid(format!(
            "client {client_id:?} authenticates with {method}, which uses no secret"
        )));
    }
    let secret = crypto::random_token();
    client.secret_hash = Some(crypto::hash_secret(&secret));
    if !store.replace_client(&client).await? {
        return Err(no_client_with_id(client_id));
    }
    audit
        .record(AuditEvent::client(
            AuditKind::ClientSecretRotated,
            actor,
            client_id,
            clock.now(),
        ))
        .await;
    Ok(RegisteredClient {
        client,
        secret: Some(secret),
    })
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
        async fn insert_client_with_registration_token(
            &self,
            _: &Client,
            _: &str,
        ) -> Result<(), crate::store::StoreError> {
            panic!("an invalid registration reached the store")
        }
        async fn registration_token_hash(
            &self,
            _: &str,
        ) -> Result<Option<String>, crate::store::StoreError> {
            panic!("unexpected read")
        }
        async fn replace_client(&self, _: &Client) -> Result<bool, crate::store::StoreError> {
            panic!("unexpected update")
        }
        async fn clients_page(
            &self,
            _: Option<(crate::clock::UnixTime, &str)>,
            _: i64,
        ) -> Result<Vec<Client>, crate::store::StoreError> {
            panic!("unexpected read")
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

    #[tokio::test]
    async fn invalid_dynamic_metadata_is_refused_before_storage_and_audit() {
        let registration = ClientRegistration {
            client_name: "x".into(),
            redirect_uris: vec!["http://app.example/cb".into()],
            ..Default::default()
        };
        let result = register_dynamic(
            &UntouchedStore,
            &FixedClock::new(5),
            &NoEvents,
            registration,
            &DynamicRegistrationPolicy::default(),
        )
        .await;
        match result {
            Err(RegistrationFailure::Refused(e)) => {
                assert_eq!(e.code.as_str(), "invalid_redirect_uri", "{e}")
            }
            other => panic!("expected Refused, got {other:?}"),
        }
    }
}
