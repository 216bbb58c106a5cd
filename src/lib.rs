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

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

pub use state::AppState;

/// The whole HTTP application, for `serve` and for tests to mount.
pub fn app(state: AppState) -> Router {
    http::router(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = state.spawn_background_tasks();
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    background.abort();
    result
}
