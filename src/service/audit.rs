//! The audit log. Services (after each successful change) and the HTTP
//! layer (sign-ins, consents, tokens, revocations, admin API calls) hand an
//! `AuditEvent` to an `AuditSink`. `DbAuditSink` writes it to the
//! `audit_events` table at once (the CLI); `AuditQueue` does the same
//! through a background writer in batches (the server), so a request never
//! waits on the database for its audit line; `LogAuditSink` writes it to
//! the log.
//!
//! An event says what happened, who did it, to what, and from where. It
//! never carries a password, secret, code or token: its fields are
//! identifiers, and its `detail` holds facts such as a grant type, a scope,
//! a reason or the username someone tried.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::ServiceError;
use super::page::{CursorList, Page, PageRequest};
use crate::clock::UnixTime;
use crate::store::{AuditQuery, AuditRecord, AuditStore};

/// What happened. `as_str` is the stable name that logs, the audit table
/// and its filters use; the part before the dot is its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    UserCreated,
    UserUpdated,
    UserDeleted,
    UserPasswordChanged,
    ClientRegistered,
    /// Its metadata replaced (the admin API, RFC 7592 §2.2).
    ClientUpdated,
    ClientDeleted,
    ClientSecretRotated,
    /// A resource (API, RFC 8707) registered or deleted.
    ResourceAdded,
    ResourceDeleted,
    KeysRotated,
    KeyImported,
    SignInSucceeded,
    SignInFailed,
    ConsentGiven,
    ConsentDenied,
    ConsentRevoked,
    /// The person approved or denied a device's request (RFC 8628 §3.3).
    DeviceApproved,
    DeviceDenied,
    TokenIssued,
    /// An access token exchanged for another (RFC 8693): who exchanged
    /// whose token, and who acts.
    TokenExchanged,
    TokenRevoked,
    RefreshTokenReused,
    GrantRevoked,
    SessionsEnded,
    AdminCall,
    ApiKeyCreated,
    ApiKeyRotated,
    ApiKeyRevoked,
    /// A use of an existing key refused (expired, revoked, over its rate
    /// limit, or without a required scope).
    ApiKeyRefused,
    /// A Logout Token reached a client's `backchannel_logout_uri` (OIDC
    /// Back-Channel Logout 1.0 §2.8: it answered 2xx).
    BackchannelLogoutDelivered,
    /// A Logout Token never did: every attempt failed.
    BackchannelLogoutFailed,
}

impl AuditKind {
    /// Every kind, in the order the README lists them.
    pub const ALL: &'static [AuditKind] = &[
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::UserPasswordChanged,
        Self::ClientRegistered,
        Self::ClientUpdated,
        Self::ClientDeleted,
        Self::ClientSecretRotated,
        Self::ResourceAdded,
        Self::ResourceDeleted,
        Self::KeysRotated,
        Self::KeyImported,
        Self::SignInSucceeded,
        Self::SignInFailed,
        Self::ConsentGiven,
        Self::ConsentDenied,
        Self::ConsentRevoked,
        Self::DeviceApproved,
        Self::DeviceDenied,
        Self::TokenIssued,
        Self::TokenExchanged,
        Self::TokenRevoked,
        Self::RefreshTokenReused,
        Self::GrantRevoked,
        Self::SessionsEnded,
        Self::AdminCall,
        Self::ApiKeyCreated,
        Self::ApiKeyRotated,
        Self::ApiKeyRevoked,
        Self::ApiKeyRefused,
        Self::BackchannelLogoutDelivered,
        Self::BackchannelLogoutFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::UserPasswordChanged => "user.password_changed",
            Self::ClientRegistered => "client.registered",
            Self::ClientUpdated => "client.updated",
            Self::ClientDeleted => "client.deleted",
            Self::ClientSecretRotated => "client.secret_rotated",
            Self::ResourceAdded => "resource.added",
            Self::ResourceDeleted => "resource.deleted",
            Self::KeysRotated => "keys.rotated",
            Self::KeyImported => "keys.imported",
            Self::SignInSucceeded => "signin.succeeded",
            Self::SignInFailed => "signin.failed",
            Self::ConsentGiven => "consent.given",
            Self::ConsentDenied => "consent.denied",
            Self::ConsentRevoked => "consent.revoked",
            Self::DeviceApproved => "device.approved",
            Self::DeviceDenied => "device.denied",
            Self::TokenIssued => "token.issued",
            Self::TokenExchanged => "token.exchanged",
            Self::TokenRevoked => "token.revoked",
            Self::RefreshTokenReused => "token.refresh_reused",
            Self::GrantRevoked => "grant.revoked",
            Self::SessionsEnded => "session.ended",
            Self::AdminCall => "admin.call",
            Self::ApiKeyCreated => "apikey.created",
            Self::ApiKeyRotated => "apikey.rotated",
            Self::ApiKeyRevoked => "apikey.revoked",
            Self::ApiKeyRefused => "apikey.refused",
            Self::BackchannelLogoutDelivered => "backchannel_logout.delivered",
            Self::BackchannelLogoutFailed => "backchannel_logout.failed",
        }
    }

    /// The part of the name before the dot: `user`, `signin`, `token`, …
    pub fn category(self) -> &'static str {
        let name = self.as_str();
        name.split_once('.').map_or(name, |(category, _)| category)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds a `type` filter names: one kind by its full name
/// (`signin.failed`), or every kind of a category (`signin`). Anything else
/// is `Invalid`, naming what is accepted.
pub fn kinds_named(filter: &str) -> Result<Vec<String>, ServiceError> {
    let kinds: Vec<String> = AuditKind::ALL
        .iter()
        .filter(|k| k.as_str() == filter || k.category() == filter)
        .map(|k| k.as_str().to_string())
        .collect();
    if kinds.is_empty() {
        let mut categories: Vec<&str> = AuditKind::ALL.iter().map(|k| k.category()).collect();
        categories.dedup();
        return Err(ServiceError::Invalid(format!(
            "unknown event type {filter:?}: use a kind such as signin.failed, or a category ({})",
            categories.join(", ")
        )));
    }
    Ok(kinds)
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator with a shell on the server (`tessera user …`,
    /// `tessera client …`).
    Cli,
    /// A client acting with its own credentials or access token, by
    /// `client_id` (the admin API, the token endpoint).
    Client(String),
    /// A signed-in person, by `sub`.
    User(String),
    /// Someone not (yet) known: a failed sign-in.
    Anonymous,
    /// The server itself (its key rotation schedule).
    System,
    /// A registered resource server with its own credentials (RFC 8707),
    /// by identifier: it introspects and checks API keys.
    Resource(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cli => f.write_str("cli"),
            Self::Client(client_id) => write!(f, "client:{client_id}"),
            Self::User(sub) => write!(f, "user:{sub}"),
            Self::Anonymous => f.write_str("anonymous"),
            Self::System => f.write_str("system"),
            Self::Resource(identifier) => write!(f, "resource:{identifier}"),
        }
    }
}

/// Where an HTTP request that caused events came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The client's address.
    pub address: Option<String>,
    /// The request's `x-request-id`, which its log lines carry too.
    pub request_id: Option<String>,
}

/// One event, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub actor: Actor,
    /// What it was done to: a user's `sub`, or a client's `client_id` for
    /// client events. `None` when nobody is known (a failed sign-in).
    pub subject: Option<String>,
    /// The client involved, if any (for client events, the client itself).
    pub client_id: Option<String>,
    pub at: UnixTime,
    pub address: Option<String>,
    pub request_id: Option<String>,
    /// Facts particular to the kind; never a secret.
    pub detail: Map<String, Value>,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, actor: &Actor, at: UnixTime) -> Self {
        Self {
            kind,
            actor: actor.clone(),
            subject: None,
            client_id: None,
            at,
            address: None,
            request_id: None,
            detail: Map::new(),
        }
    }

    /// An event about the user `sub`.
    pub fn user(kind: AuditKind, actor: &Actor, sub: &str, at: UnixTime) -> Self {
        Self::new(kind, actor, at).with_subject(sub)
    }

    /// An event about the client `client_id`.
    pub fn client(kind: AuditKind, actor: &Actor, client_id: &str, at: UnixTime) -> Self {
        Self::new(kind, actor, at)
            .with_subject(client_id)
            .with_client(client_id)
    }

    pub fn with_subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    pub fn with_client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_string());
        self
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    /// Stamps the request's address and id, where the event has none.
    pub fn with_origin(mut self, origin: &RequestOrigin) -> Self {
        if self.address.is_none() {
            self.address = origin.address.clone();
        }
        if self.request_id.is_none() {
            self.request_id = origin.request_id.clone();
        }
        self
    }

    /// The row the store keeps.
    pub fn to_record(&self) -> AuditRecord {
        AuditRecord {
            id: 0,
            at: self.at,
            kind: self.kind.as_str().to_string(),
            actor: self.actor.to_string(),
            subject: self.subject.clone(),
            client_id: self.client_id.clone(),
            address: self.address.clone(),
            request_id: self.request_id.clone(),
            detail: Value::Object(self.detail.clone()),
        }
    }
}

/// Where audit events go. Recording cannot fail for the caller: the change
/// it records has already happened, so a sink that can fail (a database)
/// reports its own failure (in the log) rather than turning a done change
/// into an error.
#[async_trait]
pub trait AuditSink: Send + Sync {
    async fn record(&self, event: AuditEvent);
}

/// Writes each event as one structured `info` line with target `audit`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAuditSink;

#[async_trait]
impl AuditSink for LogAuditSink {
    async fn record(&self, event: AuditEvent) {
        tracing::info!(
            target: "audit",
            kind = event.kind.as_str(),
            actor = %event.actor,
            subject = event.subject.as_deref(),
            client_id = event.client_id.as_deref(),
            at = event.at,
            "{}",
            event.kind
        );
    }
}

/// Passes events on to `inner`, stamped with where the request came from:
/// the admin API hands this to the services it calls.
pub struct OriginAuditSink<'a> {
    pub inner: &'a dyn AuditSink,
    pub origin: &'a RequestOrigin,
}

#[async_trait]
impl AuditSink for OriginAuditSink<'_> {
    async fn record(&self, event: AuditEvent) {
        self.inner.record(event.with_origin(self.origin)).await;
    }
}

fn log_write_failure(error: &dyn std::error::Error, records: &[AuditRecord]) {
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    tracing::error!(
        target: "audit",
        error = %error,
        lost = records.len(),
        kinds = ?kinds,
        "audit events could not be written to the database"
    );
}

/// Writes each event to the audit table before `record` returns (the CLI,
/// which exits right after). A failed write is logged, never returned.
pub struct DbAuditSink<'a> {
    pub store: &'a dyn AuditStore,
}

#[async_trait]
impl AuditSink for DbAuditSink<'_> {
    async fn record(&self, event: AuditEvent) {
        let records = [event.to_record()];
        if let Err(e) = self.store.insert_audit_records(&records).await {
            log_write_failure(&e, &records);
        }
    }
}

/// Events written together at most.
const MAX_BATCH: usize = 256;
/// Events waiting at most; `record` waits for room beyond that, so a flood
/// slows down rather than losing events or growing without bound.
const QUEUE_CAPACITY: usize = 4096;

enum QueueMessage {
    Event(Box<AuditEvent>),
    /// Answered once every event queued before it was written.
    Flush(oneshot::Sender<()>),
}

/// The server's sink: `record` queues the event; a background task writes
/// what has queued up in one transaction per batch. A request therefore
/// never waits on the database for its audit line (issuing a client
/// credentials token stays free of database round trips), yet every event
/// reaches the table in order. A batch that cannot be written (the
/// database is gone) is logged as lost.
pub struct AuditQueue {
    sender: mpsc::Sender<QueueMessage>,
}

impl AuditQueue {
    /// Starts the writer on the current tokio runtime. It ends when the
    /// queue is dropped, after writing what is left.
    pub fn start(store: Arc<dyn AuditStore>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_queued(store, receiver));
        Self { sender }
    }

    /// Waits until every event recorded before this call is written (or
    /// reported lost): for readers of the table on this instance, and for
    /// shutdown.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(QueueMessage::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

#[async_trait]
impl AuditSink for AuditQueue {
    async fn record(&self, event: AuditEvent) {
        if let Err(mpsc::error::SendError(QueueMessage::Event(event))) =
            self.sender.send(QueueMessage::Event(Box::new(event))).await
        {
            // Only when the writer task is gone (the runtime is shutting down).
            log_write_failure(
                &std::io::Error::other("the audit writer has stopped"),
                &[event.to_record()],
            );
        }
    }
}

async fn write_queued(store: Arc<dyn AuditStore>, mut receiver: mpsc::Receiver<QueueMessage>) {
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                QueueMessage::Event(event) => batch.push(event.to_record()),
                QueueMessage::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < MAX_BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            if let Err(e) = store.insert_audit_records(&batch).await {
                log_write_failure(&e, &batch);
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// An event as listed (`tessera audit list`, `GET /admin/api/v1/audit`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds, like every other timestamp Tessera shows.
    pub at: UnixTime,
    /// `at` in RFC 3339 (UTC), for people.
    pub time: String,
    pub kind: String,
    pub actor: String,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
    pub request_id: Option<String>,
    pub detail: Value,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            at: r.at,
            time: format_rfc3339(r.at),
            kind: r.kind,
            actor: r.actor,
            subject: r.subject,
            client_id: r.client_id,
            address: r.address,
            request_id: r.request_id,
            detail: r.detail,
        }
    }
}

/// Unix seconds as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn format_rfc3339(at: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// An RFC 3339 date-time (`2024-05-01T12:00:00Z`, any offset) as Unix
/// seconds; `name` names the parameter in the refusal.
pub fn parse_rfc3339(name: &str, text: &str) -> Result<UnixTime, ServiceError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            ServiceError::Invalid(format!(
                "{name} must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z"
            ))
        })
}

/// What to list: every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// A kind (`signin.failed`) or a category (`signin`).
    pub kind: Option<String>,
    /// Events about this user (`subject` is their `sub`).
    pub user: Option<String>,
    /// Events involving this client.
    pub client: Option<String>,
    /// At or after.
    pub since: Option<UnixTime>,
    /// Before.
    pub until: Option<UnixTime>,
}

/// A page of events matching `filter`, newest first.
pub async fn list(
    store: &dyn AuditStore,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditEntry>, ServiceError> {
    let before_id = page
        .after(CursorList::Audit)?
        .map(|key| {
            key.parse::<i64>().map_err(|_| {
                ServiceError::Invalid("the cursor is not one this list gave out".into())
            })
        })
        .transpose()?;
    let query = AuditQuery {
        kinds: filter.kind.as_deref().map(kinds_named).transpose()?,
        subject: filter.user.clone(),
        client_id: filter.client.clone(),
        since: filter.since,
        until: filter.until,
        before_id,
        limit: page.fetch(),
    };
    let records = store.audit_records(&query).await?;
    Ok(
        Page::from_fetched(records, page, CursorList::Audit, |r| r.id.to_string())
            .map(AuditEntry::from),
    )
}

/// Drops events older than `retention_days` before `now`.
pub async fn prune(
    store: &dyn AuditStore,
    now: UnixTime,
    retention_days: i64,
) -> Result<u64, ServiceError> {
    Ok(store
        .prune_audit_records(now - retention_days * 86_400)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_unique_names() {
        let names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            &names[..5],
            [
                "user.created",
                "user.updated",
                "user.deleted",
                "user.password_changed",
                "client.registered",
            ]
        );
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        for kind in AuditKind::ALL {
            assert!(kind.as_str().starts_with(&format!("{}.", kind.category())));
        }
    }

    #[test]
    fn type_filters_name_a_kind_or_a_category() {
        assert_eq!(kinds_named("signin.failed").unwrap(), ["signin.failed"]);
        assert_eq!(
            kinds_named("signin").unwrap(),
            ["signin.succeeded", "signin.failed"]
        );
        match kinds_named("sign") {
            Err(ServiceError::Invalid(reason)) => {
                assert!(reason.contains("signin, consent"), "{reason}")
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn actors_name_themselves() {
        assert_eq!(Actor::Cli.to_string(), "cli");
        assert_eq!(Actor::Client("c1".into()).to_string(), "client:c1");
        assert_eq!(Actor::User("s1".into()).to_string(), "user:s1");
        assert_eq!(Actor::Anonymous.to_string(), "anonymous");
        assert_eq!(Actor::System.to_string(), "system");
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("since", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_rfc3339("since", "2023-11-15T00:13:20+02:00").unwrap(),
            1_700_000_000
        );
        match parse_rfc3339("since", "yesterday") {
            Err(ServiceError::Invalid(reason)) => assert!(reason.starts_with("since "), "{reason}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn log_sink_writes_one_structured_line_with_target_audit() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let sink: &dyn AuditSink = &LogAuditSink;
        sink.record(AuditEvent::client(
            AuditKind::ClientRegistered,
            &Actor::User("s1".into()),
            "c1",
            1_700_000_000,
        ))
        .await;
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        for part in [
            " INFO audit: client.registered ",
            "kind=\"client.registered\"",
            "actor=user:s1",
            "subject=\"c1\"",
            "client_id=\"c1\"",
            "at=1700000000",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
    }

    #[test]
    fn client_events_name_the_client_twice() {
        let e = AuditEvent::client(AuditKind::ClientDeleted, &Actor::Cli, "c1", 7);
        assert_eq!(e.subject.as_deref(), Some("c1"));
        assert_eq!(e.client_id.as_deref(), Some("c1"));
        let e = AuditEvent::user(AuditKind::UserCreated, &Actor::Cli, "s1", 7);
        assert_eq!(e.subject.as_deref(), Some("s1"));
        assert_eq!(e.client_id, None);
    }

    #[test]
    fn the_origin_fills_only_what_is_missing() {
        let origin = RequestOrigin {
            address: Some("192.0.2.1".into()),
            request_id: Some("r1".into()),
        };
        let mut e = AuditEvent::new(AuditKind::AdminCall, &Actor::System, 1);
        e.request_id = Some("own".into());
        let e = e.with_origin(&origin).with_detail("status", 200);
        assert_eq!(e.address.as_deref(), Some("192.0.2.1"));
        assert_eq!(e.request_id.as_deref(), Some("own"));
        let record = e.to_record();
        assert_eq!(record.kind, "admin.call");
        assert_eq!(record.actor, "system");
        assert_eq!(record.detail, serde_json::json!({"status": 200}));
    }
}
