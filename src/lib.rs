//! Tessera: an OAuth 2.1 / OpenID Connect authorization server.
//! See ARCHITECTURE.md for the map of modules.

// Lint policy (issue 6). A server must answer errors, not abort a request
// or a background task: no unwrap/expect/panic outside tests (clippy.toml
// allows them in tests). A std lock guard held across an `.await` can
// deadlock the runtime. There is no `unsafe` code, and none may appear.
// main.rs is a separate crate root and repeats this block.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]
#![deny(clippy::expect_used)]
#![deny(clippy::panic)]
#![deny(clippy::await_holding_lock)]

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
pub mod outbound;
pub mod service;
pub mod state;
pub mod store;

pub use http::server::serve;
pub use state::AppState;
