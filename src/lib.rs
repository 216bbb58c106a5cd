//! Tessera: an OAuth 2.1 / OpenID Connect authorization server.
//! See ARCHITECTURE.md for the map of modules.

pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod endpoints;
pub mod error;
pub mod http;
pub mod jose;
pub mod oauth;
pub mod oidc;
pub mod service;
pub mod state;
pub mod store;

pub use http::server::serve;
pub use state::AppState;
