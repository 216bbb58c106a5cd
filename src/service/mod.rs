//! Services: the rules for managing users, clients and keys (validation,
//! uniqueness, hashing, the audit hook), shared by the CLI and (next) the
//! admin API, so that nothing is implemented twice. They know no HTTP.
//!
//! Each function takes the narrow pieces it needs (a store trait, the
//! `Clock`, an `AuditSink` and the `Actor`), never `AppState`, and answers
//! a `ServiceError` that a caller maps to its own surface: the CLI to exit
//! codes, the admin API to status codes.

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod keys;
pub mod page;
pub mod resources;
pub mod users;

use crate::store::StoreError;

/// Why a service refused or failed. The messages of `Invalid`, `NotFound`
/// and `Conflict` are meant for the caller (one line, naming the culprit);
/// `Internal` is not the caller's fault, and its message is for the log.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input breaks a rule (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The user or client does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// It would take something that must be unique, such as a username
    /// (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// Storage or hashing failed (HTTP 500, or 503 when the source is a
    /// `StoreError::Database` that says the database is gone).
    #[error("{0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ServiceError {
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(source.into())
    }
}

impl From<StoreError> for ServiceError {
    /// The store reports a unique-constraint violation as `Conflict`, with a
    /// message meant for the caller; everything else is internal.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(reason) => Self::Conflict(reason),
            other => Self::internal(other),
        }
    }
}
