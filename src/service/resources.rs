//! Registered resources (APIs, RFC 8707): add, list, show, delete, for
//! the CLI and the admin API alike. A resource may get a secret to
//! introspect with (RFC 7662 §2.1), made and hashed exactly like a client
//! secret, and shown only in the answer that made it.
//!
//! A running server notices a change through the `resources` change
//! counter the store bumps in the same transaction.

use std::fmt;

use super::ServiceError;
use super::audit::{Actor, AuditEvent, AuditKind, AuditSink};
use super::page::{CursorList, Page, PageRequest};
use crate::clock::Clock;
use crate::crypto;
use crate::domain::Resource;
use crate::domain::scope::ScopeSet;
use crate::jose::SigningAlg;
use crate::oauth::resource::check_identifier;
use crate::store::{ClientStore, ResourceStore};

/// The longest name shown on the consent page.
pub const MAX_NAME_LEN: usize = 200;

/// The longest access-token lifetime a resource may set: a day. (The
/// server also never issues a token longer-lived than its own longest
/// token lifetime: `oauth::access_token::issue`.)
pub const MAX_TTL_SECS: i64 = 86_400;

/// What an operator asks for.
#[derive(Debug, Clone, Default)]
pub struct NewResource {
    pub identifier: String,
    pub name: String,
    /// Space-separated scopes that make sense for it.
    pub scope: Option<String>,
    pub access_token_ttl_secs: Option<i64>,
    pub signing_alg: Option<SigningAlg>,
    /// Give it credentials to introspect with.
    pub with_secret: bool,
    /// The registered client that owns it (RFC 8693 token exchange).
    pub owner_client_id: Option<String>,
}

/// A resource just added, with its secret in clear: the only time the
/// secret is known (the store keeps its SHA-256). `Debug` never shows it.
pub struct AddedResource {
    pub resource: Resource,
    pub secret: Option<String>,
}

impl AddedResource {
    pub fn to_json(&self) -> serde_json::Value {
        self.resource.to_json(self.secret.as_deref())
    }
}

impl fmt::Debug for AddedResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddedResource")
            .field("resource", &self.resource)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn no_resource(identifier: &str) -> ServiceError {
    ServiceError::NotFound(format!("no resource with identifier {identifier:?}"))
}

/// The checked record for `new`, and its secret.
fn build(new: NewResource, now: i64) -> Result<(Resource, Option<String>), ServiceError> {
    let invalid = |field: &str, reason: String| ServiceError::Invalid(format!("{field}: {reason}"));
    // RFC 8707 §2: an absolute URI without a fragment.
    check_identifier(&new.identifier).map_err(|e| invalid("identifier", e))?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control)
    {
        return Err(invalid(
            "name",
            format!("must be 1 to {MAX_NAME_LEN} printable characters"),
        ));
    }
    let scopes =
        ScopeSet::parse(new.scope.as_deref().unwrap_or("")).map_err(|e| invalid("scope", e))?;
    if let Some(ttl) = new.access_token_ttl_secs
        && !(1..=MAX_TTL_SECS).contains(&ttl)
    {
        return Err(invalid(
            "access_token_ttl_secs",
            format!("must be between 1 and {MAX_TTL_SECS}"),
        ));
    }
    let secret = new.with_secret.then(crypto::random_token);
    let resource = Resource {
        identifier: new.identifier,
        name: name.to_string(),
        scopes,
        access_token_ttl_secs: new.access_token_ttl_secs,
        signing_alg: new.signing_alg,
        secret_hash: secret.as_deref().map(crypto::hash_secret),
        owner_client_id: new.owner_client_id,
        created_at: now,
    };
    Ok((resource, secret))
}

/// Checks `new` (a breach is `Invalid`, naming the field), then stores it;
/// a taken identifier is `Conflict`.
pub async fn add(
    store: &dyn ResourceStore,
    clients: &dyn ClientStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    new: NewResource,
) -> Result<AddedResource, ServiceError> {
    let now = clock.now();
    let (resource, secret) = build(new, now)?;
    if let Some(owner) = &resource.owner_client_id
        && clients.client(owner).await?.is_none()
    {
        return Err(ServiceError::Invalid(format!(
            "owner_client_id: no client with id {owner:?}"
        )));
    }
    store.insert_resource(&resource).await?;
    audit
        .record(
            AuditEvent::new(AuditKind::ResourceAdded, actor, now)
                .with_subject(&resource.identifier)
                .with_detail("has_secret", secret.is_some())
                .with_detail("owner_client_id", resource.owner_client_id.clone()),
        )
        .await;
    Ok(AddedResource { resource, secret })
}

pub async fn list(store: &dyn ResourceStore) -> Result<Vec<Resource>, ServiceError> {
    Ok(store.resources().await?)
}

/// A page of resources in identifier order.
pub async fn page(
    store: &dyn ResourceStore,
    request: &PageRequest,
) -> Result<Page<Resource>, ServiceError> {
    let after = request.after(CursorList::Resources)?;
    let resources = store
        .resources_page(after.as_deref(), request.fetch())
        .await?;
    Ok(Page::from_fetched(
        resources,
        request,
        CursorList::Resources,
        |r| r.identifier.clone(),
    ))
}

/// The resource `identifier`, or `NotFound`.
pub async fn show(store: &dyn ResourceStore, identifier: &str) -> Result<Resource, ServiceError> {
    store
        .resource(identifier)
        .await?
        .ok_or_else(|| no_resource(identifier))
}

/// Deletes the resource `identifier`, or answers `NotFound`. Tokens
/// already issued for it stay valid until they expire (they are
/// self-contained JWTs); no new ones are issued, refreshing into it is
/// `invalid_target`, and it can no longer introspect.
pub async fn delete(
    store: &dyn ResourceStore,
    clock: &dyn Clock,
    audit: &dyn AuditSink,
    actor: &Actor,
    identifier: &str,
) -> Result<(), ServiceError> {
    let now = clock.now();
    if !store.delete_resource(identifier).await? {
        return Err(no_resource(identifier));
    }
    audit
        .record(AuditEvent::new(AuditKind::ResourceDeleted, actor, now).with_subject(identifier))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(identifier: &str) -> NewResource {
        NewResource {
            identifier: identifier.into(),
            name: "Billing API".into(),
            scope: Some("billing:read billing:write".into()),
            ..Default::default()
        }
    }

    #[test]
    fn rules_name_the_field() {
        let (r, secret) = build(new("https://billing.example.com"), 7).unwrap();
        assert_eq!(r.scopes.to_string(), "billing:read billing:write");
        assert!(secret.is_none() && r.secret_hash.is_none());
        for (bad, field) in [
            (new("https://billing.example.com#x"), "identifier"),
            (new("/billing"), "identifier"),
            (
                NewResource {
                    name: " ".into(),
                    ..new("urn:billing")
                },
                "name",
            ),
            (
                NewResource {
                    scope: Some("a\"b".into()),
                    ..new("urn:billing")
                },
                "scope",
            ),
            (
                NewResource {
                    access_token_ttl_secs: Some(0),
                    ..new("urn:billing")
                },
                "access_token_ttl_secs",
            ),
        ] {
            match build(bad, 7) {
                Err(ServiceError::Invalid(reason)) => {
                    assert!(reason.starts_with(field), "{reason}")
                }
                other => panic!("expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_secret_is_stored_hashed() {
        let (r, secret) = build(
            NewResource {
                with_secret: true,
                ..new("urn:billing")
            },
            7,
        )
        .unwrap();
        let secret = secret.unwrap();
        assert!(crypto::secret_matches(
            &secret,
            r.secret_hash.as_deref().unwrap()
        ));
        assert!(!r.to_json(None).to_string().contains(&secret));
        assert_eq!(r.to_json(None)["has_secret"], true);
    }
}
