//! Where the routes are mounted: under the issuer's path (`/auth` for an
//! issuer `https://example.com/auth`), or at the root. Pages link to the
//! stylesheet and post their forms to absolute paths, and redirects send
//! the browser to them, so every one of those paths goes through [`url()`].
//!
//! The prefix is a per-request value set by the router's outermost layer
//! (a tokio task-local around the handler), so page code deep in the
//! templates and error helpers follows the mount without every page struct
//! and helper carrying it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static BASE_PATH: Arc<str>;
}

/// The layer: runs the rest of the request with `base` as the mount path.
pub async fn scope(State(base): State<Arc<str>>, request: Request, next: Next) -> Response {
    BASE_PATH.scope(base, next.run(request)).await
}

/// `path` (one of `endpoints::path::*`, starting with '/') under the mount
/// path of the request being served; `path` itself outside a request.
pub fn url(path: &str) -> String {
    BASE_PATH
        .try_with(|base| format!("{base}{path}"))
        .unwrap_or_else(|_| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paths_follow_the_mount() {
        assert_eq!(url("/login"), "/login");
        let under = BASE_PATH.scope(Arc::from("/auth"), async { url("/login") });
        assert_eq!(under.await, "/auth/login");
        let root = BASE_PATH.scope(Arc::from(""), async { url("/login") });
        assert_eq!(root.await, "/login");
    }
}
