//! The records Tessera stores and reasons about: clients, users, grants,
//! codes, refresh tokens, scopes, resources (APIs). Both the protocol code (`oauth`, `oidc`,
//! `auth`) and the storage (`store`) use these; this module imports
//! neither, so storage never depends on protocol code.

pub mod api_key;
pub mod client;
pub mod records;
pub mod resource;
pub mod scope;

pub use api_key::{ApiKey, ApiKeyOwner, KeyUse, RateLimit};
pub use client::{Client, ClientMetadata};
pub use records::*;
pub use resource::Resource;
pub use scope::ScopeSet;
