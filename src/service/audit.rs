//! The audit hook: after each successful change a service hands an
//! `AuditEvent` to an `AuditSink`. `LogAuditSink` writes it to the log; the
//! audit-log table of issue 8 is another sink with the same one method.
//!
//! An event says what happened, who did it and to what. It never carries a
//! password, secret, code or token: its fields are identifiers only.

use std::fmt;

use async_trait::async_trait;

use crate::clock::UnixTime;

/// What happened. `as_str` is the stable name that logs and (later) the
/// audit table and its filters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
    ClientRegistered,
    /// Its metadata replaced (RFC 7592 §2.2).
    ClientUpdated,
    ClientDeleted,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserDeleted => "user.deleted",
            Self::UserPasswordChanged => "user.password_changed",
            Self::ClientRegistered => "client.registered",
            Self::ClientUpdated => "client.updated",
            Self::ClientDeleted => "client.deleted",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator with a shell on the server (`tessera user …`,
    /// `tessera client …`).
    Cli,
    /// A client acting with its own access token, by `client_id` (the
    /// admin API).
    Client(String),
    /// A signed-in person, by `sub`.
    User(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cli => f.write_str("cli"),
            Self::Client(client_id) => write!(f, "client:{client_id}"),
            Self::User(sub) => write!(f, "user:{sub}"),
        }
    }
}

/// One change, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub actor: Actor,
    /// What was changed: a user's `sub` or a client's `client_id`.
    pub subject: String,
    /// The client involved, if any (for client events, the client itself).
    pub client_id: Option<String>,
    pub at: UnixTime,
}

impl AuditEvent {
    /// An event about the user `sub`.
    pub fn user(kind: AuditKind, actor: &Actor, sub: &str, at: UnixTime) -> Self {
        Self {
            kind,
            actor: actor.clone(),
            subject: sub.to_string(),
            client_id: None,
            at,
        }
    }

    /// An event about the client `client_id`.
    pub fn client(kind: AuditKind, actor: &Actor, client_id: &str, at: UnixTime) -> Self {
        Self {
            kind,
            actor: actor.clone(),
            subject: client_id.to_string(),
            client_id: Some(client_id.to_string()),
            at,
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
            subject = %event.subject,
            client_id = event.client_id.as_deref(),
            at = event.at,
            "{}",
            event.kind
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        let names: Vec<&str> = [
            AuditKind::UserCreated,
            AuditKind::UserDeleted,
            AuditKind::UserPasswordChanged,
            AuditKind::ClientRegistered,
            AuditKind::ClientDeleted,
        ]
        .into_iter()
        .map(AuditKind::as_str)
        .collect();
        assert_eq!(
            names,
            [
                "user.created",
                "user.deleted",
                "user.password_changed",
                "client.registered",
                "client.deleted"
            ]
        );
    }

    #[test]
    fn actors_name_themselves() {
        assert_eq!(Actor::Cli.to_string(), "cli");
        assert_eq!(Actor::Client("c1".into()).to_string(), "client:c1");
        assert_eq!(Actor::User("s1".into()).to_string(), "user:s1");
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
            "subject=c1",
            "client_id=\"c1\"",
            "at=1700000000",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
    }

    #[test]
    fn client_events_name_the_client_twice() {
        let e = AuditEvent::client(AuditKind::ClientDeleted, &Actor::Cli, "c1", 7);
        assert_eq!(e.subject, "c1");
        assert_eq!(e.client_id.as_deref(), Some("c1"));
        let e = AuditEvent::user(AuditKind::UserCreated, &Actor::Cli, "s1", 7);
        assert_eq!(e.subject, "s1");
        assert_eq!(e.client_id, None);
    }
}
